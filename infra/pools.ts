import { Duration, Token } from 'aws-cdk-lib';
import type { AnyFlow } from '../shared/engine/definition.ts';
import { DEFAULT_POOL, poolsOf } from '../shared/engine/describe.ts';
import type { Priority } from '../shared/engine/task.ts';
import { SayiirError } from '../shared/errors.ts';
import {
  MAX_FUNCTION_TIMEOUT_SECONDS,
  type PoolDefinition,
  PRIORITIES,
  type ResolvedPool,
  resolvePool,
} from '../shared/resources/queues.ts';
import { WORKER_DEFAULTS } from '../shared/runtime/defaults.ts';

/**
 * Worker pools as the CDK construct sees them: the shared
 * {@link PoolDefinition} (names, visibility, redrive) plus what only the
 * cloud has (memory, concurrency per priority, batch size).
 */

/** A construct prop is out of range or inconsistent; thrown at synth time. */
export class EngineConfigError extends SayiirError {
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
   * seconds). The pool's queues hide a received message for 6 times this,
   * capped at 12 hours (the shared rule in `shared/resources/queues.ts`).
   *
   * The default is Lambda's maximum: a task runs inline only when its own
   * timeout (5 minutes unless the task sets one) fits in the invocation's
   * remaining time, and a task whose timeout exceeds the function's is
   * killed by Lambda first. Lambda bills the time used, not the timeout, so
   * a long timeout costs nothing.
   * @default Duration.minutes(15)
   */
  readonly timeout?: Duration;
  /**
   * How long a worker's reservation of a task lasts before it starts its
   * claim (whole milliseconds): a chain of tasks whose timeouts fit in it
   * never starts it (two claim writes per chain, not three); the reaper
   * re-dispatches a task whose reservation expired. Passed as
   * `SAYIIR_RESERVE_TTL_MS` when set.
   * @default Duration.seconds(10) (`WORKER_DEFAULTS` in `shared/runtime/defaults.ts`)
   */
  readonly reserveTtl?: Duration;
  /**
   * The lease on a running task (whole milliseconds), renewed by heartbeats:
   * the reaper re-dispatches a task whose lease expired (its worker died).
   * It may exceed the function timeout. Passed as `SAYIIR_LEASE_MS` when set.
   * @default Duration.seconds(60) (the worker's default, `shared/runtime/worker.ts`)
   */
  readonly lease?: Duration;
  /**
   * How often a running task's lease is renewed (whole milliseconds);
   * shorter than the lease. Passed as `SAYIIR_HEARTBEAT_MS` when set.
   * @default a third of the lease (the worker's default, `shared/runtime/worker.ts`)
   */
  readonly heartbeat?: Duration;
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
  /** Claim timings the pool sets (ms), each passed to the worker only when set. */
  readonly claimTimings: ClaimTimings;
  /** The shared definition the queue names and attributes come from. */
  readonly definition: PoolDefinition;
  /** The shared definition, resolved (visibility timeout, redrive count). */
  readonly queues: ResolvedPool;
}

/** Claim timings of a pool in milliseconds; absent ones keep the worker's defaults. */
export interface ClaimTimings {
  readonly reserveTtlMs?: number;
  readonly leaseMs?: number;
  readonly heartbeatMs?: number;
}

export const DEFAULT_WORKER_MEMORY_MB = 1024;
/** Worker function timeout when a pool sets none: Lambda's maximum (see {@link WorkerPoolProps.timeout}). */
export const DEFAULT_WORKER_TIMEOUT = Duration.seconds(MAX_FUNCTION_TIMEOUT_SECONDS);
/** The worker's default lease (`shared/runtime/defaults.ts`), which a heartbeat alone is checked against. */
export const DEFAULT_LEASE = Duration.millis(WORKER_DEFAULTS.leaseMs);
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

