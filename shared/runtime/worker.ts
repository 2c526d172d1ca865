import { compileFlow, taskOf } from '../engine/compile.ts';
import { taskTimeoutMs } from '../engine/describe.ts';
import { ensureError } from '../engine/errors.ts';
import { materialize, refValueIds } from '../engine/refs.ts';
import type { Dispatch, Effect, Snapshot } from '../engine/snapshot.ts';
import type { Claim, ClaimStore } from '../ports/claim-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeadLetterQueue } from '../ports/dead-letters.ts';
import { ClaimHeldError, ClaimLostError } from '../ports/errors.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { Secrets } from '../ports/secrets.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import { dispatchesOf } from './effects.ts';
import { executeTask } from './execute-task.ts';
import { applyEvent, completeTask } from './instances.ts';
import type { WorkflowRegistry } from './registry.ts';

/**
 * The worker's side of the engine, transport-free: what `functions/worker`
 * does with one dispatch. The steps, each a single-item conditional write
 * where it writes:
 *
 * ```
 *  reserve claim ─► read snapshot ─► start claim ─► run (heartbeats) ─► put output ─► update snapshot ─► send dispatches ─► release
 *  (absent/expired)  (skip if stale,   (fence)                           (absent)      (version)
 *                     paused, final)
 * ```
 *
 * A crash between any two steps loses nothing: the snapshot still lists the
 * task as dispatched, and the reaper dispatches it again once its claim has
 * expired; the output put is conditional, so a re-run commits nothing twice.
 *
 * When the next task belongs to this worker's pool and the invocation has
 * time left, it runs inline (checkpointed as usual) instead of going through
 * the queue.
 */
export interface WorkerDeps {
  readonly store: InstanceStore;
  readonly claims: ClaimStore;
  readonly queue: TaskQueue;
  readonly registry: WorkflowRegistry;
  readonly clock: Clock;
  readonly secrets: Secrets;
  /** This worker's pool: dispatches of other pools are never run inline. */
  readonly pool: string;
  readonly workerId: string;
  /** Reservation TTL: how long a worker may take between reserving and starting. @default 10_000 */
  readonly reserveTtlMs?: number;
  /** Executing lease; heartbeats renew it. @default 60_000 */
  readonly leaseMs?: number;
  /** Heartbeat period. @default leaseMs / 3 */
  readonly heartbeatMs?: number;
  /** Run same-pool successors inline. @default true */
  readonly inline?: boolean;
  /** Where a task whose retries ran out is recorded (with the reason) for inspection and redrive. */
  readonly deadLetters?: DeadLetterQueue;
  /** Called with what happened to each task, for logs and tests. */
  readonly onTask?: (report: TaskReport) => void;
  /**
   * Fault injection: called at each phase of each task. Throwing
   * {@link WorkerKilledError} from it kills the worker there: it makes no
   * further write, releases nothing, and its whole batch fails, as when a
   * Lambda invocation dies.
   */
  readonly faults?: (phase: WorkerPhase, dispatch: Dispatch) => void;
}

/**
 * Where a worker can die:
 * - `reserved`: claim taken, nothing run;
 * - `executed`: the task ran, its output is not stored;
 * - `checkpointed`: output and snapshot stored, successors not dispatched;
 * - `dispatched`: successors sent, claim not released.
 */
export type WorkerPhase = 'reserved' | 'executed' | 'checkpointed' | 'dispatched';

/** The worker process died (fault injection); nothing after it ran. */
export class WorkerKilledError extends Error {
  override readonly name = 'WorkerKilledError';
  constructor(
    readonly phase: WorkerPhase,
    readonly taskKey: string,
  ) {
    super(`worker killed at '${phase}' of task '${taskKey}'`);
  }
}

export type TaskOutcomeKind =
  /** Ran and its output is committed (by this run or an earlier one). */
  | 'completed'
  /** Ran and failed (the reducer decided: retry later or fail the run). */
  | 'failed'
  /** Not run: claimed by another worker, stale, already done, paused, or the run is over. */
  | 'skipped';

export interface TaskReport {
  readonly dispatch: Dispatch;
  readonly outcome: TaskOutcomeKind;
  readonly reason?: string;
  readonly inline: boolean;
}

/** Safety margin kept when deciding to run a task inline. */
const INLINE_MARGIN_MS = 2_000;

