import { lookup } from 'node:dns/promises';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SendMessageBatchCommandOutput,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DispatchParseError,
  parseDispatch,
  QueueNotFoundError,
  QueueSendError,
  QueueUrlCache,
  SqsTaskQueue,
} from '../../shared/adapters/sqs/index.ts';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import { PayloadTooLargeError } from '../../shared/ports/errors.ts';
import { type Fauxqs, type PoolQueueUrls, startFauxqs } from '../support/fauxqs.ts';

const dispatch = (over: Partial<Dispatch> = {}): Dispatch => ({
  instanceId: 'inst-1',
  workflow: 'order',
  key: 'charge',
  qid: 'charge',
  input: { v: 'input:n1', at: ['order', 0] },
  attempt: 1,
  gen: 1,
  priority: 'normal',
  pool: 'default',
  ...over,
});

/** Counts the SDK commands a client sends, by name. */
function countCommands(client: SQSClient): Map<string, number> {
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return counts;
}

async function receive(client: SQSClient, queueUrl: string): Promise<Message[]> {
  const { Messages = [] } = await client.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['All'],
    }),
  );
  return Messages;
}

/** Receives until a receive comes back empty (each message of a distinct group arrives once). */
async function receiveAll(client: SQSClient, queueUrl: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const batch = await receive(client, queueUrl);
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

async function visibleCount(client: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages);
}

