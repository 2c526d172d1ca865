/**
 * The local stand-in for Lambda's SQS event source over the embedded back
 * end's in-process queue: the shared event source (`event-source.ts`) with
 * records built as Lambda builds them from SQS messages, so the worker
 * handler cannot tell the two apart.
 */
import type { SQSRecord } from 'aws-lambda';
import { type InProcessTaskQueue, md5Hex, type QueuedMessage } from '../shared/adapters/in-process/task-queue.ts';
import type { Priority } from '../shared/engine/task.ts';
import { queueName } from '../shared/resources/queues.ts';
import { type EventSource, type EventSourceOptions, type SqsEventHandler, startEventSource } from './event-source.ts';

/** The region and account the records and the Lambda context name. */
const REGION = 'us-east-1';
const ACCOUNT = '000000000000';

/** Options of {@link startEmbeddedPoller}. */
export interface EmbeddedPollerOptions extends Omit<EventSourceOptions, 'queues' | 'handler'> {
  readonly queue: InProcessTaskQueue;
  readonly pool: string;
  readonly handler: SqsEventHandler;
  /** Queue name prefix in the records' `eventSourceARN`. @default 'sayiir-local' */
  readonly queuePrefix?: string;
  /** Visibility timeout of received messages (s). @default the queue's */
  readonly visibilityTimeoutSeconds?: number;
}

/** The record Lambda would build from this message. */
function toRecord(m: Readonly<QueuedMessage>, arn: string): SQSRecord {
  return {
    messageId: m.messageId,
    receiptHandle: m.receiptHandle ?? '',
    body: m.body,
    attributes: {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: String(m.sentAt),
      SenderId: ACCOUNT,
      ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? m.sentAt),
      SequenceNumber: String(m.sequence).padStart(20, '0'),
      MessageGroupId: m.groupId,
      MessageDeduplicationId: m.deduplicationId,
    },
    messageAttributes: {},
    md5OfBody: md5Hex(m.body),
    eventSource: 'aws:sqs',
    eventSourceARN: arn,
    awsRegion: REGION,
  };
}

/**
 * Starts delivering a pool's messages from the in-process queue to
 * `handler`, Lambda style; a send to the pool wakes its idle lanes at once.
 *
 * @example
 * ```ts
 * const poller = startEmbeddedPoller({ queue, pool: 'default', handler: makeWorkerHandler(deps) });
 * await poller.stop();
 * ```
 */
export function startEmbeddedPoller(options: EmbeddedPollerOptions): EventSource {
  const { queue, pool, queuePrefix = 'sayiir-local', visibilityTimeoutSeconds, ...rest } = options;
  const arn = (priority: Priority) => `arn:aws:sqs:${REGION}:${ACCOUNT}:${queueName(queuePrefix, pool, priority)}`;
  const source = startEventSource({
    ...rest,
    queues: {
      async receive(priority, max, waitSeconds) {
        let got = queue.receive(pool, priority, max, visibilityTimeoutSeconds);
        if (got.length === 0 && waitSeconds > 0) {
          // A long poll: until a send to the pool, or the wait ends.
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, waitSeconds * 1000);
            const off = queue.onSend((sent) => sent === pool && done());
            function done(): void {
              clearTimeout(timer);
              off();
              resolve();
            }
          });
          got = queue.receive(pool, priority, max, visibilityTimeoutSeconds);
        }
        return got.map((m) => toRecord(m, arn(priority)));
      },
      async delete(priority, records) {
        queue.delete(
          pool,
          priority,
          records.map((r) => r.receiptHandle),
        );
      },
    },
  });
  const unsubscribe = queue.onSend((sent, messages) => {
    if (sent === pool) source.nudge(messages);
  });
  return {
    nudge: (messages) => source.nudge(messages),
    stop: async () => {
      unsubscribe();
      await source.stop();
    },
  };
}