interface Step {
  readonly next?: Dispatch;
  readonly snapshot?: Snapshot;
}

/**
 * Processes one dispatch from the queue, then its same-pool successors
 * inline while `remainingMs()` allows.
 *
 * Throws only when the queued dispatch could not be processed and should be
 * redelivered (a transient store or queue error). A failure in an inline
 * successor is logged and left to the reaper: the queued dispatch itself was
 * fully processed.
 */
export async function processDispatch(
  deps: WorkerDeps,
  dispatch: Dispatch,
  remainingMs: () => number,
): Promise<TaskReport[]> {
  const reports: TaskReport[] = [];
  const report = (r: TaskReport) => {
    reports.push(r);
    deps.onTask?.(r);
  };
  let step = await runOne(deps, dispatch, undefined, false, remainingMs, report);
  while (step.next) {
    const d = step.next;
    try {
      step = await runOne(deps, d, step.snapshot, true, remainingMs, report);
    } catch (e) {
      if (e instanceof WorkerKilledError) throw e;
      // The task stays dispatched in the snapshot: the reaper recovers it.
      report({ dispatch: d, outcome: 'skipped', reason: `inline run failed: ${ensureError(e).message}`, inline: true });
      break;
    }
  }
  return reports;
}

async function runOne(
  deps: WorkerDeps,
  d: Dispatch,
  known: Snapshot | undefined,
  inline: boolean,
  remainingMs: () => number,
  report: (r: TaskReport) => void,
): Promise<Step> {
  const now = () => deps.clock.now();
  const skip = (reason: string): Step => {
    report({ dispatch: d, outcome: 'skipped', reason, inline });
    return {};
  };
  if (!deps.registry.has(d.workflow)) return skip(`workflow '${d.workflow}' is not registered here`);
  const flow = deps.registry.get(d.workflow);
  const leaseMs = deps.leaseMs ?? 60_000;

  // Two phases for a queued dispatch (reserve, then start once the snapshot
  // says the task is still wanted); one for an inline successor, which this
  // worker just dispatched to itself.
  let claim: Claim;
  try {
    claim = inline
      ? await deps.claims.acquire(d.instanceId, d.key, deps.workerId, now(), leaseMs, d.attempt)
      : await deps.claims.reserve(d.instanceId, d.key, deps.workerId, now(), deps.reserveTtlMs ?? 10_000, d.attempt);
  } catch (e) {
    if (e instanceof ClaimHeldError) return skip('claimed by another worker');
    throw e;
  }
  deps.faults?.('reserved', d);
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await deps.claims.release(claim);
  };
  try {
    const snapshot = known?.instanceId === d.instanceId ? known : await deps.store.get(d.instanceId);
    if (!snapshot) return await releaseAnd(release, () => skip('no such instance'));
    const t = snapshot.tasks[d.key];
    if (snapshot.status === 'PAUSED' && t?.state === 'dispatched' && t.attempt === d.attempt) {
      await applyEvent(
        deps.store,
        flow,
        d.instanceId,
        { type: 'task-held', key: d.key, attempt: d.attempt },
        now,
        snapshot,
      );
      return await releaseAnd(release, () => skip('run is paused: task held until resume'));
    }
    if (snapshot.status !== 'RUNNING') return await releaseAnd(release, () => skip(`run is ${snapshot.status}`));
    if (t?.state !== 'dispatched' || t.attempt !== d.attempt) {
      return await releaseAnd(release, () => skip('stale dispatch: task already done or at another attempt'));
    }

    if (claim.state === 'reserved') claim = await deps.claims.start(claim, now(), leaseMs);
    const controller = new AbortController();
    const heartbeat = startHeartbeat(
      deps,
      () => claim,
      (c) => (claim = c),
      leaseMs,
      controller,
    );
    let outcomeOk: boolean;
    let effects: readonly Effect[];
    let after: Snapshot;
    try {
      const values = await deps.store.getValues(d.instanceId, refValueIds(d.input));
      const input = materialize(d.input, values);
      const outcome = await executeTask({
        flow,
        dispatch: d,
        input,
        clock: deps.clock,
        secrets: deps.secrets,
        signal: controller.signal,
      });
      heartbeat.stop();
      deps.faults?.('executed', d);
      outcomeOk = outcome.ok;
      // A worker that went quiet for longer than a heartbeat (a stall, a
      // partition) may have lost its lease: check the fence before committing.
      if (deps.clock.now() - (claim.lastHeartbeat ?? claim.startedAt ?? 0) > heartbeatMs(deps, leaseMs)) {
        claim = await deps.claims.heartbeat(claim, deps.clock.now(), leaseMs);
      }
      const meta = { worker: deps.workerId, startedAt: claim.startedAt ?? now() };
      const r = outcome.ok
        ? await completeTask(deps.store, flow, d, outcome.value, now, undefined, snapshot, meta)
        : await applyEvent(
            deps.store,
            flow,
            d.instanceId,
            { type: 'task-failed', key: d.key, attempt: d.attempt, error: outcome.error, ...meta },
            now,
            snapshot,
          );
      effects = r.effects;
      after = r.snapshot;
    } finally {
      heartbeat.stop();
    }

    deps.faults?.('checkpointed', d);
    if (!outcomeOk) await deadLetter(deps, d, effects);
    // Pick a same-pool successor to run inline; everything else goes to the queue.
    const dispatches = dispatchesOf(effects);
    const next =
      deps.inline === false
        ? undefined
        : dispatches.find((x) => x.pool === deps.pool && fitsInline(flow, x, remainingMs()));
    const queued = dispatches.filter((x) => x !== next);
    if (queued.length > 0) await deps.queue.send(queued);
    deps.faults?.('dispatched', d);
    await release();
    report({ dispatch: d, outcome: outcomeOk ? 'completed' : 'failed', inline });
    return { ...(next ? { next } : {}), snapshot: after };
  } catch (e) {
    // A dead worker writes nothing more: its claim expires and the reaper takes over.
    if (e instanceof WorkerKilledError) throw e;
    // Leave the claim to expire unless it is certainly ours to release.
    if (e instanceof ClaimLostError) return skip('lease lost while running');
    await release().catch(() => undefined);
    throw e;
  }
}