/** A duration prop in whole milliseconds (at least 1), or undefined when unset. */
function millisOf(what: string, value: Duration | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value.isUnresolved()) throw new EngineConfigError(`${what} must be a concrete duration`);
  const ms = value.toMilliseconds({ integral: false });
  if (!Number.isInteger(ms) || ms < 1) {
    throw new EngineConfigError(`${what} must be a whole number of milliseconds, at least 1, got ${ms}`);
  }
  return ms;
}

/**
 * A pool's claim timings, checked: each a whole number of milliseconds, and
 * the heartbeat shorter than the lease (the given one, else the worker's
 * default), or the lease would lapse between two heartbeats while the task
 * still runs. A lease longer than the function timeout is fine.
 */
function claimTimingsOf(pool: WorkerPoolProps): ClaimTimings {
  const reserveTtlMs = millisOf(`pool '${pool.name}' reserveTtl`, pool.reserveTtl);
  const leaseMs = millisOf(`pool '${pool.name}' lease`, pool.lease);
  const heartbeatMs = millisOf(`pool '${pool.name}' heartbeat`, pool.heartbeat);
  const effectiveLeaseMs = leaseMs ?? DEFAULT_LEASE.toMilliseconds();
  if (heartbeatMs !== undefined && heartbeatMs >= effectiveLeaseMs) {
    throw new EngineConfigError(
      `pool '${pool.name}' heartbeat (${heartbeatMs} ms) must be shorter than its lease (${effectiveLeaseMs} ms` +
        `${leaseMs === undefined ? ', the default' : ''})`,
    );
  }
  return {
    ...(reserveTtlMs === undefined ? {} : { reserveTtlMs }),
    ...(leaseMs === undefined ? {} : { leaseMs }),
    ...(heartbeatMs === undefined ? {} : { heartbeatMs }),
  };
}

/**
 * Applies the defaults of each pool and checks them, with the shared queue
 * rules (`resolvePool`) for the name, visibility and redrive count.
 *
 * @throws EngineConfigError when a value is out of range, a heartbeat is not
 *   shorter than its lease, or a name repeats.
 * @throws QueueDefinitionError when a pool name is not valid for SQS.
 */
export function resolveWorkerPools(pools: readonly WorkerPoolProps[], maxReceiveCount: number): ResolvedWorkerPool[] {
  if (pools.length === 0) throw new EngineConfigError('at least one worker pool is needed');
  const seen = new Set<string>();
  return pools.map((pool) => {
    if (seen.has(pool.name)) throw new EngineConfigError(`worker pool '${pool.name}' is declared twice`);
    seen.add(pool.name);
    const timeout = pool.timeout ?? DEFAULT_WORKER_TIMEOUT;
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
      claimTimings: claimTimingsOf(pool),
      definition,
      queues: resolvePool(definition),
    };
  });
}

/**
 * Checks that every pool a workflow's tasks name is deployed: a dispatch to
 * a pool without queues would fail at run time (the queue URL look-up finds
 * no queue), so it fails the synth instead.
 *
 * @param workflows the flows bundled into the handlers.
 * @param deployed the names of the deployed pools.
 * @throws EngineConfigError naming each workflow, the pools it names that
 *   are missing, and the deployed pools.
 * @example
 * ```ts
 * checkWorkflowPools([fulfil], ['default']);
 * ```
 */
export function checkWorkflowPools(workflows: readonly AnyFlow[], deployed: readonly string[]): void {
  const quoted = (names: readonly string[]) => names.map((n) => `'${n}'`).join(', ');
  const problems = workflows.flatMap((flow) => {
    const missing = poolsOf(flow).filter((pool) => !deployed.includes(pool));
    if (missing.length === 0) return [];
    return missing.length === 1
      ? [`workflow '${flow.name}' runs tasks on pool ${quoted(missing)}, which is not deployed`]
      : [`workflow '${flow.name}' runs tasks on pools ${quoted(missing)}, which are not deployed`];
  });
  if (problems.length > 0) {
    throw new EngineConfigError(
      `${problems.join('; ')} (deployed pools: ${quoted(deployed)}): ` +
        "add the pool to the engine's pools, or move the tasks to a deployed pool",
    );
  }
}
