/**
 * A pool's SQS dead-letter queue, where SQS moves a dispatch after
 * `maxReceiveCount` receives. The reaper drains it into the dead-letter store.
 */

import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeadLetterMessage, DeadLetterQueue, ReceivedDeadLetter } from '../../ports/dead-letters.ts';
import { DispatchParseError } from './errors.ts';
import { parseDispatch } from './message.ts';
import type { DlqUrlResolver } from './queue-urls.ts';

export type { DeadLetterMessage, ReceivedDeadLetter } from '../../ports/dead-letters.ts';

/**
 * Receives messages from, and deletes them in, the dead-letter queue of a
 * pool. A message that is no dispatch comes back as `kind: 'malformed'`
 * with its body and the parse error.
 *
 * @example
 * ```ts
 * const dlq = new DeadLetters(sqs, new QueueUrlCache(sqs, 'sayiir').dlqUrl);
 * const held = await dlq.receive('default', { holdSeconds: 30 });
 * await dlq.delete('default', held);
 * ```
 */
export class DeadLetters implements DeadLetterQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly resolveDlqUrl: DlqUrlResolver,
  ) {}

  async receive(
    pool: string,
    options: { readonly maxMessages?: number; readonly holdSeconds?: number } = {},
  ): Promise<ReceivedDeadLetter[]> {
    const { Messages = [] } = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: await this.resolveDlqUrl(pool),
        MaxNumberOfMessages: options.maxMessages ?? 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: options.holdSeconds ?? 30,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
    return Messages.map(toLetter);
  }

  async delete(pool: string, messages: readonly ReceivedDeadLetter[]): Promise<void> {
    const queueUrl = await this.resolveDlqUrl(pool);
    for (let i = 0; i < messages.length; i += 10) {
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: messages.slice(i, i + 10).map((l, j) => ({ Id: `d${j}`, ReceiptHandle: l.receiptHandle })),
        }),
      );
    }
  }
}

function toLetter(m: Message): ReceivedDeadLetter {
  const body = m.Body ?? '';
  const meta: DeadLetterMessage = {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '0'),
  };
  try {
    return { ...meta, kind: 'dispatch', dispatch: parseDispatch(body) };
  } catch (error) {
    const parseError = error instanceof DispatchParseError ? error : new DispatchParseError(String(error), body);
    return { ...meta, kind: 'malformed', body, error: parseError };
  }
}
