/** The {@link TaskQueue} port on SQS FIFO queues. */

import {
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SendMessageBatchResult,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Dispatch } from '../../engine/snapshot.ts';
import type { Priority } from '../../engine/task.ts';
import type { TaskQueue } from '../../ports/task-queue.ts';
import { type FailedDispatch, QueueSendError } from './errors.ts';
import {
  dispatchAttributes,
  dispatchDeduplicationId,
  dispatchGroupId,
  encodeDispatch,
  MAX_DISPATCH_BODY_BYTES,
} from './message.ts';
import type { QueueUrlResolver } from './queue-urls.ts';

export { parseDispatch } from './message.ts';

/** SQS accepts at most 10 entries per batch request. */
const MAX_BATCH_ENTRIES = 10;
/** Total body size of one batch request: SQS's classic limit, accepted everywhere. */
const MAX_BATCH_BYTES = 256 * 1024;

/** Options of {@link SqsTaskQueue}. */
export interface SqsTaskQueueOptions {
  /**
   * Tries per batch entry that SQS reports as failed through no fault of the
   * sender (throttling, internal errors). Entries failed by the sender's
   * fault are not retried.
   * @default 3
   */
  readonly maxAttempts?: number;
  /** Delay before the first retry of failed entries, doubled on each next retry (ms). @default 50 */
  readonly retryDelayMs?: number;
  /** Batch requests in flight at once. @default 8 */
  readonly concurrency?: number;
  /** Largest dispatch body (bytes). @default 262144 (256 KiB) */
  readonly maxBodyBytes?: number;
}

interface Entry {
  readonly dispatch: Dispatch;
  readonly body: string;
  readonly bytes: number;
}