describe('SqsTaskQueue on fauxqs', () => {
  let sqs: Fauxqs;
  let n = 0;
  /** A fresh prefix per test, so queues never leak messages between tests. */
  const freshPrefix = (): string => `tq${++n}`;

  beforeAll(async () => {
    sqs = await startFauxqs();
  });
  afterAll(async () => {
    await sqs?.close();
  });

  async function setup(pools: readonly string[] = ['default']) {
    const prefix = freshPrefix();
    const urls: Record<string, PoolQueueUrls> = {};
    for (const pool of pools) urls[pool] = await sqs.createPoolQueues(prefix, pool);
    const client = sqs.newClient();
    const counts = countCommands(client);
    const queue = new SqsTaskQueue(client, new QueueUrlCache(client, prefix).queueUrl);
    return { prefix, urls, client, counts, queue };
  }

  it('sends each dispatch to its pool and priority queue, with dedup id instance:key:attempt:gen and group id instance:key', async () => {
    const { urls, queue, client } = await setup(['default', 'gpu']);
    const high = dispatch({ key: 'charge', priority: 'high' });
    const low = dispatch({ key: 'ship/label', qid: 'ship/label', priority: 'low', attempt: 3 });
    const gpu = dispatch({ key: 'resize[3]', qid: 'resize[]', pool: 'gpu', gen: 2 });
    await queue.send([high, low, gpu]);

    const got = {
      high: await receiveAll(client, urls.default!.high),
      normal: await receiveAll(client, urls.default!.normal),
      low: await receiveAll(client, urls.default!.low),
      gpuNormal: await receiveAll(client, urls.gpu!.normal),
      gpuHigh: await receiveAll(client, urls.gpu!.high),
    };
    expect(got.normal).toHaveLength(0);
    expect(got.gpuHigh).toHaveLength(0);
    const cases: [Message[], Dispatch, string, string][] = [
      [got.high, high, 'inst-1:charge:1:1', 'inst-1:charge'],
      [got.low, low, 'inst-1:ship/label:3:1', 'inst-1:ship/label'],
      [got.gpuNormal, gpu, 'inst-1:resize[3]:1:2', 'inst-1:resize[3]'],
    ];
    for (const [messages, sent, dedupId, groupId] of cases) {
      expect(messages).toHaveLength(1);
      const [m] = messages;
      expect(m?.Attributes?.MessageDeduplicationId).toBe(dedupId);
      expect(m?.Attributes?.MessageGroupId).toBe(groupId);
      expect(parseDispatch(m?.Body ?? '')).toEqual(sent);
      // References only: a dispatch is a few hundred bytes.
      expect(Buffer.byteLength(m?.Body ?? '')).toBeLessThan(512);
    }
  });

  it('works through the explicit endpoint although queue URLs name a host that does not resolve', async () => {
    const { urls, queue, client } = await setup();
    const host = new URL(urls.default!.normal).hostname;
    await expect(lookup(host)).rejects.toThrow();
    await queue.send([dispatch()]);
    expect(await receiveAll(client, urls.default!.normal)).toHaveLength(1);
  });

  it('delivers a duplicate dispatch once, while a re-dispatch (next gen) or a retry (next attempt) is a new message', async () => {
    const { urls, queue, client } = await setup();
    const url = urls.default!.normal;
    await queue.send([dispatch()]);
    await queue.send([dispatch()]);
    await queue.send([dispatch({ gen: 2 })]);
    await queue.send([dispatch({ attempt: 2 })]);
    expect(await visibleCount(client, url)).toBe(3);

    // One group: FIFO hands them out one at a time, in order.
    const received: string[] = [];
    for (;;) {
      const [m] = await receive(client, url);
      if (!m) break;
      const d = parseDispatch(m.Body ?? '');
      received.push(`${d.attempt}.${d.gen}`);
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    }
    expect(received).toEqual(['1.1', '1.2', '2.1']);
  });

  it('puts fork branches of one instance in different groups, so they are received together', async () => {
    const { urls, queue, client } = await setup();
    await queue.send([
      dispatch({ key: 'fork1/email', qid: 'fork1/email' }),
      dispatch({ key: 'fork1/ship', qid: 'fork1/ship' }),
    ]);
    const batch = await receive(client, urls.default!.normal);
    expect(batch.map((m) => m.Attributes?.MessageGroupId).sort()).toEqual(['inst-1:fork1/email', 'inst-1:fork1/ship']);
  });

  it('sends 25 dispatches in 3 SendMessageBatch calls and all of them arrive', async () => {
    const { urls, queue, client, counts } = await setup();
    const sent = Array.from({ length: 25 }, (_, i) => dispatch({ key: `resize[${i}]`, qid: 'resize[]' }));
    await queue.send(sent);
    expect(counts.get('SendMessageBatchCommand')).toBe(3);
    const received = await receiveAll(client, urls.default!.normal);
    expect(received.map((m) => parseDispatch(m.Body ?? '').key).sort()).toEqual(sent.map((d) => d.key).sort());
  });

  it('replaces ids SQS would reject (too long, non-ASCII) by a SHA-256, and the dispatch still round-trips', async () => {
    const { urls, queue, client } = await setup();
    const sent = dispatch({ instanceId: 'i'.repeat(150), key: 'envoyer le reçu', qid: 'envoyer le reçu' });
    await queue.send([sent]);
    const [m] = await receiveAll(client, urls.default!.normal);
    expect(m?.Attributes?.MessageDeduplicationId).toMatch(/^sha256-[0-9a-f]{64}$/);
    expect(m?.Attributes?.MessageGroupId).toMatch(/^sha256-[0-9a-f]{64}$/);
    expect(m?.Attributes?.MessageGroupId).not.toBe(m?.Attributes?.MessageDeduplicationId);
    expect(parseDispatch(m?.Body ?? '')).toEqual(sent);
  });

  it('retries an entry the batch reports as failed, and the dispatch arrives once', async () => {
    const { urls, queue, client, counts } = await setup();
    // Fault injection on the real response: SQS accepted the entry but reported it failed.
    let injected = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'SendMessageBatchCommand' && !injected) {
          injected = true;
          const output = result.output as SendMessageBatchCommandOutput;
          const [first, ...rest] = output.Successful ?? [];
          output.Successful = rest;
          output.Failed = [
            ...(output.Failed ?? []),
            { Id: first?.Id, Code: 'InternalError', SenderFault: false, Message: 'injected' },
          ];
        }
        return result;
      },
      { step: 'initialize', name: 'injectFailure' },
    );
    await queue.send([dispatch({ key: 'a' }), dispatch({ key: 'b' })]);
    expect(counts.get('SendMessageBatchCommand')).toBe(2);
    const received = await receiveAll(client, urls.default!.normal);
    expect(received.map((m) => parseDispatch(m.Body ?? '').key).sort()).toEqual(['a', 'b']);
  });

  it('throws QueueSendError naming the dispatch SQS rejected for the sender’s fault, without retrying it', async () => {
    const { urls, queue, client, counts } = await setup();
    // U+FFFF is valid JSON but not a character SQS accepts in a body.
    const bad = dispatch({ key: 'bad', input: { c: '\uffff' } });
    const error = await queue.send([dispatch({ key: 'good' }), bad]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueSendError);
    expect((error as QueueSendError).keys).toEqual(['inst-1:bad']);
    expect((error as QueueSendError).failed[0]).toMatchObject({ senderFault: true, code: 'InvalidMessageContents' });
    expect(counts.get('SendMessageBatchCommand')).toBe(1);
    const received = await receiveAll(client, urls.default!.normal);
    expect(received.map((m) => parseDispatch(m.Body ?? '').key)).toEqual(['good']);
  });

  it('throws QueueSendError naming every dispatch of a batch request that failed as a whole', async () => {
    const { urls, client } = await setup();
    // A resolver that names a queue that does not exist: the whole request fails.
    const queue = new SqsTaskQueue(client, async () => urls.default!.normal.replace('-normal.fifo', '-gone.fifo'));
    const error = await queue.send([dispatch({ key: 'a' }), dispatch({ key: 'b' })]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueSendError);
    expect((error as QueueSendError).keys.sort()).toEqual(['inst-1:a', 'inst-1:b']);
    expect((error as QueueSendError).cause).toBeInstanceOf(Error);
  });

  it('refuses a dispatch body over the limit before sending anything', async () => {
    const { urls, client, counts, prefix } = await setup();
    const queue = new SqsTaskQueue(client, new QueueUrlCache(client, prefix).queueUrl, { maxBodyBytes: 1024 });
    const big = dispatch({ key: 'big', input: { c: 'x'.repeat(2000) } });
    await expect(queue.send([dispatch(), big])).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(counts.get('SendMessageBatchCommand')).toBeUndefined();
    expect(await visibleCount(client, urls.default!.normal)).toBe(0);
  });

  it('looks each queue URL up once, and names a missing queue', async () => {
    const { queue, counts } = await setup();
    await queue.send([dispatch({ key: 'a' })]);
    await queue.send([dispatch({ key: 'b' })]);
    expect(counts.get('GetQueueUrlCommand')).toBe(1);
    await expect(queue.send([dispatch({ pool: 'nowhere' })])).rejects.toThrow(QueueNotFoundError);
    await expect(queue.send([dispatch({ pool: 'nowhere' })])).rejects.toThrow(/nowhere-normal\.fifo/);
  });
});

