import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPoller } from '../../local/embedded-poller.ts';
import type { EventSource, EventSourceOptions, SqsEventHandler } from '../../local/event-source.ts';
import { startSqsPoller } from '../../local/sqs-poller.ts';
import { InProcessTaskQueue } from '../../shared/adapters/in-process/task-queue.ts';
import { openSqliteDatabase, type SqliteDatabase, SqliteDeadLetterStore } from '../../shared/adapters/sqlite/index.ts';
import { DeadLetters, parseDispatch, QueueUrlCache, SqsTaskQueue } from '../../shared/adapters/sqs/index.ts';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import type { Priority } from '../../shared/engine/task.ts';
import type { TaskQueue } from '../../shared/ports/task-queue.ts';
import { type PoolDefinition, queueName } from '../../shared/resources/queues.ts';
import { storeRedriveTarget } from '../../shared/runtime/dead-letters.ts';
import { type Fauxqs, queueDepth, startFauxqs } from '../support/fauxqs.ts';

const dispatch = (over: Partial<Dispatch> = {}): Dispatch => ({
  instanceId: 'inst-1',
  workflow: 'order',
  key: 'charge',
  qid: 'charge',
  input: { v: 'input:n1' },
  attempt: 1,
  gen: 1,
  priority: 'normal',
  pool: 'default',
  ...over,
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 25 ms until it holds; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(25);
  }
}

interface Delivery {
  readonly key: string;
  readonly priority: string;
  readonly receiveCount: string;
  readonly at: number;
}

const deliveryOf = (r: SQSRecord): Delivery => {
  const d = parseDispatch(r.body);
  return { key: d.key, priority: d.priority, receiveCount: r.attributes.ApproximateReceiveCount, at: Date.now() };
};

/** Fast pool: messages reappear 1 s after a failed receive. */
const FAST: Omit<PoolDefinition, 'name'> = { functionTimeoutSeconds: 1, visibilityTimeoutSeconds: 1 };

type Depth = { visible: number; inFlight: number };

/** One pool's queues behind one back end, and an event source reading them. */
interface Harness {
  readonly queue: TaskQueue;
  /** The dispatches given up on after too many receives, as the back end keeps them. */
  deadLetterDispatches(): Promise<Dispatch[]>;
  readonly errors: { error: unknown; phase: string }[];
  /** The queue name of a priority, as the records' `eventSourceARN` ends. */
  readonly queueName: (priority: Priority) => string;
  depth(priority?: Priority): Promise<Depth>;
  dlqDepth(): Promise<number>;
  start(handler: SqsEventHandler, options?: Partial<EventSourceOptions>): EventSource;
}

interface Backend {
  readonly name: string;
  before(): Promise<void>;
  after(): Promise<void>;
  setup(pool?: Omit<PoolDefinition, 'name'>): Promise<Harness>;
}

/** The local event source over fauxqs (SQS on the wire). */
function sqsBackend(): Backend {
  let sqs: Fauxqs;
  let n = 0;
  return {
    name: 'SQS poller on fauxqs',
    before: async () => {
      sqs = await startFauxqs();
    },
    after: async () => {
      await sqs?.close();
    },
    async setup(pool = FAST) {
      const prefix = `poll${++n}`;
      const urls = await sqs.createPoolQueues(prefix, { name: 'default', ...pool });
      const cache = new QueueUrlCache(sqs.client, prefix);
      const errors: { error: unknown; phase: string }[] = [];
      return {
        queue: new SqsTaskQueue(sqs.client, cache.queueUrl),
        deadLetterDispatches: async () =>
          (await new DeadLetters(sqs.client, cache.dlqUrl).receive('default')).flatMap((l) =>
            l.kind === 'dispatch' ? [l.dispatch] : [],
          ),
        errors,
        queueName: (priority) => new URL(urls[priority]).pathname.split('/')[2] as string,
        depth: (priority = 'normal') => queueDepth(sqs.client, urls[priority]),
        dlqDepth: async () => (await queueDepth(sqs.client, urls.dlq)).visible,
        start: (handler, options = {}) =>
          startSqsPoller({
            sqs: sqs.client,
            queueUrls: urls,
            handler,
            idleDelayMs: 20,
            onError: (error, phase) => errors.push({ error, phase }),
            ...options,
          }),
      };
    },
  };
}

