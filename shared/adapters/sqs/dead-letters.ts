/**
 * A pool's dead-letter queue: where a task lands when its retries are
 * exhausted (sent by the engine, with a reason) or when SQS gave up on its
 * message after `maxReceiveCount` receives (moved by the redrive policy, bare).
 */

import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type {
  DeadLetterMessage,
  DeadLetterQueue,
  DeadLetterRecord,
  ReceivedDeadLetter,
} from '../../ports/dead-letters.ts';
import { DispatchParseError } from './errors.ts';
import { encodeDispatch, fifoId, parseDispatch } from './message.ts';
import type { DlqUrlResolver } from './queue-urls.ts';

export type { DeadLetterMessage, DeadLetterRecord, ReceivedDeadLetter } from '../../ports/dead-letters.ts';

/** Options of {@link DeadLetters.receive}. */
export interface ReceiveDeadLettersOptions {
  /** 1 to 10. @default 10 */
  readonly maxMessages?: number;
  /** Long-poll wait (s). @default 0 */
  readonly waitTimeSeconds?: number;
  /** How long the received records stay hidden from other readers (s). @default the queue's */
  readonly visibilityTimeoutSeconds?: number;
}

const ENVELOPE = 'sayiir.dead-letter';

type Json = Record<string, unknown>;

function parseEnvelope(value: Json, body: string): DeadLetterRecord {
  const dispatch = parseDispatch(JSON.stringify(value.dispatch ?? null));
  const { reason, attempts, failedAt, error } = value;
  if (typeof reason !== 'string') throw new DispatchParseError("dead letter 'reason' is not a string", body);
  if (typeof attempts !== 'number') throw new DispatchParseError("dead letter 'attempts' is not a number", body);
  const e = error as Json | undefined;
  return {
    dispatch,
    reason,
    attempts,
    ...(typeof failedAt === 'number' ? { failedAt } : {}),
    ...(e && typeof e.name === 'string' && typeof e.message === 'string'
      ? { error: { name: e.name, message: e.message } }
      : {}),
  };
}

/**
 * The body of a dead-letter record as a DLQ holds it: an envelope with the
 * dispatch (references only), the reason and the attempts. One format for
 * every dead-letter store (SQS here, SQLite in the embedded back end).
 *
 * @example
 * ```ts
 * const body = encodeDeadLetter({ dispatch, reason: 'retries exhausted', attempts: 5 });
 * ```
 */
export function encodeDeadLetter(record: DeadLetterRecord): string {
  return JSON.stringify({
    type: ENVELOPE,
    dispatch: JSON.parse(encodeDispatch(record.dispatch)),
    reason: record.reason,
    attempts: record.attempts,
    ...(record.failedAt === undefined ? {} : { failedAt: record.failedAt }),
    ...(record.error ? { error: { name: record.error.name, message: record.error.message } } : {}),
  });
}

/**
 * An entry read from a DLQ, from its body: a record sent by the engine
 * ({@link encodeDeadLetter}), a bare dispatch the queue moved after too many
 * receives (`redrive`), or anything else (`malformed`, never thrown).
 *
 * @example
 * ```ts
 * const letter = parseDeadLetter(body, { messageId, receiptHandle, receiveCount: 1, sentAt });
 * ```
 */
export function parseDeadLetter(body: string, meta: DeadLetterMessage): ReceivedDeadLetter {
  try {
    const value = JSON.parse(body) as unknown;
    if (typeof value === 'object' && value !== null && (value as Json).type === ENVELOPE) {
      return { ...meta, origin: 'engine', record: parseEnvelope(value as Json, body) };
    }
    const dispatch = parseDispatch(body);
    const record = {
      dispatch,
      reason: 'moved by the queue after maxReceiveCount receives',
      attempts: dispatch.attempt,
    };
    return { ...meta, origin: 'redrive', record };
  } catch (error) {
    const parseError = error instanceof DispatchParseError ? error : new DispatchParseError(String(error), body);
    return { ...meta, origin: 'malformed', body, error: parseError };
  }
}

