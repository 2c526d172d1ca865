/**
 * The runtime's defaults, in one place: the worker, the reaper, the local
 * stack and the CDK construct read them from here, so a default is never
 * written twice. No `aws-cdk-lib` import: this module is bundled into the
 * Lambdas.
 */

/** Claim timings of a worker pool. */
export interface ClaimTimings {
  /**
   * How long a worker may take between reserving a task and starting it;
   * an expired reservation is re-dispatched at once, without costing an attempt.
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

/** The reaper's defaults. */
export const REAPER_DEFAULTS = {
  /** Pause between passes within one invocation. */
  intervalMs: 5_000,
  /** Stop looping when less than this much invocation time is left. */
  stopBeforeMs: 10_000,
  /** Instances per pass, from each source. */
  batchSize: 100,
} as const;

/** Timeouts of the AWS SDK clients of the functions (ms). */
export const SDK_DEFAULTS = {
  /** To open a connection. */
  connectionTimeoutMs: 3_000,
  /** Without an answer on an open connection, before the call fails (and the SDK retries it). */
  requestTimeoutMs: 10_000,
} as const;
