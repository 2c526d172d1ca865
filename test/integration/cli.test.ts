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

/** A map whose items rest an hour between two tasks, each on a lane timer. */
const resting = flow<number>('resting')
  .map(
    'items',
    (n: number) => Array.from({ length: n }, (_, i) => i),
    flow<number>('item')
      .then('a', (x: number) => x)
      .delay('rest', '1h')
      .then('b', (x: number) => x)
      .build(),
  )
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

describe('the sayiir command against the local stack', () => {
  let dir: string;
  let stack: LocalStack;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-cli-'));
    stack = await startLocalStack({
      dataDir: dir,
      workflows: [...examples, gated, napping, resting],
      reaperIntervalMs: 200,
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 on a completed run, printing its view as JSON and its progress on stderr', async () => {
    const r = await sayiir(stack, 'start', 'hello', '{"name":"Ada"}', '--id', 'h-1', '--wait', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      instanceId: 'h-1',
      status: 'COMPLETED',
      output: { greeting: 'Hello, Ada!' },
    });
    expect(r.stderr).toMatch(/^h-1: COMPLETED, \d+ steps? done$/m);
  });

  it('exits 0 on a run that waits for a signal, naming the signal; status --wait follows it on', async () => {
    const r = await sayiir(stack, 'start', 'gated', '1', '--id', 'g-1', '--wait', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("instance 'g-1' waits for signal 'approved'");
    expect(JSON.parse(r.stdout)).toMatchObject({ instanceId: 'g-1', status: 'RUNNING', waitingFor: ['approved'] });

    expect((await sayiir(stack, 'signal', 'g-1', 'approved', '{"ok":true}')).code).toBe(0);
    const after = await sayiir(stack, 'status', 'g-1', '--wait', '--json');
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({ status: 'COMPLETED', output: true });
  });

  it('exits 1 on a failed run, with its error in the view', async () => {
    const order = JSON.stringify({ orderId: 'o-1', customer: 'ada', items: [] });
    const r = await sayiir(stack, 'start', 'fulfil', order, '--id', 'bad-1', '--wait', '--json');
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

  it('prints a run as text by default: its progress line and output', async () => {
    const r = await sayiir(stack, 'status', 'h-1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^h-1: COMPLETED, \d+ steps? done/);
    expect(r.stdout).toContain('"greeting": "Hello, Ada!"');
    expect(r.stdout).toMatch(/^kept until: \d{4}-\d\d-\d\dT/m);
  });

  it('lists workflows and draws a DAG as text', async () => {
    const w = await sayiir(stack, 'workflows');
    expect(w.code).toBe(0);
    expect(w.stdout).toMatch(/^fulfil/m);
    expect(w.stdout).toMatch(/^hello/m);
    const d = await sayiir(stack, 'describe', 'gated');
    expect(d.stdout).toMatch(/^finished runs kept: 90 days$/m);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout.split('\n')[0]).toBe('gated');
    expect(d.stdout).toMatch(/signal 'approved'/);
    expect(d.stdout).toMatch(/[├└]─ /);
  });

  it('lists runs one page at a time with the next cursor, or every page with --all', async () => {
    for (const id of ['p-1', 'p-2', 'p-3']) await sayiir(stack, 'start', 'napping', '1', '--id', id);
    const first = await sayiir(stack, 'list', 'napping', '--limit', '2');
    expect(first.code, first.stderr).toBe(0);
    const cursor = /--cursor (\S+)/.exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    const next = await sayiir(stack, 'list', 'napping', '--limit', '2', '--cursor', cursor as string, '--json');
    expect(JSON.parse(next.stdout).items.length).toBeGreaterThan(0);
    const all = await sayiir(stack, 'list', 'napping', '--all', '--json', '--limit', '1');
    const ids = JSON.parse(all.stdout).items.map((i: { instanceId: string }) => i.instanceId);
    expect(ids).toEqual(expect.arrayContaining(['p-1', 'p-2', 'p-3']));
    const running = await sayiir(stack, 'list', 'napping', '--status', 'RUNNING', '--all', '--json');
    expect(JSON.parse(running.stdout).items.length).toBe(ids.length);
  });

  it('lists what the items of a map in lanes wait on, a page at a time', async () => {
    expect((await sayiir(stack, 'start', 'resting', '3', '--id', 'lt-1')).code).toBe(0);
    let all: Outcome | undefined;
    for (let i = 0; i < 100 && !all?.stdout.includes('items[2]/rest'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      all = await sayiir(stack, 'timers', 'lt-1', '--all');
    }
    expect(all?.code, all?.stderr).toBe(0);
    const lines = (all?.stdout ?? '').trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^items#0 +delay items\[0\]\/rest {2}due \S+ {2}waiting$/);
    const first = await sayiir(stack, 'timers', 'lt-1', '--parent', 'items', '--limit', '2', '--json');
    const page = JSON.parse(first.stdout) as { items: { id: string }[]; cursor: string };
    expect(page.items.map((t) => t.id)).toEqual(['items[0]/rest', 'items[1]/rest']);
    const next = await sayiir(stack, 'timers', 'lt-1', '--parent', 'items', '--cursor', page.cursor, '--json');
    expect(JSON.parse(next.stdout).items.map((t: { id: string }) => t.id)).toEqual(['items[2]/rest']);
    const bad = await sayiir(stack, 'timers', 'lt-1', '--limit', '0');
    expect(bad.code).toBe(2);
  });

  it('pauses, resumes and cancels a run, and shows who did it in its history', async () => {
    await sayiir(stack, 'start', 'napping', '1', '--id', 'c-1');
    expect((await sayiir(stack, 'pause', 'c-1')).stdout).toContain('c-1: PAUSED');
    expect((await sayiir(stack, 'resume', 'c-1')).stdout).toContain('c-1: RUNNING');
    const cancelled = await sayiir(stack, 'cancel', 'c-1', '--reason', 'test over');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain('c-1: CANCELLED');
    const h = await sayiir(stack, 'history', 'c-1', '--all');
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/cancelled\s+by key-[0-9a-f]{8}\s+test over/);
    const page = await sayiir(stack, 'history', 'c-1', '--limit', '1', '--json');
    const first = JSON.parse(page.stdout);
    expect(first.items).toHaveLength(1);
    // The next page from the cursor it printed; then only what followed a version.
    const next = JSON.parse(
      (await sayiir(stack, 'history', 'c-1', '--limit', '1', '--cursor', first.cursor, '--json')).stdout,
    );
    expect(next.items).toHaveLength(1);
    expect(next.items[0]).not.toEqual(first.items[0]);
    const all = JSON.parse((await sayiir(stack, 'history', 'c-1', '--all', '--json')).stdout).items as {
      version: number;
    }[];
    const lastVersion = all.at(-1)?.version as number;
    const after = JSON.parse(
      (await sayiir(stack, 'history', 'c-1', '--after', String(lastVersion - 1), '--all', '--json')).stdout,
    );
    expect(after.items).toEqual(all.filter((e) => e.version > lastVersion - 1));
    const bad = await sayiir(stack, 'history', 'c-1', '--after', 'soon');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/after: /);
  });

  it('retries and skips the task a run failed on', async () => {
    const order = JSON.stringify({ orderId: 'o-2', customer: 'ada', items: [] });
    await sayiir(stack, 'start', 'fulfil', order, '--id', 'bad-2', '--wait');
    const view = JSON.parse((await sayiir(stack, 'status', 'bad-2', '--json')).stdout);
    const failed = view.tasks.find((t: { state: string }) => t.state === 'failed').key as string;
    const retried = await sayiir(stack, 'retry', 'bad-2', failed);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toContain(`retrying ${failed}`);
    await sayiir(stack, 'status', 'bad-2', '--wait');
    const skipped = await sayiir(stack, 'skip', 'bad-2', failed, '{"total":0}');
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stdout).toContain(`skipped ${failed}`);
  });

  it('reads and redrives dead letters of a pool, and refuses half a redrive target', async () => {
    const list = await sayiir(stack, 'dlq', 'list', 'default', '--json');
    expect(list.code, list.stderr).toBe(0);
    expect(Array.isArray(JSON.parse(list.stdout).items)).toBe(true);
    const redrive = await sayiir(stack, 'dlq', 'redrive', 'default');
    expect(redrive.code, redrive.stderr).toBe(0);
    expect(redrive.stdout).toMatch(/^redriven \d+, skipped \d+/);
    const half = await sayiir(stack, 'dlq', 'redrive', 'default', '--id', 'x');
    expect(half.code).toBe(2);
    expect((await sayiir(stack, 'dlq', 'list', 'no-such-pool')).code).toBe(1);
  });

  it('exits 1 naming the code when the API refuses, 2 on bad JSON, a bad option or no API', async () => {
    const unknown = await sayiir(stack, 'status', 'no-such-run');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('instance_not_found');
    const badJson = await sayiir(stack, 'start', 'hello', '{name:');
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('input is not valid JSON');
    const stray = await sayiir(stack, 'workflows', '--wait');
    expect(stray.code).toBe(2);
    expect(stray.stderr).toContain('--wait is not an option of workflows');
    const down = await new Promise<Outcome>((done) => {
      const env = { ...process.env, SAYIIR_URL: 'http://127.0.0.1:9', SAYIIR_API_KEY: 'k' };
      const child = execFile(process.execPath, [CLI, 'workflows'], { cwd: ROOT, env }, (_e, stdout, stderr) =>
        done({ code: child.exitCode, stdout, stderr }),
      );
    });
    expect(down.code).toBe(2);
    expect(down.stderr).toContain('cannot reach http://127.0.0.1:9');
    const help = await sayiir(undefined, '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('exit codes:');
    expect((await sayiir(undefined, 'frobnicate')).code).toBe(2);
  });
});