/**
 * Sends records to, and reads them from, the dead-letter queue of a pool.
 *
 * SQS has no way to look at messages without receiving them: reading hides
 * the records for their visibility timeout; {@link release} shows them again
 * at once, {@link delete} removes them (after a redrive, for instance).
 *
 * @example
 * ```ts
 * const dlq = new DeadLetters(sqs, new QueueUrlCache(sqs, 'sayiir').dlqUrl);
 * await dlq.send({ dispatch, reason: 'retries exhausted', attempts: 5, failedAt: Date.now() });
 * const letters = await dlq.list('default');
 * await dlq.release('default', letters);
 * ```
 */
export class DeadLetters implements DeadLetterQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly resolveDlqUrl: DlqUrlResolver,
  ) {}

  /**
   * Sends a record to the DLQ of the dispatch's pool. Sending the same
   * attempt twice within five minutes keeps one record.
   */
  async send(record: DeadLetterRecord): Promise<void> {
    const { dispatch } = record;
    const body = encodeDeadLetter(record);
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: await this.resolveDlqUrl(dispatch.pool),
        MessageBody: body,
        // Distinct from the dispatch's own id: a redriven copy must not swallow the record.
        MessageDeduplicationId: fifoId(['dead', dispatch.instanceId, dispatch.key, dispatch.attempt]),
        MessageGroupId: fifoId([dispatch.instanceId, dispatch.key]),
      }),
    );
  }

  /**
   * Receives up to 10 messages from a pool's DLQ. A message that is neither
   * a record nor a dispatch comes back as `origin: 'malformed'`.
   */
  async receive(pool: string, options: ReceiveDeadLettersOptions = {}): Promise<ReceivedDeadLetter[]> {
    const { Messages = [] } = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: await this.resolveDlqUrl(pool),
        MaxNumberOfMessages: options.maxMessages ?? 10,
        WaitTimeSeconds: options.waitTimeSeconds ?? 0,
        VisibilityTimeout: options.visibilityTimeoutSeconds,
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      }),
    );
    return Messages.map((m) => this.toLetter(m));
  }

  /**
   * Receives every record it can (up to `limit`), until a receive comes back
   * empty. The records stay hidden for `holdSeconds`, so none is read twice.
   */
  async list(pool: string, options: { limit?: number; holdSeconds?: number } = {}): Promise<ReceivedDeadLetter[]> {
    const limit = options.limit ?? 100;
    const letters: ReceivedDeadLetter[] = [];
    while (letters.length < limit) {
      const batch = await this.receive(pool, {
        maxMessages: Math.min(10, limit - letters.length),
        visibilityTimeoutSeconds: options.holdSeconds ?? 30,
      });
      if (batch.length === 0) break;
      letters.push(...batch);
    }
    return letters;
  }

  /** Deletes records from a pool's DLQ. */
  async delete(pool: string, letters: readonly ReceivedDeadLetter[]): Promise<void> {
    const queueUrl = await this.resolveDlqUrl(pool);
    for (let i = 0; i < letters.length; i += 10) {
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: letters.slice(i, i + 10).map((l, j) => ({ Id: `d${j}`, ReceiptHandle: l.receiptHandle })),
        }),
      );
    }
  }

  /** Makes received records visible again at once. */
  async release(pool: string, letters: readonly ReceivedDeadLetter[]): Promise<void> {
    const queueUrl = await this.resolveDlqUrl(pool);
    for (let i = 0; i < letters.length; i += 10) {
      await this.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: letters
            .slice(i, i + 10)
            .map((l, j) => ({ Id: `r${j}`, ReceiptHandle: l.receiptHandle, VisibilityTimeout: 0 })),
        }),
      );
    }
  }

  private toLetter(m: Message): ReceivedDeadLetter {
    const body = m.Body ?? '';
    const meta: DeadLetterMessage = {
      messageId: m.MessageId ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '0'),
      sentAt: Number(m.Attributes?.SentTimestamp ?? '0'),
    };
    return parseDeadLetter(body, meta);
  }
}
