import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import {
  RunFailedError,
  RunTimeoutError,
  SayiirApiError,
  SayiirClient,
  SayiirConnectionError,
} from '../../shared/client/index.ts';
import { flow, task } from '../../shared/index.ts';
import { hello } from '../../workflows/hello.ts';
import { workflows as examples } from '../../workflows/index.ts';

/** Waits for an approval, then answers with it. */
const approval = flow<{ amount: number }>('approval')
  .waitForSignal<{ ok: boolean }>('approve', 'decision')
  .then('answer', (d) => ({ approved: d.ok }))
  .build();

const failing = flow<null>('failing')
  .then(
    task(
      'boom',
      async () => {
        throw new Error('out of stock');
      },
      { retry: { maxAttempts: 1 } },
    ),
  )
  .build();

describe('the typed client against the local stack', () => {
  let dir: string;
  let stack: LocalStack;
  let sayiir: SayiirClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-client-'));
    stack = await startLocalStack({ dataDir: dir, workflows: [...examples, approval, failing], reaperIntervalMs: 200 });
    sayiir = new SayiirClient({ url: stack.url, apiKey: stack.apiKey });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts a run and waits for its typed result', async () => {
    const run = await sayiir.start(hello, { name: 'Ada' });
    const out = await run.result({ timeoutMs: 20_000 });
    expect(out).toEqual({ greeting: 'Hello, Ada!' });
    expect((await run.status()).status).toBe('COMPLETED');
  });

  it('signals a run once per idempotency key, and reads its history page by page', async () => {
    const run = await sayiir.start(approval, { amount: 5 }, { instanceId: 'appr-1' });
    const waiting = await run.wait({ timeoutMs: 20_000 });
    expect(waiting.waitingFor).toEqual(['decision']);
    await run.signal('decision', { ok: true }, { idempotencyKey: 'd-1' });
    await run.signal('decision', { ok: false }, { idempotencyKey: 'd-1' });
    expect(await run.result({ timeoutMs: 20_000 })).toEqual({ approved: true });
    const types: string[] = [];
    for await (const e of run.history({ pageSize: 2 })) types.push(e.type);
    expect(types.filter((t) => t === 'signal-received')).toHaveLength(1);
    expect(types[0]).toBe('run-started');
    expect(types.at(-1)).toBe('run-completed');
  });

  it('uses the existing run when asked, and says instance_exists otherwise', async () => {
    await sayiir.start(approval, { amount: 1 }, { instanceId: 'appr-2' });
    const again = await sayiir.start(approval, { amount: 1 }, { instanceId: 'appr-2', onConflict: 'useExisting' });
    expect(again.instanceId).toBe('appr-2');
    const refused = await sayiir.start(approval, { amount: 1 }, { instanceId: 'appr-2' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SayiirApiError);
    expect(refused).toMatchObject({ status: 409, code: 'instance_exists' });
  });

  it('pauses, resumes and cancels; the result of a cancelled run is a RunFailedError', async () => {
    const run = await sayiir.start(approval, { amount: 2 });
    expect(await run.pause()).toBe('PAUSED');
    expect(await run.resume()).toBe('RUNNING');
    expect(await run.cancel('no longer needed')).toBe('CANCELLED');
    const e = await run.result({ timeoutMs: 5_000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RunFailedError);
    expect(e).toMatchObject({ status: 'CANCELLED' });
  });

  it('throws RunFailedError with the error of a failed run', async () => {
    const run = await sayiir.start(failing, null);
    const e = await run.result({ timeoutMs: 20_000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RunFailedError);
    expect((e as RunFailedError).error?.message).toContain('out of stock');
  });

  it('gives up on a run that waits for a signal when the timeout runs out, leaving it running', async () => {
    const run = await sayiir.start(approval, { amount: 3 });
    const e = await run.result({ timeoutMs: 1_000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RunTimeoutError);
    expect((e as RunTimeoutError).view.status).toBe('RUNNING');
  });

  it('lists runs newest first across pages', async () => {
    const ids = ['l-1', 'l-2', 'l-3', 'l-4', 'l-5'];
    for (const id of ids) await sayiir.start(approval, { amount: 0 }, { instanceId: id });
    const seen: string[] = [];
    for await (const r of sayiir.list('approval', { pageSize: 2 })) seen.push(r.instanceId);
    expect(seen.filter((id) => id.startsWith('l-'))).toEqual([...ids].reverse());
    expect((await sayiir.workflows()).map((w) => w.name)).toContain('approval');
    expect((await sayiir.describe('approval')).signals).toEqual(['decision']);
  });

  it("answers errors as SayiirApiError carrying the API's code", async () => {
    const e = await sayiir
      .getHandle('nope')
      .status()
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SayiirApiError);
    expect(e).toMatchObject({ status: 404, code: 'instance_not_found' });
    const bad = new SayiirClient({ url: stack.url, apiKey: 'wrong' });
    await expect(bad.workflows()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('says SayiirConnectionError when nothing listens', async () => {
    const nowhere = new SayiirClient({ url: 'http://127.0.0.1:9', apiKey: 'k' });
    await expect(nowhere.workflows()).rejects.toBeInstanceOf(SayiirConnectionError);
  });
});
