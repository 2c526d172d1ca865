import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
// Inside the repository (tsx resolves from its node_modules) and outside node_modules (which tsx never compiles).
const root = path.join(REPO, '.cache', `sayiir-bin-${process.pid}`);

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('bin/sayiir.mjs', () => {
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  mkdirSync(path.join(root, 'dist', 'bin'), { recursive: true });
  copyFileSync(path.join(REPO, 'bin', 'sayiir.mjs'), path.join(root, 'bin', 'sayiir.mjs'));
  writeFileSync(path.join(root, 'dist', 'bin', 'cli.js'), "console.log('compiled');\n");
  const run = () =>
    spawnSync(process.execPath, [path.join(root, 'bin', 'sayiir.mjs')], { encoding: 'utf8' }).stdout.trim();

  it('runs the TypeScript sources through tsx in a checkout, even when a build is there', () => {
    writeFileSync(path.join(root, 'bin', 'cli.ts'), "const from: string = 'sources';\nconsole.log(from);\n");
    expect(run()).toBe('sources');
  });

  it('runs the compiled dist/bin/cli.js where no sources are shipped (the installed package)', () => {
    rmSync(path.join(root, 'bin', 'cli.ts'));
    expect(run()).toBe('compiled');
  });
});
