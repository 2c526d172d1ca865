import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmulatedLocalStack, startLocalStack } from '../../local/stack.ts';
import { countRequests, type RequestCounter } from '../../shared/adapters/aws/request-counter.ts';
import { flow, task } from '../../shared/index.ts';
import { apiClient, waitFor } from '../support/local-api.ts';

const MB = 1_000_000;

/** A 5 MB input in, a 5 MB output of a task, a 1 MB signal payload, and the run's output out. */
const big = flow<{ blob: string }>('big')
  .then(task('grow', ({ blob }: { blob: string }) => ({ blob: blob.toUpperCase(), size: blob.length })))
  .waitForSignal<{ note: string }>('approve', 'approval')
  .then(task('finish', (signal: { note: string }) => ({ noteSize: signal.note.length, tail: signal.note.slice(-3) })))
  .build();

describe('large payloads end to end, over the wire (dynalite, fauxqs SQS and S3)', () => {
  let dir: string;
  let stack: EmulatedLocalStack;
  let s3: RequestCounter;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-big-'));
    stack = await startLocalStack({
      emulateAws: true,
      dataDir: dir,
      workflows: [big],
      payloads: 's3',
    });
    s3 = countRequests(stack.s3 as never);
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a 5 MB input, a 5 MB task output and a 1 MB signal payload, the values offloaded to S3', async () => {
    const call = apiClient(stack);
    const blob = 'a'.repeat(5 * MB);
    const started = await call('POST', '/workflows/big/instances', { input: { blob }, instanceId: 'big-1' });
    expect(started.status).toBe(201);
    await waitFor(async () => ((await call('GET', '/instances/big-1')).json.waits?.length ? true : undefined), 60_000);
    const note = `${'n'.repeat(MB - 3)}end`;
    const signalled = await call('POST', '/instances/big-1/signals/approval', { note });
    expect(signalled.status).toBe(202);
    const done = await waitFor(async () => {
      const r = await call('GET', '/instances/big-1?wait=5');
      return r.json.status === 'COMPLETED' ? r.json : undefined;
    }, 60_000);
    expect(done.output).toEqual({ noteSize: MB, tail: 'end' });
    // The input, the 5 MB output and the signal payload each went to S3 once, and were read back from there.
    expect(s3.count('PutObjectCommand')).toBe(3);
    expect(s3.count('GetObjectCommand')).toBeGreaterThanOrEqual(2);
    // The task saw its 5 MB input whole, and the next one the 1 MB payload.
    const history = (await call('GET', '/instances/big-1/history')).json.items as { type: string; key?: string }[];
    expect(history.filter((e) => e.type === 'task-completed').map((e) => e.key)).toEqual(['grow', 'finish']);
  });

  it('refuses a body over the API limit with a 413, creating nothing', async () => {
    const call = apiClient(stack);
    const r = await call('POST', '/workflows/big/instances', {
      input: { blob: 'b'.repeat(6 * MB) },
      instanceId: 'too-big',
    });
    expect(r.status).toBe(413);
    expect((await call('GET', '/instances/too-big')).status).toBe(404);
  });
});
