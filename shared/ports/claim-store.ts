/**
 * Leases on tasks: which worker may run (instance, task key) now.
 *
 * Two phases, as a timeline:
 *
 * ```
 *  reserve            start                heartbeat      release
 *    |---- reserveTtl ---|---- lease ----------|---- lease ----|
 *    Reserved{expiresAt}  Executing{workerId, startedAt, lastHeartbeat, expiresAt}
 *    \__ expired: the worker died before starting (or while running short tasks
 *        under the reservation); anyone may reserve again
 *                         \__ expired: the heartbeat stopped; anyone may reserve again
 * ```
 *
 * A worker starts the claim only when its chain may outlive the
 * reservation (see `runtime/worker.ts`): a chain of short tasks goes from
 * reserve to release.
 *
 * Every reservation takes a fence one higher than the last for that task:
 * `start`, `heartbeat` and `release` are conditional on it, so a worker that
 * lost its lease can no longer touch the claim.
 */
export interface Claim {
  readonly instanceId: string;
  readonly taskKey: string;
  /** The task attempt the claim is for: a claim left by an older attempt never blocks a newer one. */
  readonly attempt: number;
  readonly workerId: string;
  readonly fence: number;
  readonly state: 'reserved' | 'executing';
  readonly expiresAt: number;
  readonly startedAt?: number;
  readonly lastHeartbeat?: number;
}

export interface ClaimStore {
  /**
   * Reserves attempt `attempt` of the task until `now + ttlMs`, on condition
   * that it has no live claim (none, released, expired, or left by an older
   * attempt).
   *
   * @throws {ClaimHeldError} someone holds a live claim; nothing was written.
   */
  reserve(
    instanceId: string,
    taskKey: string,
    workerId: string,
    now: number,
    ttlMs: number,
    attempt?: number,
  ): Promise<Claim>;

  /**
   * Reserved -> Executing with a lease until `now + leaseMs`, on condition
   * that the fence is still the caller's.
   *
   * @throws {ClaimLostError} the fence moved on or the claim was released.
   */
  start(claim: Claim, now: number, leaseMs: number): Promise<Claim>;

  /** Extends an executing lease, on condition of the fence. @throws {ClaimLostError} */
  heartbeat(claim: Claim, now: number, leaseMs: number): Promise<Claim>;

  /**
   * Ends the claim, on condition of the fence; the fence counter is kept so
   * that the next reservation gets a higher one. A lost claim is ignored.
   */
  release(claim: Claim): Promise<void>;

  /**
   * Ends whoever's claim is on the task, whatever its fence, and moves the
   * fence on: the holder's next heartbeat fails with `ClaimLostError` and its
   * task is aborted (how a cancel reaches a running task). No claim: no-op.
   */
  revoke(instanceId: string, taskKey: string): Promise<void>;

  /** The claim on a task, read consistently, or `undefined` if none was ever made or it was released. */
  get(instanceId: string, taskKey: string): Promise<Claim | undefined>;

  /** Live-looking claims whose lease ended at or before `now` (for the reaper). Eventually consistent. */
  expired(now: number, limit: number): Promise<Claim[]>;
}