/** The local event source over the embedded back end's in-process queue, dead letters in SQLite. */
function embeddedBackend(): Backend {
  const opened: { database: SqliteDatabase; dir: string }[] = [];
  let n = 0;
  return {
    name: 'embedded poller on the in-process queue',
    before: async () => {},
    after: async () => {
      for (const { database, dir } of opened.splice(0)) {
        database.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
    async setup(pool = FAST) {
      const dir = await mkdtemp(join(tmpdir(), 'sayiir-event-source-'));
      const database = openSqliteDatabase({ dataDir: dir });
      opened.push({ database, dir });
      const letters = new SqliteDeadLetterStore({ db: database.db });
      const queue = new InProcessTaskQueue({
        deadLetters: storeRedriveTarget(letters, () => Date.now()),
        ...(pool.maxReceiveCount === undefined ? {} : { maxReceiveCount: pool.maxReceiveCount }),
      });
      const prefix = `poll${++n}`;
      const errors: { error: unknown; phase: string }[] = [];
      return {
        queue,
        deadLetterDispatches: async () =>
          (await letters.list('default')).letters.flatMap((l) => (l.origin === 'malformed' ? [] : [l.dispatch])),
        errors,
        queueName: (priority) => queueName(prefix, 'default', priority),
        depth: async (priority = 'normal') => queue.depth('default')[priority],
        dlqDepth: async () => (await letters.list('default')).letters.length,
        start: (handler, options = {}) =>
          startEmbeddedPoller({
            queue,
            pool: 'default',
            queuePrefix: prefix,
            handler,
            idleDelayMs: 20,
            visibilityTimeoutSeconds: pool.visibilityTimeoutSeconds ?? pool.functionTimeoutSeconds ?? 30,
            onError: (error, phase) => errors.push({ error, phase }),
            ...options,
          }),
      };
    },
  };
}

describe.each([sqsBackend(), embeddedBackend()])('the local event source: $name', (backend) => {
  const pollers: EventSource[] = [];

  beforeAll(() => backend.before());
  afterEach(async () => {
    await Promise.all(pollers.splice(0).map((p) => p.stop()));
  });
  afterAll(() => backend.after());

  async function setup(pool?: Omit<PoolDefinition, 'name'>) {
    const harness = await backend.setup(pool);
    const start = (handler: SqsEventHandler, options: Partial<EventSourceOptions> = {}): EventSource => {
      const poller = harness.start(handler, options);
      pollers.push(poller);
      return poller;
    };
    return { ...harness, start };
  }

  const empty = (h: Harness) => h.depth('normal');

  it('takes high before normal before low', async () => {
    const { queue, start } = await setup();
    await queue.send([
      dispatch({ key: 'l1', priority: 'low' }),
      dispatch({ key: 'l2', priority: 'low' }),
      dispatch({ key: 'n1', priority: 'normal' }),
      dispatch({ key: 'n2', priority: 'normal' }),
      dispatch({ key: 'h1', priority: 'high' }),
      dispatch({ key: 'h2', priority: 'high' }),
    ]);
    const order: string[] = [];
    start(
      async (event) => {
        for (const r of event.Records) order.push(parseDispatch(r.body).priority);
      },
      { batchSize: 1, concurrency: 1 },
    );
    await waitFor(() => order.length === 6);
    expect(order).toEqual(['high', 'high', 'normal', 'normal', 'low', 'low']);
  });

  it('invokes the handler with a Lambda-shaped SQS event and context', async () => {
    const h = await setup();
    const { queue, start } = h;
    const sent = dispatch({ key: 'ship', priority: 'high' });
    await queue.send([sent]);
    let seen: { event: SQSEvent; context: Context; remaining: number[] } | undefined;
    start(
      async (event, context) => {
        const first = context.getRemainingTimeInMillis();
        await sleep(30);
        seen = { event, context, remaining: [first, context.getRemainingTimeInMillis()] };
      },
      { timeoutSeconds: 10, functionName: 'sayiir-worker-default' },
    );
    await waitFor(() => seen !== undefined);
    const { event, context, remaining } = seen!;
    expect(event.Records).toHaveLength(1);
    const [record] = event.Records;
    expect(record).toMatchObject({
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${h.queueName('high')}`,
      awsRegion: 'us-east-1',
      attributes: {
        ApproximateReceiveCount: '1',
        MessageGroupId: 'inst-1:ship',
        MessageDeduplicationId: 'inst-1:ship:1:1',
        SenderId: expect.any(String),
        SentTimestamp: expect.stringMatching(/^\d+$/),
        ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d+$/),
        SequenceNumber: expect.any(String),
      },
    });
    expect(record?.eventSourceARN).toMatch(/-high\.fifo$/);
    expect(record?.md5OfBody).toBe(
      createHash('md5')
        .update(record?.body ?? '')
        .digest('hex'),
    );
    expect(record?.receiptHandle).toBeTruthy();
    expect(parseDispatch(record?.body ?? '')).toEqual(sent);
    expect(context.functionName).toBe('sayiir-worker-default');
    expect(context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(context.invokedFunctionArn).toBe('arn:aws:lambda:us-east-1:000000000000:function:sayiir-worker-default');
    expect(remaining[0]).toBeLessThanOrEqual(10_000);
    expect(remaining[0]).toBeGreaterThan(9_000);
    expect(remaining[1]).toBeLessThan(remaining[0]!);
  });

  it('redelivers a record reported in batchItemFailures after its visibility timeout, and deletes the others', async () => {
    const h = await setup();
    const { queue, start } = h;
    await queue.send([dispatch({ key: 'fails-once' }), dispatch({ key: 'succeeds' })]);
    const deliveries: Delivery[] = [];
    start(async (event): Promise<SQSBatchResponse> => {
      const failures = [];
      for (const r of event.Records) {
        const d = deliveryOf(r);
        deliveries.push(d);
        if (d.key === 'fails-once' && d.receiveCount === '1') failures.push({ itemIdentifier: r.messageId });
      }
      return { batchItemFailures: failures };
    });
    await waitFor(() => deliveries.filter((d) => d.key === 'fails-once').length === 2);
    const [first, second] = deliveries.filter((d) => d.key === 'fails-once');
    expect([first?.receiveCount, second?.receiveCount]).toEqual(['1', '2']);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(900);

    // Past another visibility timeout: nothing comes back.
    await sleep(1300);
    expect(deliveries.filter((d) => d.key === 'succeeds').map((d) => d.receiveCount)).toEqual(['1']);
    expect(deliveries.filter((d) => d.key === 'fails-once')).toHaveLength(2);
    expect(await empty(h)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('leaves the whole batch for redelivery when the handler throws', async () => {
    const h = await setup();
    const { queue, start, errors } = h;
    await queue.send([dispatch({ key: 'a' }), dispatch({ key: 'b' })]);
    const deliveries: Delivery[] = [];
    let calls = 0;
    start(async (event) => {
      deliveries.push(...event.Records.map(deliveryOf));
      if (++calls === 1) throw new Error('worker crashed');
    });
    await waitFor(() => deliveries.length === 4);
    expect(deliveries.map((d) => `${d.key}:${d.receiveCount}`).sort()).toEqual(['a:1', 'a:2', 'b:1', 'b:2']);
    expect(errors).toEqual([{ error: new Error('worker crashed'), phase: 'invoke' }]);
    await waitFor(async () => (await empty(h)).inFlight === 0);
    expect(await empty(h)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('fails the whole batch on an invalid batch response, like Lambda', async () => {
    const { queue, start } = await setup();
    await queue.send([dispatch({ key: 'a' }), dispatch({ key: 'b' })]);
    const deliveries: Delivery[] = [];
    start(async (event) => {
      deliveries.push(...event.Records.map(deliveryOf));
      return deliveries.length <= 2 ? { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] } : undefined;
    });
    await waitFor(() => deliveries.length === 4);
    expect(deliveries.map((d) => `${d.key}:${d.receiveCount}`).sort()).toEqual(['a:1', 'a:2', 'b:1', 'b:2']);
  });

  it('fails the batch of an invocation that runs past the function timeout', async () => {
    const { queue, start, errors } = await setup();
    await queue.send([dispatch({ key: 'slow' })]);
    const deliveries: Delivery[] = [];
    start(
      async (event) => {
        deliveries.push(...event.Records.map(deliveryOf));
        if (deliveries.length === 1) await sleep(500);
      },
      { timeoutSeconds: 0.2 },
    );
    await waitFor(() => deliveries.length === 2);
    expect(deliveries.map((d) => d.receiveCount)).toEqual(['1', '2']);
    expect(errors.map((e) => (e.error as Error).name)).toEqual(['SqsPollerTimeoutError']);
  });

  it('moves a message to the DLQ after maxReceiveCount failed receives', async () => {
    const h = await setup({ ...FAST, maxReceiveCount: 2 });
    const { queue, start } = h;
    const sent = dispatch({ key: 'poison', attempt: 4 });
    await queue.send([sent]);
    const deliveries: Delivery[] = [];
    start(async (event) => {
      deliveries.push(...event.Records.map(deliveryOf));
      return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
    });
    await waitFor(async () => (await h.dlqDepth()) === 1);
    expect(deliveries.map((d) => d.receiveCount)).toEqual(['1', '2']);
    expect(await empty(h)).toEqual({ visible: 0, inFlight: 0 });
    expect(await h.deadLetterDispatches()).toEqual([sent]);
  });

  it('stop() returns within a second while idle, even with long polling', async () => {
    const { start } = await setup();
    const poller = start(async () => {}, { waitTimeSeconds: 1, concurrency: 2 });
    await sleep(200);
    const before = Date.now();
    await poller.stop();
    expect(Date.now() - before).toBeLessThan(1200);
  });

  it('stop() waits for in-flight handler calls, which then get their messages deleted', async () => {
    const h = await setup({ functionTimeoutSeconds: 5 });
    const { queue, start } = h;
    await queue.send([dispatch()]);
    let started = false;
    let finished = false;
    const poller = start(async () => {
      started = true;
      await sleep(300);
      finished = true;
    });
    await waitFor(() => started);
    await poller.stop();
    expect(finished).toBe(true);
    expect(await empty(h)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('runs messages of different groups in parallel lanes, but one group one at a time', async () => {
    const { queue, start } = await setup({ functionTimeoutSeconds: 5 });
    await queue.send([
      dispatch({ key: 'branch-a' }),
      dispatch({ key: 'branch-b' }),
      dispatch({ key: 'branch-a', attempt: 2 }),
    ]);
    let running = 0;
    let maxRunning = 0;
    const runningKeys = new Set<string>();
    let sameGroupOverlap = false;
    const done: string[] = [];
    start(
      async (event) => {
        const d = parseDispatch(event.Records[0]?.body ?? '');
        if (runningKeys.has(d.key)) sameGroupOverlap = true;
        runningKeys.add(d.key);
        maxRunning = Math.max(maxRunning, ++running);
        await sleep(200);
        running--;
        runningKeys.delete(d.key);
        done.push(`${d.key}#${d.attempt}`);
      },
      { batchSize: 1, concurrency: 3 },
    );
    await waitFor(() => done.length === 3);
    expect(maxRunning).toBe(2);
    expect(sameGroupOverlap).toBe(false);
    expect(done.indexOf('branch-a#1')).toBeLessThan(done.indexOf('branch-a#2'));
  });
});
