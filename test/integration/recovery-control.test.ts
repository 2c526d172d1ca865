import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmulatedLocalStack, type LocalStack, startLocalStack } from '../../local/stack.ts';
import { encodeDispatch, QueueUrlCache } from '../../shared/adapters/sqs/index.ts';
import { materialize, refValueIds } from '../../shared/engine/refs.ts';
import { flow, TerminalError, task } from '../../shared/index.ts';
import { queueDepth } from '../support/fauxqs.ts';
import { apiClient, waitFor } from '../support/local-api.ts';

let fixed = false;
const doomed = flow<{ order: string }>('doomed')
  .then(
    task(
      'charge',
      (input: { order: string }) => {
        if (!fixed) throw new Error(`card declined for ${input.order}`);
        return { charged: input.order };
      },
      { retry: { maxAttempts: 2, initialDelay: '100ms' } },
    ),
  )
  .build();

let sawAbort = false;
let afterRan = false;
const cancellable = flow<null>('cancellable')
  .then(
    task(
      'long',
      (_: null, ctx) =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => resolve('finished'), 20_000);
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            sawAbort = true;
            reject(new Error('aborted'));
          });
        }),
      { timeout: '30s' },
    ),
  )
  .then('after', () => {
    afterRan = true;
    return 1;
  })
  .build();

let release: () => void = () => undefined;
const pausable = flow<null>('pausable')
  .then('first', () => new Promise<string>((r) => (release = () => r('one'))), { timeout: '30s' })
  .then('second', (s: string) => `${s}+two`)
  .build();

const skippable = flow<number>('skippable')
  .then(
    task('lookup', (): number => {
      throw new TerminalError('service retired');
    }),
  )
  .then('use', (n: number) => n * 2)
  .build();

