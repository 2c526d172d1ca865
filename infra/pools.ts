import { Duration, Token } from 'aws-cdk-lib';
import { DEFAULT_POOL } from '../shared/engine/describe.ts';
import type { Priority } from '../shared/engine/task.ts';
import {
  DEFAULT_FUNCTION_TIMEOUT_SECONDS,
  MAX_FUNCTION_TIMEOUT_SECONDS,
  type PoolDefinition,
  PRIORITIES,
  type ResolvedPool,
  resolvePool,
} from '../shared/resources/queues.ts';

/**
 * Worker pools as the CDK construct sees them: the shared
 * {@link PoolDefinition} (names, visibility, redrive) plus what only the
 * cloud has (memory, concurrency per priority, batch size).
 */

/** A construct prop is out of range or inconsistent; thrown at synth time. */
export class EngineConfigError extends Error {
  override readonly name = 'EngineConfigError';
}

/** Lambda event source maximum concurrency per priority of a pool. */
export interface PriorityConcurrency {
  /** @default 10 */
  readonly high?: number;
  /** @default 5 */
  readonly normal?: number;
  /** @default 2 */
  readonly low?: number;
}

/**
 * One worker pool: a Lambda function and its three FIFO queues (plus DLQ).
 * A task's `pool` option names the pool that runs it.
 *
 * @example
 * ```ts
 * const gpu: WorkerPoolProps = { name: 'gpu', memorySize: 4096, timeout: Duration.minutes(5), maxConcurrency: { high: 4, normal: 2, low: 2 } };
 * ```
 */
export interface WorkerPoolProps {
  /** Pool name, as in a task's `pool` option: letters, digits, `-` and `_`. */
  readonly name: string;
  /**
   * Memory of the pool's worker function, in MB (128 to 10 240).
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * Timeout of the pool's worker function (at most 15 minutes, whole
   * seconds). The pool's queues hide a received message for 6 times this
   * (the shared rule in `shared/resources/queues.ts`).
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Maximum concurrent invocations per priority queue (each 2 to 1000, an
   * AWS limit of SQS event sources): on AWS, priority is a share of
   * concurrency, not a strict order.
   * @default { high: 10, normal: 5, low: 2 }
   */
  readonly maxConcurrency?: PriorityConcurrency;
  /**
   * Messages per worker invocation (1 to 10, the FIFO limit).
   * @default 10
   */
  readonly batchSize?: number;
}

/** A {@link WorkerPoolProps} with every default applied and checked. */
export interface ResolvedWorkerPool {
  readonly name: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly maxConcurrency: Readonly<Record<Priority, number>>;
  readonly batchSize: number;
  /** The shared definition the queue names and attributes come from. */
  readonly definition: PoolDefinition;
  /** The shared definition, resolved (visibility timeout, redrive count). */
  readonly queues: ResolvedPool;
}

export const DEFAULT_WORKER_MEMORY_MB = 1024;
export const DEFAULT_BATCH_SIZE = 10;
export const DEFAULT_MAX_CONCURRENCY: Readonly<Record<Priority, number>> = { high: 10, normal: 5, low: 2 };
/** AWS's bounds on an SQS event source's maximum concurrency. */
export const MIN_EVENT_SOURCE_CONCURRENCY = 2;
export const MAX_EVENT_SOURCE_CONCURRENCY = 1000;

/** The pools when none are given: one pool named as the engine's default. */
export const DEFAULT_POOLS: readonly WorkerPoolProps[] = [{ name: DEFAULT_POOL }];

function integerIn(what: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new EngineConfigError(`${what} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/**
 * Applies the defaults of each pool and checks them, with the shared queue
 * rules (`resolvePool`) for the name, visibility and redrive count.
 *
 * @throws EngineConfigError when a value is out of range or a name repeats.
 * @throws QueueDefinitionError when a pool name is not valid for SQS.
 */
export function resolveWorkerPools(pools: readonly WorkerPoolProps[], maxReceiveCount: number): ResolvedWorkerPool[] {
  if (pools.length === 0) throw new EngineConfigError('at least one worker pool is needed');
  const seen = new Set<string>();
  return pools.map((pool) => {
    if (seen.has(pool.name)) throw new EngineConfigError(`worker pool '${pool.name}' is declared twice`);
    seen.add(pool.name);
    const timeout = pool.timeout ?? Duration.seconds(DEFAULT_FUNCTION_TIMEOUT_SECONDS);
    if (Token.isUnresolved(timeout.toSeconds())) {
      throw new EngineConfigError(`pool '${pool.name}' timeout must be a concrete duration`);
    }
    const functionTimeoutSeconds = integerIn(
      `pool '${pool.name}' timeout (seconds)`,
      timeout.toSeconds(),
      1,
      MAX_FUNCTION_TIMEOUT_SECONDS,
    );
    const definition: PoolDefinition = { name: pool.name, functionTimeoutSeconds, maxReceiveCount };
    const concurrency = (priority: Priority) =>
      integerIn(
        `pool '${pool.name}' maxConcurrency.${priority}`,
        pool.maxConcurrency?.[priority] ?? DEFAULT_MAX_CONCURRENCY[priority],
        MIN_EVENT_SOURCE_CONCURRENCY,
        MAX_EVENT_SOURCE_CONCURRENCY,
      );
    return {
      name: pool.name,
      memorySize: integerIn(`pool '${pool.name}' memorySize`, pool.memorySize ?? DEFAULT_WORKER_MEMORY_MB, 128, 10_240),
      timeout,
      maxConcurrency: Object.fromEntries(PRIORITIES.map((p) => [p, concurrency(p)])) as Record<Priority, number>,
      batchSize: integerIn(`pool '${pool.name}' batchSize`, pool.batchSize ?? DEFAULT_BATCH_SIZE, 1, 10),
      definition,
      queues: resolvePool(definition),
    };
  });
}
