/**
 * The runtime's defaults, in one place: the worker, the reaper, the local
 * stack and the CDK construct read them from here, so a default is never
 * written twice. No `aws-cdk-lib` import: this module is bundled into the
 * Lambdas.
 */
import { type Duration, toMillis } from '../engine/duration.ts';

/** Claim timings of a worker pool. */
export interface ClaimTimings {
  /**
   * How long a worker may hold a task reserved before starting its claim: it
   * starts it before a task whose timeout ends later, and at half this time
   * if the chain still runs, so a chain of short tasks never starts it. An
   * expired reservation is re-dispatched at once, without costing an
   * attempt, up to twice per attempt (`RESERVATION_LAPSES`).
   * @default 10_000
   */
  readonly reserveTtlMs: number;
  /**
   * The executing lease; heartbeats renew it. An expired lease counts as a
   * failed attempt (`WorkerLostError`).
   * @default 60_000
   */
  readonly leaseMs: number;
}

/** @see ClaimTimings; the heartbeat defaults to a third of the lease. */
export const WORKER_DEFAULTS: ClaimTimings = { reserveTtlMs: 10_000, leaseMs: 60_000 };

/**
 * How long a finished run's records (snapshot, journal, values, offloaded
 * payloads) are kept before the reaper purges them: 90 days, as long as AWS
 * Step Functions keeps a finished standard execution. `'forever'` keeps them.
 */
export const RETENTION_DEFAULT_MS = 90 * 24 * 60 * 60 * 1000;

/** A run retention as configured: milliseconds, or `'forever'`. */
export type Retention = number | 'forever';

/**
 * A retention as written in configuration (`SAYIIR_RETENTION`): a positive
 * whole number of milliseconds, or `forever`; `undefined` when unset or empty.
 *
 * @throws {RangeError} anything else, naming `name`.
 */
export function parseRetention(raw: string | undefined, name: string): Retention | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'forever') return 'forever';
  const ms = Number(raw);
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new RangeError(`${name} must be a positive whole number of milliseconds or 'forever', got '${raw}'`);
  }
  return ms;
}

/**
 * The retention a workflow's runs get: the flow's own (`FlowOptions.retention`)
 * when it names one, else the deployment's, else {@link RETENTION_DEFAULT_MS};
 * in milliseconds, or `'forever'`.
 */
export function effectiveRetention(
  own: Duration | 'forever' | undefined,
  deployment: Retention | undefined,
): Retention {
  if (own === 'forever') return 'forever';
  if (own !== undefined) return toMillis(own);
  return deployment ?? RETENTION_DEFAULT_MS;
}

/** The snapshot's `retentionMs` for a configured retention (`undefined`: the default). */
export function retentionMsOf(retention: Retention | undefined): number | undefined {
  if (retention === 'forever') return undefined;
  return retention ?? RETENTION_DEFAULT_MS;
}

/** The reaper's defaults. */
export const REAPER_DEFAULTS = {
  /** Pause between passes within one invocation. */
  intervalMs: 5_000,
  /** Stop looping when less than this much invocation time is left. */
  stopBeforeMs: 10_000,
  /** Instances per pass, from each source. */
  batchSize: 100,
  /** Instances a pass works on at once. */
  concurrency: 8,
  /**
   * How long a backlog in its queue explains a dispatch no worker took: a
   * dispatch older than this is sent again even behind a backlog (if it was
   * only waiting, the duplicate is claimed and skipped). Long, so a large
   * backlog is not doubled by re-sends; bounded, so a message lost while its
   * queue stays busy is not waited on forever.
   */
  maxQueueWaitMs: 30 * 60_000,
} as const;

/** Timeouts of the AWS SDK clients of the functions (ms). */
export const SDK_DEFAULTS = {
  /** To open a connection. */
  connectionTimeoutMs: 3_000,
  /** Without an answer on an open connection, before the call fails (and the SDK retries it). */
  requestTimeoutMs: 10_000,
} as const;
