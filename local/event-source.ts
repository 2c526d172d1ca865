/**
 * The local stand-in for Lambda's SQS event source, whatever the queue: SQS
 * over the wire (`sqs-poller.ts`, fauxqs) or the embedded back end's
 * in-process queue (`embedded-poller.ts`). It receives batches from a pool's
 * three priority queues, invokes the worker handler with a faithful
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
 */

import { randomBytes, randomUUID } from 'node:crypto';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Priority } from '../shared/engine/task.ts';
import { SayiirError } from '../shared/errors.ts';
import { PRIORITIES } from '../shared/resources/queues.ts';

/** A Lambda SQS handler, as the worker function exports it. */
export type SqsEventHandler = (
  event: SQSEvent,
  context: Context,
  // biome-ignore lint/suspicious/noConfusingVoidType: like aws-lambda's SQSHandler, a handler may return nothing.
) => Promise<SQSBatchResponse | void>;

/** Where an event source error happened. */
export type EventSourcePhase = 'receive' | 'invoke' | 'delete';

/**
 * What the event source needs of a pool's queues: the one part that differs
 * between SQS and the in-process queue.
 */
export interface EventSourceQueues {
  /**
   * Up to `max` records from the queue of `priority`, as Lambda's records
   * (each hidden for its visibility timeout). Waits up to `waitSeconds` for
   * one when the queue is empty (0: answers at once).
   */
  receive(priority: Priority, max: number, waitSeconds: number): Promise<SQSRecord[]>;
  /** Deletes records handled successfully. @throws when some could not be deleted (they will come back). */
  delete(priority: Priority, records: readonly SQSRecord[]): Promise<void>;
}

/** Options of {@link startEventSource}. */
export interface EventSourceOptions {
  readonly queues: EventSourceQueues;
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
  /** Pause of an idle lane between empty rounds when `waitTimeSeconds` is 0 (ms); `nudge()` ends it. @default 100 */
  readonly idleDelayMs?: number;
  /** Function timeout (s): `getRemainingTimeInMillis` counts down from it; a longer invocation fails. @default 30 */
  readonly timeoutSeconds?: number;
  /** Batches in flight at once (lanes). @default 4 */
  readonly concurrency?: number;
  /** `context.functionName`. @default 'sayiir-worker' */
  readonly functionName?: string;
  /** `context.memoryLimitInMB`. @default 1024 */
  readonly memoryLimitInMB?: number;
  /** Reports errors that Lambda would log (receive failures, handler errors, delete failures). @default console.error */
  readonly onError?: (error: unknown, phase: EventSourcePhase) => void;
}

/** A running event source. */
export interface EventSource {
  /**
   * Wakes idle lanes at once: a sender in the same process knows a message
   * is there, as Lambda's event source learns it from a long poll. With
   * `messages`, wakes at most that many (one lane takes a message), not the
   * whole herd.
   */
  nudge(messages?: number): void;
  /**
   * Stops receiving. Resolves once no receive is in flight and every handler
   * call has finished (and its successes are deleted). Idempotent.
   */
  stop(): Promise<void>;
}

/** The function did not finish within its timeout; its batch fails, like on Lambda. */
export class SqsPollerTimeoutError extends SayiirError {
  override readonly name = 'SqsPollerTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`handler did not finish within ${timeoutMs} ms`);
  }
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
export function failedIds(records: readonly SQSRecord[], response: unknown): Set<string> {
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
 * Starts receiving from a pool's queues and invoking `handler`, Lambda style.
 *
 * @example
 * ```ts
 * const source = startEventSource({ queues, handler: worker.handler, concurrency: 4 });
 * // ...
 * await source.stop();
 * ```
 */
export function startEventSource(options: EventSourceOptions): EventSource {
  const {
    queues,
    handler,
    batchSize = 10,
    waitTimeSeconds = 0,
    idleDelayMs = 100,
    timeoutSeconds = 30,
    concurrency = 4,
    functionName = 'sayiir-worker',
    memoryLimitInMB = 1024,
    onError = (error: unknown, phase: EventSourcePhase) =>
      console.error(`[event-source ${functionName}] ${phase}:`, error),
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

  /** Sleeps, unless `stop()` or `nudge()` is called meanwhile. */
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

  /** One round: the first non-empty receive in priority order. */
  const round = async (): Promise<{ priority: Priority; records: SQSRecord[] } | undefined> => {
    for (const priority of PRIORITIES) {
      if (stopping) return undefined;
      const records = await queues.receive(priority, batchSize, 0);
      if (records.length > 0) return { priority, records };
    }
    return undefined;
  };

  const invoke = async (event: SQSEvent): Promise<unknown> => {
    const deadline = Date.now() + timeoutMs;
    const first = event.Records[0];
    const region = first?.awsRegion ?? 'us-east-1';
    const account = first?.eventSourceARN.split(':')[4] ?? '000000000000';
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

  const handleBatch = async (priority: Priority, records: readonly SQSRecord[]): Promise<void> => {
    let failed: Set<string>;
    try {
      failed = failedIds(records, await invoke({ Records: [...records] }));
    } catch (error) {
      onError(error, 'invoke');
      return; // every message reappears after its visibility timeout
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    if (done.length === 0) return;
    try {
      await queues.delete(priority, done);
    } catch (error) {
      onError(error, 'delete');
    }
  };

  const lane = async (): Promise<void> => {
    while (!stopping) {
      try {
        const got = await round();
        if (got) {
          await handleBatch(got.priority, got.records);
        } else if (!stopping) {
          if (waitTimeSeconds > 0) {
            const records = await queues.receive('high', batchSize, waitTimeSeconds);
            if (records.length > 0) await handleBatch('high', records);
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
    nudge(messages = Number.POSITIVE_INFINITY) {
      let woken = 0;
      for (const wake of [...wakers]) {
        if (woken++ >= messages) break;
        wake();
      }
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
