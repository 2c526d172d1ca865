import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDeadLetterStore } from '../../shared/adapters/dynamodb/dead-letter-store.ts';
import { FakeClock } from '../../shared/adapters/memory/clock.ts';
import { DeadLetters, DispatchParseError, encodeDispatch, QueueUrlCache } from '../../shared/adapters/sqs/index.ts';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import { drainDeadLetters } from '../../shared/runtime/dead-letters.ts';
import { type Dynalite, startDynalite } from '../support/dynalite.ts';
import { type Fauxqs, queueDepth, startFauxqs } from '../support/fauxqs.ts';
import { waitFor } from '../support/local-api.ts';

const dispatch = (over: Partial<Dispatch> = {}): Dispatch => ({
  instanceId: 'inst-9',
  workflow: 'order',
  key: 'charge',
  qid: 'charge',
  input: { all: [{ v: 'out:a' }, { c: 3 }] },
  attempt: 5,
  gen: 1,
  priority: 'high',
  pool: 'default',
  ...over,
});

class ReaperDiedError extends Error {}

describe('the SQS DLQ, drained into the dead-letter store (fauxqs and dynalite)', () => {
  let sqs: Fauxqs;
  let db: Dynalite;
  let n = 0;

  beforeAll(async () => {
    [sqs, db] = await Promise.all([startFauxqs(), startDynalite()]);
  });
  afterAll(async () => {
    await Promise.all([sqs?.close(), db?.close()]);
  });

  async function setup() {
    const prefix = `dl${++n}`;
    const urls = await sqs.createPoolQueues(prefix, 'default');
    const queue = new DeadLetters(sqs.client, new QueueUrlCache(sqs.client, prefix).dlqUrl);
    // Each test its own pool name in the shared table: listings do not see each other.
    const store = new DynamoDeadLetterStore({ client: db.client, tableName: db.tables.instances });
    const put = (body: string, id: string) =>
      sqs.client.send(
        new SendMessageCommand({
          QueueUrl: urls.dlq,
          MessageBody: body,
          MessageGroupId: `g-${id}`,
          MessageDeduplicationId: id,
        }),
      );
    return { urls, queue, store, put, clock: new FakeClock(1_700_000_000_000) };
  }

  it('receives a moved dispatch as a dispatch and anything else as malformed, with the parse error', async () => {
    const { urls, queue, put } = await setup();
    await put(encodeDispatch(dispatch()), 'a');
    await put('garbage', 'b');
    const received = await queue.receive('default');
    expect(received.map((m) => m.kind)).toEqual(['dispatch', 'malformed']);
    const [moved, bad] = received;
    expect(moved?.kind === 'dispatch' && moved.dispatch).toEqual(dispatch());
    expect(bad?.kind === 'malformed' && bad.body).toBe('garbage');
    expect(bad?.kind === 'malformed' && bad.error).toBeInstanceOf(DispatchParseError);
    await queue.delete('default', received);
    expect(await queueDepth(sqs.client, urls.dlq)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('drains every message into a record (origin redrive or malformed) and empties the queue', async () => {
    const { urls, queue, store, put, clock } = await setup();
    for (let i = 0; i < 12; i++) await put(encodeDispatch(dispatch({ instanceId: `d${n}-${i}` })), `m${i}`);
    await put('{"not":"a dispatch"}', 'x');
    expect(await drainDeadLetters({ queue, store, clock }, 'default')).toBe(13);
    expect(await queueDepth(sqs.client, urls.dlq)).toEqual({ visible: 0, inFlight: 0 });
    const { letters } = await store.list('default', { limit: 50 });
    const mine = letters.filter((l) => l.origin === 'malformed' || l.dispatch.instanceId.startsWith(`d${n}-`));
    expect(mine.filter((l) => l.origin === 'redrive')).toHaveLength(12);
    expect(mine.filter((l) => l.origin === 'malformed').map((l) => l.origin === 'malformed' && l.body)).toContain(
      '{"not":"a dispatch"}',
    );
  });

  it('a drain that dies between the put and the delete is harmless: the message comes back, its record stays one', async () => {
    const { urls, queue, store, put, clock } = await setup();
    const moved = dispatch({ instanceId: `crash-${n}` });
    await put(encodeDispatch(moved), 'c');
    const dying = {
      queue,
      store,
      clock,
      faults: () => {
        throw new ReaperDiedError('killed after the put');
      },
    };
    await expect(drainDeadLetters(dying, 'default', { holdSeconds: 1 })).rejects.toBeInstanceOf(ReaperDiedError);
    expect((await store.ofInstance(moved.instanceId)).map((l) => l.origin)).toEqual(['redrive']);
    expect(await queueDepth(sqs.client, urls.dlq)).toEqual({ visible: 0, inFlight: 1 });

    // The next passes find the message again once the dead drain's hold ends.
    clock.advance(60_000);
    const drain = { queue, store, clock };
    await waitFor(async () => ((await drainDeadLetters(drain, 'default')) === 1 ? true : undefined));
    expect(await queueDepth(sqs.client, urls.dlq)).toEqual({ visible: 0, inFlight: 0 });
    const records = await store.ofInstance(moved.instanceId);
    expect(records).toHaveLength(1);
    // The first put's record, untouched by the second.
    expect(records[0]?.at).toBe(1_700_000_000_000);
  });
});
