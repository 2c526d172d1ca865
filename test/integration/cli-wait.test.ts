import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { flow } from '../../shared/index.ts';
import { workflows as examples } from '../../workflows/index.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(ROOT, 'bin/sayiir.mjs');

/** One task, then a signal wait, then one more task. */
const gated = flow<number>('gated')
  .then('prepare', (n) => n + 1)
  .waitForSignal<{ ok: boolean }>('approval', 'approved')
  .then('finish', (a) => a?.ok === true)
  .build();

/** Still RUNNING long after any test's timeout, and not waiting for a signal. */
const napping = flow<number>('napping')
  .delay('nap', '1h')
  .then('wake', (n) => n)
  .build();

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the `sayiir` command as a user would, against `stack`. */
function sayiir(stack: LocalStack | undefined, ...args: string[]): Promise<Outcome> {
  const env = { ...process.env, ...(stack ? { SAYIIR_URL: stack.url, SAYIIR_API_KEY: stack.apiKey } : {}) };
  return new Promise((done) => {
    const child = execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env }, (_error, stdout, stderr) => {
      done({ code: child.exitCode, stdout, stderr });
    });
  });
}

describe('sayiir --wait against the local stack', () => {
  let dir: string;
  let stack: LocalStack;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-cli-'));
    stack = await startLocalStack({ dataDir: dir, workflows: [...examples, gated, napping], reaperIntervalMs: 200 });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 on a completed run, printing its view as JSON and its progress on stderr', async () => {
    const r = await sayiir(stack, 'start', 'hello', '{"name":"Ada"}', '--id', 'h-1', '--wait');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      instanceId: 'h-1',
      status: 'COMPLETED',
      output: { greeting: 'Hello, Ada!' },
    });
    expect(r.stderr).toMatch(/^h-1: COMPLETED, \d+ steps? done$/m);
  });

  it('exits 0 on a run that waits for a signal, naming the signal; status --wait follows it on', async () => {
    const r = await sayiir(stack, 'start', 'gated', '1', '--id', 'g-1', '--wait');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("instance 'g-1' waits for signal 'approved'");
    expect(JSON.parse(r.stdout)).toMatchObject({ instanceId: 'g-1', status: 'RUNNING', waitingFor: ['approved'] });

    expect((await sayiir(stack, 'signal', 'g-1', 'approved', '{"ok":true}')).code).toBe(0);
    const after = await sayiir(stack, 'status', 'g-1', '--wait');
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({ status: 'COMPLETED', output: true });
  });

  it('exits 1 on a failed run, with its error in the view', async () => {
    const order = JSON.stringify({ orderId: 'o-1', customer: 'ada', items: [] });
    const r = await sayiir(stack, 'start', 'fulfil', order, '--id', 'bad-1', '--wait');
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'FAILED', error: { message: 'order has no items' } });
  });

  it('exits 3 when --timeout runs out first, naming the run', async () => {
    const r = await sayiir(stack, 'start', 'napping', '1', '--id', 'n-1', '--wait', '--timeout', '1');
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("timed out after 1 s waiting for instance 'n-1' (it is RUNNING");
    expect(r.stdout).toBe('');
  });

  it('exits 2 on a bad --timeout, or --timeout without --wait, before any request', async () => {
    for (const args of [
      ['start', 'hello', '{}', '--wait', '--timeout', 'soon'],
      ['status', 'x', '--timeout', '5'],
    ]) {
      const r = await sayiir(undefined, ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--timeout/);
    }
  });
});
