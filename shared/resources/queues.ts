/**
 * Queue definitions: the single source of truth for the SQS queues of every
 * worker pool. The local stack creates its queues from these definitions
 * (`CreateQueue`) and the CDK stack declares them from the same functions, so
 * local and cloud never drift.
 *
 * Per worker pool there are three FIFO queues, one per priority, and one FIFO
 * dead-letter queue they all redrive to:
 *
 * ```
 * <prefix>-<pool>-high.fifo   ─┐
 * <prefix>-<pool>-normal.fifo ─┼── maxReceiveCount ──> <prefix>-<pool>-dlq.fifo
 * <prefix>-<pool>-low.fifo    ─┘
 * ```
 *
 * No AWS SDK import here: only names, numbers and attribute strings.
 */

import type { Priority } from '../engine/task.ts';
import { SayiirError } from '../errors.ts';

/** Priorities in the order a worker takes them: `high`, then `normal`, then `low`. */
export { PRIORITIES } from '../engine/task.ts';

/** Lambda's longest invocation, in seconds. */
export const MAX_FUNCTION_TIMEOUT_SECONDS = 900;
/** SQS's longest visibility timeout (12 hours), in seconds. */
export const MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200;
/** SQS's longest retention (14 days), in seconds: what every queue of a pool keeps. */
export const MESSAGE_RETENTION_SECONDS = 1_209_600;
/** Worker function timeout when a pool does not set one, in seconds. */
export const DEFAULT_FUNCTION_TIMEOUT_SECONDS = 900;
/** Queue visibility timeout per second of function timeout (AWS's advice for Lambda event sources). */
export const VISIBILITY_TIMEOUT_FACTOR = 6;
/** Receives of a message before SQS moves it to the pool's dead-letter queue. */
export const DEFAULT_MAX_RECEIVE_COUNT = 5;

/** SQS allows at most 80 characters in a queue name, `.fifo` included. */
const MAX_QUEUE_NAME_LENGTH = 80;
const NAME_PART = /^[A-Za-z0-9_-]+$/;

/**
 * A worker pool: the Lambda function (or local poller) that runs the tasks
 * whose `pool` option names it, with its own queues.
 *
 * @example
 * ```ts
 * const gpu: PoolDefinition = { name: 'gpu', functionTimeoutSeconds: 300, maxReceiveCount: 3 };
 * queueAttributes(gpu, dlqArn); // VisibilityTimeout '1800', RedrivePolicy maxReceiveCount 3
 * ```
 */
export interface PoolDefinition {
  /** Pool name, as in a task's `pool` option: letters, digits, `-` and `_`. */
  readonly name: string;
  /**
   * Timeout of the pool's worker function (Lambda) in seconds, 1 to 900.
   * @default 30
   */
  readonly functionTimeoutSeconds?: number;
  /**
   * Visibility timeout of the pool's queues in seconds: how long a received
   * message stays hidden before SQS delivers it again. Must be at least the
   * function timeout (Lambda rejects an event source whose queue is shorter).
   * @default 6 × functionTimeoutSeconds (180 s with the default timeout), at most 43 200
   */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Receives of one message before SQS moves it to the pool's DLQ, 1 to 1000.
   * @default 5
   */
  readonly maxReceiveCount?: number;
}

/** A {@link PoolDefinition} with every default applied and checked. */
export interface ResolvedPool {
  readonly name: string;
  readonly functionTimeoutSeconds: number;
  readonly visibilityTimeoutSeconds: number;
  readonly maxReceiveCount: number;
  readonly messageRetentionSeconds: number;
}

/** A queue name part or a pool setting is not valid for SQS. */
export class QueueDefinitionError extends SayiirError {
  override readonly name = 'QueueDefinitionError';
}

function checkNamePart(what: string, value: string): void {
  if (!NAME_PART.test(value)) {
    throw new QueueDefinitionError(
      `${what} ${JSON.stringify(value)} may only contain letters, digits, '-' and '_' (SQS queue name rules)`,
    );
  }
}

function fullName(prefix: string, pool: string, suffix: string): string {
  checkNamePart('queue prefix', prefix);
  checkNamePart('pool name', pool);
  const name = `${prefix}-${pool}-${suffix}.fifo`;
  if (name.length > MAX_QUEUE_NAME_LENGTH) {
    throw new QueueDefinitionError(`queue name '${name}' is longer than ${MAX_QUEUE_NAME_LENGTH} characters`);
  }
  return name;
}

