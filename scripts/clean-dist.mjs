// Removes dist/ before a build, so a module deleted from the sources never ships.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
