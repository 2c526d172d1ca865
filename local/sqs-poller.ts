/**
 * The local stand-in for Lambda's SQS event source: receives batches from a
 * pool's three priority queues, invokes the worker handler with a faithful
 * `SQSEvent` and Lambda `Context`, and deletes what the handler did not
 * report as failed.
 *
 * What it keeps from Lambda:
 * - partial batch responses: ids in `batchItemFailures` are left in the queue;
 *   an invalid response (unknown or empty id) or a thrown error fails the
 *   whole batch; `void` or an empty list means every record succeeded;
 * - failed messages are not made visible again: they reappear when their
 *   visibility timeout ends, and the queue's redrive policy counts receives;
 * - an invocation that runs past the function timeout fails its batch.
 *
 * Where it differs, on purpose: priority. On AWS each queue has its own event
 * source and priority is a share of concurrency; here every lane takes
 * strictly by priority, round after round:
 *
 * ```
 * round: receive high ──empty──> receive normal ──empty──> receive low ──empty──> idle, then again
 *             │                        │                        │
 *             └──── messages ──────────┴────────────────────────┴──> invoke handler, delete successes
 * ```
 *
 * FIFO group locking still applies: while a message of a group is in flight
 * (in any lane), SQS delivers no other message of that group.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import type { Priority } from '../shared/engine/task.ts';
import { PRIORITIES } from '../shared/resources/queues.ts';

/** A Lambda SQS handler, as the worker function exports it. */
export type SqsEventHandler = (
  event: SQSEvent,
  context: Context,
  // biome-ignore lint/suspicious/noConfusingVoidType: like aws-lambda's SQSHandler, a handler may return nothing.
) => Promise<SQSBatchResponse | void>;

/** Where a poller error happened. */
export type SqsPollerPhase = 'receive' | 'invoke' | 'delete';

/** Options of {@link startSqsPoller}. */
export interface SqsPollerOptions {
  readonly sqs: SQSClient;
  /** URLs of the pool's queues by priority. */
  readonly queueUrls: Readonly<Record<Priority, string>>;
  readonly handler: SqsEventHandler;
  /** Messages per invocation, 1 to 10 (Lambda's FIFO maximum). @default 10 */
  readonly batchSize?: number;
  /**
   * Long poll of an idle lane (s), on the high queue only. 0 sleeps
   * `idleDelayMs` instead. `stop()` may wait for a long poll to end, so keep
   * it at 1 or less.
   * @default 0
   */
  readonly waitTimeSeconds?: number;
  /** Pause of an idle lane between empty rounds when `waitTimeSeconds` is 0 (ms). @default 100 */
  readonly idleDelayMs?: number;
  /** Visibility timeout of received messages (s). @default the queue's */
  readonly visibilityTimeoutSeconds?: number;
  /** Function timeout (s): `getRemainingTimeInMillis` counts down from it; a longer invocation fails. @default 30 */
  readonly timeoutSeconds?: number;
  /** Batches in flight at once (lanes). @default 4 */
  readonly concurrency?: number;
  /** `context.functionName`. @default 'sayiir-worker' */
  readonly functionName?: string;
  /** `context.memoryLimitInMB`. @default 1024 */
  readonly memoryLimitInMB?: number;
  /** Reports errors that Lambda would log (receive failures, handler errors, delete failures). @default console.error */
  readonly onError?: (error: unknown, phase: SqsPollerPhase) => void;
}

/** A running poller. */
export interface SqsPoller {
  /**
   * Wakes the idle lanes at once: a sender in the same process knows a
   * message is there, as Lambda's event source learns it from a long poll.
   */
  nudge(): void;
  /**
   * Stops receiving. Resolves once no receive is in flight and every handler
   * call has finished (and its successes are deleted). Idempotent.
   */
  stop(): Promise<void>;
}

/** The function did not finish within its timeout; its batch fails, like on Lambda. */
export class SqsPollerTimeoutError extends Error {
  override readonly name = 'SqsPollerTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`handler did not finish within ${timeoutMs} ms`);
  }
}

interface QueueInfo {
  readonly priority: Priority;
  readonly url: string;
  readonly arn: string;
}

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
function toRecord(m: Message, queue: QueueInfo, region: string): SQSRecord {
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
    eventSourceARN: queue.arn,
    awsRegion: region,
  };
  if (m.MD5OfMessageAttributes) record.md5OfMessageAttributes = m.MD5OfMessageAttributes;
  return record;
}

function unsupported(name: string): () => never {
  return () => {
    throw new Error(`context.${name}() is not supported: return a promise from the handler`);
  };
}

/**
 * The message ids to leave in the queue, from the handler's outcome, by
 * Lambda's rules: an invalid response fails the whole batch.
 */
