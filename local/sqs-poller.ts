/**
 * The local stand-in for Lambda's SQS event source over SQS (fauxqs): the
 * shared event source (`event-source.ts`: strict priority rounds, a Lambda
 * context and timeout, partial batch failures honoured) reading a pool's
 * three FIFO queues with ReceiveMessage and deleting successes with
 * DeleteMessageBatch. Failed messages come back after their visibility
 * timeout, and the queue's redrive policy counts receives.
 *
 * FIFO group locking applies: while a message of a group is in flight,
 * SQS delivers no other message of that group.
 */

import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import type { Priority } from '../shared/engine/task.ts';
import {
  type EventSource,
  type EventSourceOptions,
  type EventSourcePhase,
  type EventSourceQueues,
  type SqsEventHandler,
  startEventSource,
} from './event-source.ts';

export { type SqsEventHandler, SqsPollerTimeoutError } from './event-source.ts';

/** Where a poller error happened. */
export type SqsPollerPhase = EventSourcePhase;

/** Options of {@link startSqsPoller}. */
export interface SqsPollerOptions extends Omit<EventSourceOptions, 'queues' | 'handler'> {
  readonly sqs: SQSClient;
  /** URLs of the pool's queues by priority. */
  readonly queueUrls: Readonly<Record<Priority, string>>;
  readonly handler: SqsEventHandler;
  /** Visibility timeout of received messages (s). @default the queue's */
  readonly visibilityTimeoutSeconds?: number;
}

/** A running poller. */
export type SqsPoller = EventSource;

/** `arn:aws:sqs:<region>:<account>:<name>` from a queue URL `<scheme>://<host>/<account>/<name>`. */
function queueArn(url: string, region: string): string {
  const [account = '000000000000', name = ''] = new URL(url).pathname.split('/').filter(Boolean);
  return `arn:aws:sqs:${region}:${account}:${name}`;
}

function toLambdaAttributes(attrs: Record<string, MessageAttributeValue> | undefined): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, a] of Object.entries(attrs ?? {})) {
    out[name] = {
      dataType: a.DataType ?? 'String',
      stringValue: a.StringValue,
      binaryValue: a.BinaryValue ? Buffer.from(a.BinaryValue).toString('base64') : undefined,
      stringListValues: a.StringListValues ?? [],
      binaryListValues: (a.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
    };
  }
  return out;
}

/** The record Lambda builds from a received message. */
function toRecord(m: Message, arn: string, region: string): SQSRecord {
  const a = m.Attributes ?? {};
  const record: SQSRecord = {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? '000000000000',
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(a.SequenceNumber ? { SequenceNumber: a.SequenceNumber } : {}),
      ...(a.MessageGroupId ? { MessageGroupId: a.MessageGroupId } : {}),
      ...(a.MessageDeduplicationId ? { MessageDeduplicationId: a.MessageDeduplicationId } : {}),
      ...(a.AWSTraceHeader ? { AWSTraceHeader: a.AWSTraceHeader } : {}),
    },
    messageAttributes: toLambdaAttributes(m.MessageAttributes),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: arn,
    awsRegion: region,
  };
  if (m.MD5OfMessageAttributes) record.md5OfMessageAttributes = m.MD5OfMessageAttributes;
  return record;
}

/** A pool's SQS queues as the event source reads them: ReceiveMessage and DeleteMessageBatch over the wire. */
function sqsQueues(
  sqs: SQSClient,
  urls: Readonly<Record<Priority, string>>,
  visibilityTimeoutSeconds: number | undefined,
): EventSourceQueues {
  let regionPromise: Promise<string> | undefined;
  /** The client's region, looked up once (again after a failure). */
  const region = (): Promise<string> => {
    regionPromise ??= sqs.config.region();
    regionPromise.catch(() => {
      regionPromise = undefined;
    });
    return regionPromise;
  };
  return {
    async receive(priority, max, waitSeconds) {
      const r = await region();
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: urls[priority],
          MaxNumberOfMessages: max,
          WaitTimeSeconds: waitSeconds,
          VisibilityTimeout: visibilityTimeoutSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      const arn = queueArn(urls[priority], r);
      return Messages.map((m) => toRecord(m, arn, r));
    },
    async delete(priority, records) {
      const result = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: urls[priority],
          Entries: records.map((r, i) => ({ Id: `d${i}`, ReceiptHandle: r.receiptHandle })),
        }),
      );
      if (result.Failed && result.Failed.length > 0) {
        throw new Error(`DeleteMessageBatch failed for ${JSON.stringify(result.Failed)}`);
      }
    },
  };
}

/**
 * Starts polling a pool's queues and invoking `handler`, Lambda style.
 *
 * @example
 * ```ts
 * const poller = startSqsPoller({ sqs, queueUrls: { high, normal, low }, handler: worker.handler });
 * // ...
 * await poller.stop();
 * ```
 */
export function startSqsPoller(options: SqsPollerOptions): SqsPoller {
  const { sqs, queueUrls, visibilityTimeoutSeconds, ...rest } = options;
  return startEventSource({ ...rest, queues: sqsQueues(sqs, queueUrls, visibilityTimeoutSeconds) });
}
