import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The package as a user gets it: `npm pack`, the tarball installed into a
 * fresh CDK app of their own (its own package.json and workflows file), then
 * `app.synth()` through node, and a script that drives a local stack started
 * from the installed package through the typed client.
 *
 * The install is `--prefer-offline` (the versions this repository locks, so
 * they come from the npm cache) and `--ignore-scripts`: better-sqlite3 is
 * not compiled again (a minute on 2 cores); the embedded store loads this
 * repository's addon for the running Node through SAYIIR_SQLITE_BINDING,
 * which is what the Node 22 run sets too. Takes about a minute.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const APP_SOURCES = fileURLToPath(new URL('./consumer-app', import.meta.url));
const versionOf = (name: string): string =>
  (JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string })
    .version;

let dir: string;
let tarball: string;
/** Environment of the consumer's processes: none of this repository's npm config leaks in. */
let env: NodeJS.ProcessEnv;

function run(command: string, args: readonly string[], extra: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(command, args, { cwd: dir, env: { ...env, ...extra }, encoding: 'utf8', timeout: 300_000 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sayiir-consumer-'));
  env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  env.SAYIIR_SQLITE_BINDING ??= path.join(
    REPO,
    'node_modules',
    'better-sqlite3',
    'build',
    'Release',
    'better_sqlite3.node',
  );
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], {
    cwd: REPO,
    env,
    encoding: 'utf8',
  });
  tarball = path.join(dir, packed.trim().split('\n').pop()!);
  for (const file of readdirSync(APP_SOURCES)) copyFileSync(path.join(APP_SOURCES, file), path.join(dir, file));
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'shop',
      private: true,
      type: 'module',
      dependencies: {
        'sayiir-aws': `file:${tarball}`,
        'aws-cdk-lib': versionOf('aws-cdk-lib'),
        constructs: versionOf('constructs'),
        esbuild: versionOf('esbuild'),
      },
    }),
  );
  const install = run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund']);
  if (install.status !== 0) throw new Error(`npm install of the tarball failed:\n${install.stderr}`);
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('ships the compiled package and the prebuilt UI, and no tests, bench, scripts or TypeScript sources', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(
      expect.arrayContaining(['dist/infra/index.js', 'dist/shared/client/index.d.ts', 'bin/sayiir.mjs']),
    );
    expect(files.some((f) => /^dist\/ui\/dist\/app-[0-9a-f]+\.js$/.test(f))).toBe(true);
    const stray = files.filter(
      (f) => /^(test|bench|scripts|\.ci|docs)\//.test(f) || (/\.ts$/.test(f) && !f.endsWith('.d.ts')),
    );
    expect(stray).toEqual([]);
  });

  it('installs only its runtime dependencies: no tsx, cdk-nag or test tooling', () => {
    const installed = readdirSync(path.join(dir, 'node_modules'));
    for (const dev of ['tsx', 'cdk-nag', 'vitest', 'dynalite', 'fauxqs', 'preact'])
      expect(installed).not.toContain(dev);
    expect(installed).toContain('sayiir-aws');
  });
});

describe("a user's CDK app", () => {
  it('synthesizes through node, offline, with its own workflows bundled into the functions', () => {
    const out = path.join(dir, 'cdk.out');
    const synth = run(process.execPath, ['app.mjs'], { CDK_OUTDIR: out });
    expect(synth.stderr).not.toMatch(/Error/);
    expect(synth.status).toBe(0);
    const template = JSON.parse(readFileSync(path.join(out, 'ShopStack.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(5); // api, authorizer, ui, worker, reaper
    const bundles = readdirSync(out)
      .filter((d) => d.startsWith('asset.'))
      .map((d) => path.join(out, d, 'index.mjs'))
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f, 'utf8'));
    expect(bundles.filter((b) => b.includes('consumer-greet')).length).toBe(3); // api, worker, reaper
  });

  it('fails the synth naming workflowsEntry when the file is missing', () => {
    const synth = run(process.execPath, ['app.mjs'], {
      CDK_OUTDIR: path.join(dir, 'cdk.bad'),
      WORKFLOWS_ENTRY: 'src/nope.mjs',
      WEB_UI: 'false',
    });
    expect(synth.status).not.toBe(0);
    expect(synth.stderr).toMatch(/workflowsEntry .*src\/nope\.mjs does not exist/);
  });
});

describe("a user's script on the local stack", () => {
  it('starts runs through the typed client and gets a result, signals one and cancels another', () => {
    const script = run(process.execPath, ['client.mjs'], { DATA_DIR: path.join(dir, '.sayiir') });
    expect(script.stderr).toBe('');
    expect(script.status).toBe(0);
    expect(JSON.parse(script.stdout.trim().split('\n').pop()!)).toEqual({
      result: 'HELLO ADA',
      signalled: { approvedBy: 'grace' },
      cancelReturned: 'CANCELLED',
      cancelled: 'CANCELLED',
    });
  });

  it('has the sayiir command, compiled (no tsx installed)', () => {
    const help = run(process.execPath, [path.join(dir, 'node_modules', '.bin', 'sayiir'), '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/sayiir signal <instanceId> <signal>/);
  });
});

describe("a TypeScript user's tsc (NodeNext)", () => {
  it('type-checks code against the installed declarations, theirs included (no TS5097)', () => {
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [path.join(REPO, 'node_modules', '@types')],
        },
        files: ['check.ts'],
      }),
    );
    const tsc = run(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.']);
    expect(tsc.stdout).toBe('');
    expect(tsc.status).toBe(0);
  });
});