describe.each([
  { backend: 'embedded', emulateAws: false },
  { backend: 'AWS emulation', emulateAws: true },
])('recovery and control through the API, on the local stack ($backend)', ({ emulateAws }) => {
  let dir: string;
  let stack: LocalStack;
  let call: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    // The workflows' module state, fresh for each back end.
    fixed = false;
    sawAbort = false;
    afterRan = false;
    dir = await mkdtemp(join(tmpdir(), 'sayiir-recovery-'));
    stack = await startLocalStack({
      emulateAws,
      dataDir: dir,
      workflows: [doomed, cancellable, pausable, skippable],
      reaperIntervalMs: 100,
      claims: { reserveTtlMs: 1_000, leaseMs: 1_500, heartbeatMs: 300 },
    });
    call = apiClient(stack);
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const status = (id: string, wanted: string) =>
    waitFor(
      async () => {
        const r = await call('GET', `/instances/${id}`);
        return r.json.status === wanted ? r.json : undefined;
      },
      15_000,
      `${id} to be ${wanted}`,
    );

  it('puts a task whose retries ran out in the DLQ with reason, attempts and input; redrive completes the run', async () => {
    await call('POST', '/workflows/doomed/instances', { input: { order: 'A-1' }, instanceId: 'doomed-1' });
    const failed = await status('doomed-1', 'FAILED');
    expect(failed.error).toMatchObject({ taskKey: 'charge', attempts: 2 });
    const listed = await waitFor(async () => {
      const r = await call('GET', '/dlq/default');
      return r.json.items.length > 0 ? r.json.items : undefined;
    });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      origin: 'engine',
      instanceId: 'doomed-1',
      taskKey: 'charge',
      attempts: 2,
      reason: 'Error: card declined for A-1',
      input: { order: 'A-1' },
    });
    expect(listed[0].attemptHistory.map((a: { attempt: number }) => a.attempt)).toEqual([1, 2]);
    expect(listed[0].state).toBe('open');
    // Reading changes nothing: the same letter read again, the same record in the store.
    const before = await stack.deadLetters.list('default');
    expect(before.letters).toHaveLength(1);
    expect((await call('GET', '/dlq/default')).json.items).toEqual(listed);
    expect(await stack.deadLetters.list('default')).toEqual(before);

    fixed = true;
    const redrive = await call('POST', '/dlq/default/redrive', { instanceId: 'doomed-1' });
    expect(redrive.status).toBe(200);
    expect(redrive.json.redriven).toEqual([expect.objectContaining({ instanceId: 'doomed-1', taskKey: 'charge' })]);
    const done = await status('doomed-1', 'COMPLETED');
    expect(done.output).toEqual({ charged: 'A-1' });
    expect((await call('GET', '/dlq/default')).json.items).toHaveLength(0);
    const history = (await call('GET', '/instances/doomed-1/history')).json.items.map((e: { type: string }) => e.type);
    expect(history).toEqual(
      expect.arrayContaining([
        'run-started',
        'task-failed',
        'run-failed',
        'task-retried',
        'task-completed',
        'run-completed',
      ]),
    );
  });

  // Only the emulation has SQS DLQs to drain: the embedded queue puts what it gives up on in the store at once.
  if (emulateAws) {
    it("the reaper drains what SQS moved to a pool's DLQ into records the API lists; the queue ends empty", async () => {
      const dlq = await new QueueUrlCache(sqsOf(stack), 'sayiir-local').dlqUrl('default');
      const moved = {
        instanceId: 'gone-1',
        workflow: 'doomed',
        key: 'charge',
        qid: 'charge',
        input: { c: null },
        attempt: 3,
        gen: 1,
        priority: 'normal' as const,
        pool: 'default',
      };
      for (const [body, id] of [
        [encodeDispatch(moved), 'moved'],
        ['not a dispatch', 'junk'],
      ]) {
        await sqsOf(stack).send(
          new SendMessageCommand({ QueueUrl: dlq, MessageBody: body, MessageGroupId: id, MessageDeduplicationId: id }),
        );
      }
      const items = await waitFor(async () => {
        const r = await call('GET', '/dlq/default');
        return r.json.items.length === 2 ? r.json.items : undefined;
      });
      expect(items.map((i: { origin: string; state: string }) => [i.origin, i.state]).sort()).toEqual([
        ['malformed', 'open'],
        // Its instance does not exist: nothing waits on it.
        ['redrive', 'resolved'],
      ]);
      expect(await queueDepth(sqsOf(stack), dlq)).toEqual({ visible: 0, inFlight: 0 });
      const r = await call('POST', '/dlq/default/redrive');
      expect(r.json.redriven).toEqual([]);
      expect(r.json.skipped.map((x: { reason: string }) => x.reason).sort()).toEqual([
        'not a dispatch: nothing to redrive (kept for inspection)',
        'the instance is gone',
      ]);
      expect((await call('GET', '/dlq/default')).json.items.map((i: { origin: string }) => i.origin)).toEqual([
        'malformed',
      ]);
    });
  }

  it('cancel reaches a running task at its next heartbeat; nothing more runs', async () => {
    await call('POST', '/workflows/cancellable/instances', { input: null, instanceId: 'cancel-1' });
    await waitFor(async () => ((await stack.claims.get('cancel-1', 'long'))?.state === 'executing' ? true : undefined));
    const started = Date.now();
    const r = await call('POST', '/instances/cancel-1/cancel', { reason: 'user asked' });
    expect(r.status).toBe(200);
    expect(r.json.status).toBe('CANCELLED');
    await waitFor(async () => (sawAbort ? true : undefined), 5_000, 'the task to see its AbortSignal');
    expect(Date.now() - started).toBeLessThan(3_000);
    await new Promise((res) => setTimeout(res, 500));
    expect(afterRan).toBe(false);
    expect((await call('GET', '/instances/cancel-1')).json.status).toBe('CANCELLED');
  });

  it('pause lets the running task finish and checkpoint, dispatches nothing new; resume continues', async () => {
    await call('POST', '/workflows/pausable/instances', { input: null, instanceId: 'pause-1' });
    await waitFor(async () => ((await stack.claims.get('pause-1', 'first'))?.state === 'executing' ? true : undefined));
    expect((await call('POST', '/instances/pause-1/pause')).json.status).toBe('PAUSED');
    release();
    const held = await waitFor(async () => {
      const s = await stack.store.get('pause-1');
      return s?.tasks.second?.state === 'ready' ? s : undefined;
    });
    expect(held.status).toBe('PAUSED');
    const first = held.tasks.second?.input ?? { c: null };
    expect(materialize(first, await stack.store.getValues('pause-1', refValueIds(first)))).toBe('one');
    await new Promise((res) => setTimeout(res, 300));
    expect((await stack.store.get('pause-1'))?.tasks.second?.state).toBe('ready');
    expect((await call('POST', '/instances/pause-1/resume')).json.status).toBe('RUNNING');
    expect((await status('pause-1', 'COMPLETED')).output).toBe('one+two');
  });

  it('skips a failed task with a supplied output, and refuses a retry of a task that did not fail', async () => {
    await call('POST', '/workflows/skippable/instances', { input: 1, instanceId: 'skip-1' });
    await status('skip-1', 'FAILED');
    expect((await call('POST', '/instances/skip-1/tasks/use/retry')).status).toBe(409);
    const bad = await call('POST', '/instances/skip-1/tasks/lookup/skip', { nothing: 1 });
    expect(bad.status).toBe(400);
    const r = await call('POST', '/instances/skip-1/tasks/lookup/skip', { output: 21 });
    expect(r.status).toBe(200);
    expect((await status('skip-1', 'COMPLETED')).output).toBe(42);
    expect((await call('POST', '/instances/skip-1/tasks/lookup/skip', { output: 1 })).status).toBe(409);
  });
});

/** The SQS client of a stack started with `emulateAws: true`. */
const sqsOf = (stack: LocalStack) => (stack as EmulatedLocalStack).sqs;
