#!/usr/bin/env node
// The `sayiir` command. In a checkout of the repository (bin/cli.ts is here) it
// runs the sources through tsx's loader, so it is never a stale build; in the
// installed package (no sources shipped) it runs the compiled dist/bin/cli.js.
import { existsSync } from 'node:fs';

if (existsSync(new URL('./cli.ts', import.meta.url))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
} else {
  await import('../dist/bin/cli.js');
}