/**
 * Name of a pool's queue for one priority.
 *
 * @example
 * ```ts
 * queueName('sayiir', 'default', 'high'); // 'sayiir-default-high.fifo'
 * ```
 */
export function queueName(prefix: string, pool: string, priority: Priority): string {
  return fullName(prefix, pool, priority);
}

/**
 * Name of a pool's dead-letter queue.
 *
 * @example
 * ```ts
 * dlqName('sayiir', 'default'); // 'sayiir-default-dlq.fifo'
 * ```
 */
export function dlqName(prefix: string, pool: string): string {
  return fullName(prefix, pool, 'dlq');
}

function checkInteger(what: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new QueueDefinitionError(`${what} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/**
 * Applies the defaults of a pool definition and checks its values.
 *
 * The visibility rule: AWS advises a queue that feeds a Lambda function to
 * hide a received message for at least six times the function timeout, so a
 * batch whose invocation is throttled and retried is not delivered a second
 * time meanwhile. The default is therefore `6 × functionTimeoutSeconds`
 * (capped at SQS's 12 hours); an explicit value may be shorter but never
 * below the function timeout, or a message would reappear while its worker
 * still runs.
 *
 * @throws QueueDefinitionError when a name or a number is out of range.
 */
export function resolvePool(pool: PoolDefinition): ResolvedPool {
  checkNamePart('pool name', pool.name);
  const functionTimeoutSeconds = checkInteger(
    `pool '${pool.name}' functionTimeoutSeconds`,
    pool.functionTimeoutSeconds ?? DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    1,
    MAX_FUNCTION_TIMEOUT_SECONDS,
  );
  const visibilityTimeoutSeconds = checkInteger(
    `pool '${pool.name}' visibilityTimeoutSeconds`,
    pool.visibilityTimeoutSeconds ??
      Math.min(VISIBILITY_TIMEOUT_FACTOR * functionTimeoutSeconds, MAX_VISIBILITY_TIMEOUT_SECONDS),
    functionTimeoutSeconds,
    MAX_VISIBILITY_TIMEOUT_SECONDS,
  );
  const maxReceiveCount = checkInteger(
    `pool '${pool.name}' maxReceiveCount`,
    pool.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT,
    1,
    1000,
  );
  return {
    name: pool.name,
    functionTimeoutSeconds,
    visibilityTimeoutSeconds,
    maxReceiveCount,
    messageRetentionSeconds: MESSAGE_RETENTION_SECONDS,
  };
}

/** SQS attributes shared by every queue of a pool (all FIFO, all encrypted, 14-day retention). */
function fifoBase(): Record<string, string> {
  return {
    FifoQueue: 'true',
    // Dedup ids are explicit (`instance:key:attempt`), never a hash of the body.
    ContentBasedDeduplication: 'false',
    // High-throughput FIFO: dedup and throughput are per message group.
    DeduplicationScope: 'messageGroup',
    FifoThroughputLimit: 'perMessageGroupId',
    MessageRetentionPeriod: String(MESSAGE_RETENTION_SECONDS),
    SqsManagedSseEnabled: 'true',
  };
}

/**
 * SQS attributes (`CreateQueue` `Attributes`) of a pool's priority queues.
 *
 * @param dlqArn ARN of the pool's dead-letter queue (see {@link dlqName}).
 * @example
 * ```ts
 * const { QueueUrl } = await sqs.send(new CreateQueueCommand({
 *   QueueName: queueName('sayiir', 'default', 'high'),
 *   Attributes: queueAttributes({ name: 'default' }, dlqArn),
 * }));
 * ```
 */
export function queueAttributes(pool: PoolDefinition, dlqArn: string): Record<string, string> {
  const resolved = resolvePool(pool);
  return {
    ...fifoBase(),
    VisibilityTimeout: String(resolved.visibilityTimeoutSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: resolved.maxReceiveCount }),
  };
}

/**
 * SQS attributes of a pool's dead-letter queue: FIFO like its sources (SQS
 * requires it), same retention, default visibility, no redrive of its own.
 *
 * @example
 * ```ts
 * await sqs.send(new CreateQueueCommand({ QueueName: dlqName('sayiir', 'default'), Attributes: dlqAttributes() }));
 * ```
 */
export function dlqAttributes(): Record<string, string> {
  return fifoBase();
}