const routeOf = (d: Dispatch): string => JSON.stringify([d.pool, d.priority]);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Splits entries into batch requests of at most 10 entries and 256 KiB. */
function chunk(entries: readonly Entry[]): Entry[][] {
  const chunks: Entry[][] = [];
  let current: Entry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length === MAX_BATCH_ENTRIES || (current.length > 0 && bytes + entry.bytes > MAX_BATCH_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entry.bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Sends dispatches to the FIFO queue of their pool and priority.
 *
 * - Body: the JSON of the dispatch (references only; see `parseDispatch`).
 * - `MessageDeduplicationId`: `instanceId:key:attempt`, so resending the same
 *   attempt within five minutes delivers it once.
 * - `MessageGroupId`: `instanceId:key`, so fork branches and map items of one
 *   run go to different groups and run in parallel.
 *
 * Ids that SQS would reject (over 128 characters, characters outside
 * printable ASCII) are replaced by their SHA-256.
 *
 * @example
 * ```ts
 * const sqs = new SQSClient({});
 * const queue = new SqsTaskQueue(sqs, new QueueUrlCache(sqs, 'sayiir').queueUrl);
 * await queue.send(effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])));
 * ```
 */
export class SqsTaskQueue implements TaskQueue {
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly concurrency: number;
  private readonly maxBodyBytes: number;

  constructor(
    private readonly sqs: SQSClient,
    private readonly resolveQueueUrl: QueueUrlResolver,
    options: SqsTaskQueueOptions = {},
  ) {
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.retryDelayMs = options.retryDelayMs ?? 50;
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    this.maxBodyBytes = options.maxBodyBytes ?? MAX_DISPATCH_BODY_BYTES;
  }

  /** `ApproximateNumberOfMessages` of the pool's queue of that priority (messages visible, not in flight). */
  async waiting(pool: string, priority: Priority): Promise<number> {
    const out = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: await this.resolveQueueUrl(pool, priority),
        AttributeNames: ['ApproximateNumberOfMessages'],
      }),
    );
    return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
  }

  /**
   * Sends dispatches, grouped by target queue, in batches of up to 10.
   *
   * @throws PayloadTooLargeError before sending anything, when a dispatch's
   *   body is over the limit.
   * @throws QueueSendError naming the dispatches that SQS did not accept
   *   after retries; the others were accepted.
   * @throws QueueNotFoundError (from the resolver) before sending anything,
   *   when a target queue does not exist.
   */
  async send(dispatches: readonly Dispatch[]): Promise<void> {
    if (dispatches.length === 0) return;
    const entries = dispatches.map((dispatch): Entry => {
      const body = encodeDispatch(dispatch, this.maxBodyBytes);
      // The trace attribute counts toward the batch's size too (its name, type and value).
      const traceBytes = dispatch.trace === undefined ? 0 : 32 + dispatch.trace.length;
      return { dispatch, body, bytes: Buffer.byteLength(body, 'utf8') + traceBytes };
    });
    // One look-up per (pool, priority), all awaited together so none rejects unobserved.
    const routes = [...new Set(dispatches.map((d) => routeOf(d)))];
    const urls = new Map(
      await Promise.all(
        routes.map(async (route) => {
          const [pool, priority] = JSON.parse(route) as [string, Priority];
          return [route, await this.resolveQueueUrl(pool, priority)] as const;
        }),
      ),
    );
    const byQueue = new Map<string, Entry[]>();
    for (const entry of entries) {
      const queueUrl = urls.get(routeOf(entry.dispatch)) as string;
      const list = byQueue.get(queueUrl);
      if (list) list.push(entry);
      else byQueue.set(queueUrl, [entry]);
    }

    const batches = [...byQueue].flatMap(([queueUrl, entries]) => chunk(entries).map((c) => ({ queueUrl, c })));
    const failed: FailedDispatch[] = [];
    let cause: unknown;
    await forEachLimited(batches, this.concurrency, async ({ queueUrl, c }) => {
      const result = await this.sendBatch(queueUrl, c);
      failed.push(...result.failed);
      cause ??= result.error;
    });
    if (failed.length > 0) throw new QueueSendError(failed, { cause });
  }

  /**
   * Sends one batch, retrying the entries that fail through no fault of the
   * sender. Returns the final failures, and the error of a request that threw.
   */
  private async sendBatch(
    queueUrl: string,
    entries: readonly Entry[],
  ): Promise<{ failed: FailedDispatch[]; error?: unknown }> {
    let pending = entries.map((entry, i) => ({ id: `m${i}`, entry }));
    const failed: FailedDispatch[] = [];
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(this.retryDelayMs * 2 ** (attempt - 2));
      let result: SendMessageBatchResult;
      try {
        result = await this.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: pending.map(
              ({ id, entry }): SendMessageBatchRequestEntry => ({
                Id: id,
                MessageBody: entry.body,
                MessageDeduplicationId: dispatchDeduplicationId(entry.dispatch),
                MessageGroupId: dispatchGroupId(entry.dispatch),
                MessageAttributes: dispatchAttributes(entry.dispatch),
              }),
            ),
          }),
        );
      } catch (error) {
        // The SDK already retried the request: every entry still pending is not accepted.
        const { name, message } = error instanceof Error ? error : new Error(String(error));
        for (const { entry } of pending) {
          failed.push({ dispatch: entry.dispatch, code: name, message, senderFault: false });
        }
        return { failed, error };
      }
      const ok = new Set((result.Successful ?? []).map((s) => s.Id));
      const errors = new Map((result.Failed ?? []).map((f) => [f.Id, f]));
      const retry: typeof pending = [];
      for (const item of pending) {
        if (ok.has(item.id)) continue;
        const error = errors.get(item.id);
        const senderFault = error?.SenderFault ?? false;
        if (!senderFault && attempt < this.maxAttempts) {
          retry.push(item);
          continue;
        }
        failed.push({
          dispatch: item.entry.dispatch,
          code: error?.Code ?? 'MissingFromResponse',
          message: error?.Message ?? 'entry neither successful nor failed in the SendMessageBatch response',
          senderFault,
        });
      }
      pending = retry;
    }
    return { failed };
  }
}
