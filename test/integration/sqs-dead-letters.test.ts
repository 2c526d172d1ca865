import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetters, DispatchParseError, QueueUrlCache } from '../../shared/adapters/sqs/index.ts';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import { type Fauxqs, startFauxqs } from '../support/fauxqs.ts';

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

describe('DeadLetters on fauxqs', () => {
  let sqs: Fauxqs;
  let n = 0;

  beforeAll(async () => {
    sqs = await startFauxqs();
  });
  afterAll(async () => {
    await sqs?.close();
  });

  async function setup() {
    const prefix = `dl${++n}`;
    const urls = await sqs.createPoolQueues(prefix, 'default');
    return { urls, deadLetters: new DeadLetters(sqs.client, new QueueUrlCache(sqs.client, prefix).dlqUrl) };
  }

  it('sends a record to the pool DLQ and reads it back with its reason and attempts', async () => {
    const { deadLetters } = await setup();
    const record = {
      dispatch: dispatch(),
      reason: 'retries exhausted',
      attempts: 5,
      failedAt: 1_700_000_000_000,
      error: { name: 'PaymentDeclined', message: 'card declined' },
    };
    await deadLetters.send(record);
    const letters = await deadLetters.list('default');
    expect(letters).toHaveLength(1);
    const [letter] = letters;
    expect(letter?.origin).toBe('engine');
    expect(letter?.origin === 'engine' && letter.record).toEqual(record);
    expect(letter?.receiveCount).toBe(1);
    expect(letter?.sentAt).toBeGreaterThan(0);
  });

  it('keeps one record when the same attempt is sent twice', async () => {
    const { deadLetters } = await setup();
    const record = { dispatch: dispatch(), reason: 'retries exhausted', attempts: 5 };
    await deadLetters.send(record);
    await deadLetters.send(record);
    await deadLetters.send({ ...record, dispatch: dispatch({ key: 'other' }) });
    const letters = await deadLetters.list('default');
    expect(letters.map((l) => (l.origin === 'malformed' ? 'malformed' : l.record.dispatch.key)).sort()).toEqual([
      'charge',
      'other',
    ]);
  });

  it('hides listed records until released, and deletes them for good', async () => {
    const { deadLetters } = await setup();
    await deadLetters.send({ dispatch: dispatch(), reason: 'x', attempts: 1 });
    const listed = await deadLetters.list('default', { holdSeconds: 30 });
    expect(listed).toHaveLength(1);
    expect(await deadLetters.list('default')).toHaveLength(0);

    await deadLetters.release('default', listed);
    const again = await deadLetters.list('default');
    expect(again).toHaveLength(1);
    expect(again[0]?.receiveCount).toBe(2);

    await deadLetters.delete('default', again);
    await deadLetters.release('default', again);
    expect(await deadLetters.list('default')).toHaveLength(0);
  });

  it('returns a message that is no dispatch as malformed, with the parse error', async () => {
    const { urls, deadLetters } = await setup();
    await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: urls.dlq,
        MessageBody: 'garbage',
        MessageGroupId: 'g',
        MessageDeduplicationId: 'd',
      }),
    );
    const [letter] = await deadLetters.list('default');
    expect(letter?.origin).toBe('malformed');
    if (letter?.origin !== 'malformed') return;
    expect(letter.body).toBe('garbage');
    expect(letter.error).toBeInstanceOf(DispatchParseError);
  });
});
