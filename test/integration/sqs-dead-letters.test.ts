import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetters, DispatchParseError, QueueUrlCache } from '../../shared/adapters/sqs/index.ts';
import { describeDeadLettersContract } from '../support/dead-letters-contract.ts';
import { type Fauxqs, startFauxqs } from '../support/fauxqs.ts';

describeDeadLettersContract('DeadLetters on fauxqs', async () => {
  const sqs = await startFauxqs();
  await sqs.createPoolQueues('contract', 'default');
  return {
    deadLetters: new DeadLetters(sqs.client, new QueueUrlCache(sqs.client, 'contract').dlqUrl),
    close: () => sqs.close(),
  };
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