/** Records the task in its pool's DLQ when its failure failed the run (retries exhausted, or terminal). */
async function deadLetter(deps: WorkerDeps, d: Dispatch, effects: readonly Effect[]): Promise<void> {
  const fail = effects.find((e) => e.type === 'fail');
  if (!deps.deadLetters || fail?.type !== 'fail' || fail.error.taskKey !== d.key) return;
  try {
    await deps.deadLetters.send({
      dispatch: d,
      reason: `${fail.error.name}: ${fail.error.message}`,
      attempts: fail.error.attempts ?? d.attempt,
      failedAt: deps.clock.now(),
      error: { name: fail.error.name, message: fail.error.message },
    });
  } catch (e) {
    // The run's failure is checkpointed; the record is for operators. Log and go on.
    console.error(
      JSON.stringify({ level: 'error', msg: 'dead-letter send failed', key: d.key, error: ensureError(e).message }),
    );
  }
}

async function releaseAnd<T>(release: () => Promise<void>, then: () => T): Promise<T> {
  await release();
  return then();
}

function fitsInline(flow: Parameters<typeof compileFlow>[0], d: Dispatch, remaining: number): boolean {
  const node = compileFlow(flow).nodes.get(d.qid);
  return node !== undefined && remaining > taskTimeoutMs(taskOf(node)) + INLINE_MARGIN_MS;
}

function heartbeatMs(deps: WorkerDeps, leaseMs: number): number {
  return deps.heartbeatMs ?? Math.floor(leaseMs / 3);
}

function startHeartbeat(
  deps: WorkerDeps,
  current: () => Claim,
  update: (c: Claim) => void,
  leaseMs: number,
  controller: AbortController,
): { stop(): void } {
  const every = heartbeatMs(deps, leaseMs);
  const stopper = new AbortController();
  const loop = async () => {
    while (!stopper.signal.aborted) {
      try {
        await deps.clock.sleep(every, stopper.signal);
      } catch {
        return;
      }
      try {
        update(await deps.claims.heartbeat(current(), deps.clock.now(), leaseMs));
      } catch (e) {
        if (e instanceof ClaimLostError) {
          controller.abort(e);
          return;
        }
        // A transient failure: try again at the next beat; the lease has slack.
      }
    }
  };
  void loop();
  return { stop: () => stopper.abort() };
}