describe('parseDispatch', () => {
  const valid = JSON.stringify(dispatch());

  it('reads a malformed message received from SQS as a typed error', async () => {
    const sqs = await startFauxqs();
    try {
      const urls = await sqs.createPoolQueues('bad', 'default');
      await sqs.client.send(
        new SendMessageCommand({
          QueueUrl: urls.normal,
          MessageBody: '{"hello": "world"}',
          MessageGroupId: 'g',
          MessageDeduplicationId: 'd',
        }),
      );
      const [m] = await receiveAll(sqs.client, urls.normal);
      expect(() => parseDispatch(m?.Body ?? '')).toThrow(DispatchParseError);
    } finally {
      await sqs.close();
    }
  });

  it.each([
    ['not JSON', 'hello', /not JSON/],
    ['not an object', '[1,2]', /not a JSON object/],
    ['a missing instanceId', JSON.stringify({ ...dispatch(), instanceId: undefined }), /'instanceId'/],
    ['attempt 0', JSON.stringify({ ...dispatch(), attempt: 0 }), /'attempt'/],
    ['a fractional gen', JSON.stringify({ ...dispatch(), gen: 1.5 }), /'gen'/],
    ['an unknown priority', JSON.stringify({ ...dispatch(), priority: 'urgent' }), /'priority'/],
    ['an input that is no ref', JSON.stringify({ ...dispatch(), input: { x: 1 } }), /input/],
    ['a nested bad ref', JSON.stringify({ ...dispatch(), input: { all: [{ v: 'a' }, { v: 3 }] } }), /input\.all\[1\]/],
  ])('throws DispatchParseError for %s', (_, body, reason) => {
    expect(() => parseDispatch(body)).toThrow(DispatchParseError);
    expect(() => parseDispatch(body)).toThrow(reason);
  });

  it('drops unknown fields and keeps every ref kind', () => {
    const input = {
      all: [
        { v: 'out:a' },
        { c: { n: 1 } },
        { v: 'input:x', at: ['items', 2] },
        { each: 'out:m[]', n: 3 },
        { each: 'out:outer[1]/m[]/b', n: 2, except: { '1': { v: 'sig:z' } } },
      ],
    };
    const parsed = parseDispatch(JSON.stringify({ ...dispatch({ input }), extra: true }));
    expect(parsed).toEqual(dispatch({ input }));
    expect(parseDispatch(valid)).toEqual(dispatch());
  });

  it("refuses a map-results ref without a '[]' template or with a bad count", () => {
    expect(() => parseDispatch(JSON.stringify(dispatch({ input: { each: 'out:m', n: 2 } })))).toThrow(/template/);
    expect(() => parseDispatch(JSON.stringify(dispatch({ input: { each: 'out:m[]', n: -1 } })))).toThrow(/\.n is not/);
  });

  it('reads a dispatch without gen (sent before generations existed) as the first generation', () => {
    const { gen: _, ...old } = dispatch({ gen: 7 });
    expect(parseDispatch(JSON.stringify(old))).toEqual(dispatch({ gen: 1 }));
  });
});