function failedIds(records: readonly SQSRecord[], response: unknown): Set<string> {
  const all = new Set(records.map((r) => r.messageId));
  if (response === undefined || response === null) return new Set();
  if (typeof response !== 'object') return all;
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return all;
  const ids = new Set<string>();
  for (const f of failures) {
    const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || !all.has(id)) return all;
    ids.add(id);
  }
  return ids;
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
  const {
    sqs,
    handler,
    batchSize = 10,
    waitTimeSeconds = 0,
    idleDelayMs = 100,
    visibilityTimeoutSeconds,
    timeoutSeconds = 30,
    concurrency = 4,
    functionName = 'sayiir-worker',
    memoryLimitInMB = 1024,
    onError = (error: unknown, phase: SqsPollerPhase) => console.error(`[sqs-poller ${functionName}] ${phase}:`, error),
  } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
    throw new RangeError(`batchSize must be an integer from 1 to 10, got ${batchSize}`);
  }
  if (!Number.isInteger(waitTimeSeconds) || waitTimeSeconds < 0 || waitTimeSeconds > 20) {
    throw new RangeError(`waitTimeSeconds must be an integer from 0 to 20, got ${waitTimeSeconds}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const timeoutMs = timeoutSeconds * 1000;

  let stopping = false;
  const wakers = new Set<() => void>();
  /** Handler calls that outlived their timeout: Lambda would kill them, here `stop()` waits for them. */
  const overdue = new Set<Promise<unknown>>();

  let queuesPromise: Promise<{ region: string; queues: QueueInfo[] }> | undefined;
  /** Region and queue ARNs, computed once (again after a failure). */
  const queues = (): Promise<{ region: string; queues: QueueInfo[] }> => {
    queuesPromise ??= sqs.config.region().then((region) => ({
      region,
      queues: PRIORITIES.map((priority) => ({
        priority,
        url: options.queueUrls[priority],
        arn: queueArn(options.queueUrls[priority], region),
      })),
    }));
    queuesPromise.catch(() => {
      queuesPromise = undefined;
    });
    return queuesPromise;
  };

  /** Sleeps, unless `stop()` is called meanwhile. */
  const idle = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (stopping) return resolve();
      const wake = (): void => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      wakers.add(wake);
    });

  const receive = async (queue: QueueInfo, wait: number): Promise<Message[]> => {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: batchSize,
        WaitTimeSeconds: wait,
        VisibilityTimeout: visibilityTimeoutSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    return Messages;
  };

  /** One round: the first non-empty receive in priority order. */
  const round = async (all: readonly QueueInfo[]): Promise<{ queue: QueueInfo; messages: Message[] } | undefined> => {
    for (const queue of all) {
      if (stopping) return undefined;
      const messages = await receive(queue, 0);
      if (messages.length > 0) return { queue, messages };
    }
    return undefined;
  };

  const invoke = async (event: SQSEvent): Promise<unknown> => {
    const deadline = Date.now() + timeoutMs;
    const region = (await queues()).region;
    const account = event.Records[0]?.eventSourceARN.split(':')[4] ?? '000000000000';
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
    const context: Context = {
      callbackWaitsForEmptyEventLoop: true,
      functionName,
      functionVersion: '$LATEST',
      invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${functionName}`,
      memoryLimitInMB: String(memoryLimitInMB),
      awsRequestId: randomUUID(),
      logGroupName: `/aws/lambda/${functionName}`,
      logStreamName: `${day}/[$LATEST]${randomBytes(16).toString('hex')}`,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: unsupported('done'),
      fail: unsupported('fail'),
      succeed: unsupported('succeed'),
    };
    const call = Promise.resolve().then(() => handler(event, context));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SqsPollerTimeoutError(timeoutMs)), timeoutMs);
    });
    try {
      return await Promise.race([call, timeout]);
    } catch (error) {
      if (error instanceof SqsPollerTimeoutError) {
        const settled = call.catch(() => {}).finally(() => overdue.delete(settled));
        overdue.add(settled);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };

  const handleBatch = async (queue: QueueInfo, messages: readonly Message[], region: string): Promise<void> => {
    const records = messages.map((m) => toRecord(m, queue, region));
    let failed: Set<string>;
    try {
      failed = failedIds(records, await invoke({ Records: records }));
    } catch (error) {
      onError(error, 'invoke');
      return; // every message reappears after its visibility timeout
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    if (done.length === 0) return;
    try {
      const result = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: done.map((r, i) => ({ Id: `d${i}`, ReceiptHandle: r.receiptHandle })),
        }),
      );
      if (result.Failed && result.Failed.length > 0) {
        onError(new Error(`DeleteMessageBatch failed for ${JSON.stringify(result.Failed)}`), 'delete');
      }
    } catch (error) {
      onError(error, 'delete');
    }
  };

  const lane = async (): Promise<void> => {
    while (!stopping) {
      try {
        const { region, queues: all } = await queues();
        const got = await round(all);
        if (got) {
          await handleBatch(got.queue, got.messages, region);
        } else if (!stopping) {
          const high = all[0];
          if (waitTimeSeconds > 0 && high) {
            const messages = await receive(high, waitTimeSeconds);
            if (messages.length > 0) await handleBatch(high, messages, region);
          } else {
            await idle(idleDelayMs);
          }
        }
      } catch (error) {
        onError(error, 'receive');
        await idle(Math.max(idleDelayMs, 500));
      }
    }
  };

  const lanes = Array.from({ length: concurrency }, lane);
  let stopped: Promise<void> | undefined;
  return {
    nudge() {
      for (const wake of [...wakers]) wake();
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        for (const wake of [...wakers]) wake();
        await Promise.all(lanes);
        await Promise.all([...overdue]);
      })();
      return stopped;
    },
  };
}
