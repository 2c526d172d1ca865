import { compileFlow, taskOf } from '../engine/compile.ts';
import type { AnyFlow } from '../engine/definition.ts';
import { taskTimeoutMs } from '../engine/describe.ts';
import { ensureError } from '../engine/errors.ts';
import { isCurrentDispatch, laneDispatch } from '../engine/reducer.ts';
import { materialize, outputId, refValueIds } from '../engine/refs.ts';
import type { ChainStep, Dispatch, Effect, LaneItem, MapState, Snapshot } from '../engine/snapshot.ts';
import type { Claim, ClaimStore } from '../ports/claim-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeadLetterQueue } from '../ports/dead-letters.ts';
import { ClaimHeldError, ClaimLostError } from '../ports/errors.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { Secrets } from '../ports/secrets.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import { WORKER_DEFAULTS } from './defaults.ts';
import { dispatchesOf } from './effects.ts';
import { executeTask } from './execute-task.ts';
import { type Commit, commit, compactionDue, compactRun, completeTask, loadRun, type RunState } from './instances.ts';
import { countItem, laneItemOf, laneMapOf } from './lanes.ts';
import type { WorkflowRegistry } from './registry.ts';

/**
 * The worker's side of the engine, transport-free: what `functions/worker`
 * does with one queue message. One claim per message, however many tasks
 * the chain runs:
 *
 * ```
 *  reserve ─► load state ─► start ─► ┌ run task (heartbeats) ─► append completion ─► send other dispatches ┐ ─► compact ─► release
 *  (absent/    (skip if stale,  (fence)  └──────────── next same-pool task inline, while time allows ◄────────┘   (newer)     (fence)
 *   expired)    paused, final)                          (absent seq)
 * ```
 *
 * A crash between any two steps loses nothing: the journal says what is
 * committed, and the claim, left to expire, brings the reaper, which
 * re-dispatches the task the chain was at and compacts what the chain left.
 * A re-run finds its task no longer current and commits nothing twice.
 */
export interface WorkerDeps {
  readonly store: InstanceStore;
  readonly claims: ClaimStore;
  readonly queue: TaskQueue;
  readonly registry: WorkflowRegistry;
  readonly clock: Clock;
  /** The clock of task timeouts and heartbeat periods (running work's own time). @default clock */
  readonly taskClock?: Clock;
  readonly secrets: Secrets;
  /** This worker's pool: dispatches of other pools are never run inline. */
  readonly pool: string;
  readonly workerId: string;
  /** Reservation TTL: how long a worker may take between reserving and starting. @default WORKER_DEFAULTS.reserveTtlMs */
  readonly reserveTtlMs?: number;
  /** Executing lease; heartbeats renew it. @default WORKER_DEFAULTS.leaseMs */
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
 * - `executed`: the task ran, its completion is not committed;
 * - `checkpointed`: the completion is committed, successors not dispatched;
 * - `dispatched`: successors sent, chain not compacted, claim not released.
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
  /** Ran and its completion is committed. */
  | 'completed'
  /** Ran and failed (the reducer decided: retry later or fail the run). */
  | 'failed'
  /** Not run, or ran without effect: claimed elsewhere, stale, paused, the run is over, the lease was lost. */
  | 'skipped';

export interface TaskReport {
  readonly dispatch: Dispatch;
  readonly outcome: TaskOutcomeKind;
  readonly reason?: string;
  readonly inline: boolean;
}

/** Safety margin kept when deciding to run a task inline. */
const INLINE_MARGIN_MS = 2_000;

/** What one chain holds while it runs. */
interface Chain {
  readonly deps: WorkerDeps;
  readonly flow: AnyFlow;
  readonly leaseMs: number;
  claim: Claim;
  run: RunState;
  readonly report: (r: TaskReport) => void;
  readonly remainingMs: () => number;
}

/**
 * Processes one queue message: its dispatch, then same-pool successors
 * inline while `remainingMs()` allows, under the one claim.
 *
 * Throws only when the message should be redelivered (a transient store or
 * queue error before its task was committed). A failure later in the chain
 * is reported and left to the reaper: the message itself was processed.
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
  const skip = (reason: string) => report({ dispatch, outcome: 'skipped', reason, inline: false });
  if (!deps.registry.has(dispatch.workflow)) {
    skip(`workflow '${dispatch.workflow}' is not registered here`);
    return reports;
  }
  const flow = deps.registry.get(dispatch.workflow);
  const claim = await reserve(deps, dispatch);
  if (!claim) {
    skip('claimed by another worker');
    return reports;
  }
  deps.faults?.('reserved', dispatch);
  const chain = await open(deps, flow, dispatch, claim, { report, remainingMs });
  if (!chain) return reports;
  await runChain(chain, dispatch);
  return reports;
}

/** Phase 1: the reservation, or `undefined` when another worker holds the task. */
async function reserve(deps: WorkerDeps, d: Dispatch): Promise<Claim | undefined> {
  try {
    return await deps.claims.reserve(
      d.instanceId,
      d.key,
      deps.workerId,
      deps.clock.now(),
      deps.reserveTtlMs ?? WORKER_DEFAULTS.reserveTtlMs,
      d.attempt,
    );
  } catch (e) {
    if (e instanceof ClaimHeldError) return undefined;
    throw e;
  }
}

/**
 * Phase 2: reads the run and decides whether the dispatch is still wanted;
 * if so, starts the claim (Reserved -> Executing). Otherwise releases it and
 * reports why (a paused run's task is held until resume).
 */
async function open(
  deps: WorkerDeps,
  flow: AnyFlow,
  d: Dispatch,
  reserved: Claim,
  io: Pick<Chain, 'report' | 'remainingMs'>,
): Promise<Chain | undefined> {
  const now = () => deps.clock.now();
  const leaseMs = deps.leaseMs ?? WORKER_DEFAULTS.leaseMs;
  const give = async (reason: string) => {
    await deps.claims.release(reserved);
    io.report({ dispatch: d, outcome: 'skipped', reason, inline: false });
    return undefined;
  };
  try {
    const run = await loadRun(deps.store, flow, d.instanceId);
    if (!run) return await give('no such instance');
    const s = run.snapshot;
    const t = Object.hasOwn(s.tasks, d.key) ? s.tasks[d.key] : undefined;
    const lane = inLane(s, d);
    if (s.status === 'PAUSED' && (lane || (t?.state === 'dispatched' && t.attempt === d.attempt))) {
      const r = await commit(
        deps.store,
        flow,
        run,
        () => [{ type: 'task-held', key: d.key, attempt: d.attempt, ...laneOf(s, d) }],
        {
          now,
        },
      );
      await compactRun(deps.store, r.run);
      return await give('run is paused: task held until resume');
    }
    if (s.status !== 'RUNNING') return await give(`run is ${s.status}`);
    if (!lane && !isCurrentDispatch(s, d.key, d.attempt)) {
      return await give('stale dispatch: task already done or at another attempt');
    }
    // A duplicate message for a task another worker runs inline in its chain.
    if (t?.claim !== undefined && t.claim !== d.key) {
      const holder = await deps.claims.get(d.instanceId, t.claim);
      if (holder && holder.expiresAt > now()) return await give(`running in the chain of claim '${t.claim}'`);
    }
    const claim = await deps.claims.start(reserved, now(), leaseMs);
    return { deps, flow, leaseMs, claim, run, ...io };
  } catch (e) {
    if (e instanceof WorkerKilledError || e instanceof ClaimLostError) throw e;
    await deps.claims.release(reserved).catch(() => undefined);
    throw e;
  }
}

/**
 * Phase 3: runs the chain: the dispatch, then each same-pool successor the
 * commit chose to run inline; then compacts and releases. A failure after
 * the first commit is reported, not thrown: the reaper takes it from there.
 */
async function runChain(chain: Chain, first: Dispatch): Promise<void> {
  const { deps } = chain;
  const heartbeat = startHeartbeat(chain);
  let d: Dispatch | undefined = first;
  let inline = false;
  let committedOnce = false;
  try {
    while (d) {
      const step = await runStep(chain, d, inline, heartbeat.signal);
      if (step.lost) return; // the claim is someone else's now: write nothing more
      committedOnce ||= step.committed;
      d = step.next;
      inline = true;
      if (d && compactionDue(chain.run)) chain.run = await compactRun(deps.store, chain.run);
    }
    heartbeat.stop();
    chain.run = await compactRun(deps.store, chain.run);
    await deps.claims.release(chain.claim);
  } catch (e) {
    if (e instanceof WorkerKilledError) throw e;
    if (e instanceof ClaimLostError) return;
    if (!committedOnce) {
      await deps.claims.release(chain.claim).catch(() => undefined);
      throw e;
    }
    // Progress is committed; the claim expires and the reaper re-dispatches where the chain stopped.
    if (d) {
      chain.report({ dispatch: d, outcome: 'skipped', reason: `inline run failed: ${ensureError(e).message}`, inline });
    }
  } finally {
    heartbeat.stop();
  }
}

interface StepResult {
  readonly next?: Dispatch;
  readonly committed: boolean;
  /** The claim was lost (revoked, or taken over after a stall): nothing was committed. */
  readonly lost?: boolean;
}

/** One task of the chain: input, run, commit, dispatch what goes to the queue, pick the inline successor. */
async function runStep(chain: Chain, d: Dispatch, inline: boolean, lease: AbortSignal): Promise<StepResult> {
  const { deps, flow } = chain;
  const now = () => deps.clock.now();
  if (inline && d.lane) {
    // Items in lanes are not in the frontier a cancel or pause clears: ask the stored state before each one.
    const stored = await deps.store.get(d.instanceId);
    if (stored?.status !== 'RUNNING' || !inLane(chain.run.snapshot, d)) {
      await deps.queue.send([d]); // its own worker will hold it, drop it, or run it
      chain.report({ dispatch: d, outcome: 'skipped', reason: 'sent to the queue: the run is not running', inline });
      return { committed: false };
    }
  } else if (inline && !isCurrentDispatch(chain.run.snapshot, d.key, d.attempt)) {
    chain.report({ dispatch: d, outcome: 'skipped', reason: 'stale dispatch', inline });
    return { committed: false };
  }
  const input = materialize(d.input, await valuesFor(chain, d));
  const startedAt = now();
  const outcome = await executeTask({
    flow,
    dispatch: d,
    input,
    clock: deps.taskClock ?? deps.clock,
    secrets: deps.secrets,
    signal: lease,
  });
  deps.faults?.('executed', d);
  if (lease.aborted) {
    // The lease was lost mid-task (a cancel revoked it, or another worker took over):
    // this attempt's outcome belongs to no one, and commits nothing.
    chain.report({ dispatch: d, outcome: 'skipped', reason: 'lease lost while running', inline });
    return { committed: false, lost: true };
  }
  await checkFenceAfterStall(chain);
  if (outcome.ok && inLane(chain.run.snapshot, d)) return finishLaneItem(chain, d, outcome.value, inline);
  const meta = { worker: deps.workerId, startedAt };
  const laneMap = laneMapOf(flow, chain.run.snapshot, d.qid, chain.run.snapshot.tasks[d.key]?.idx ?? []);
  const pickNext = (effects: readonly Effect[]): ChainStep | undefined => {
    const next = inlineCandidate(chain, effects);
    return next ? { key: next.key, claim: chain.claim.taskKey } : undefined;
  };
  const r: Commit = outcome.ok
    ? await completeTask(deps.store, flow, chain.run, d, outcome.value, { now, meta, chain: pickNext })
    : await commit(
        deps.store,
        flow,
        chain.run,
        () => [
          {
            type: 'task-failed',
            key: d.key,
            attempt: d.attempt,
            error: outcome.error,
            ...meta,
            ...laneOf(chain.run.snapshot, d),
          },
        ],
        { now },
      );
  chain.run = r.run;
  if (!r.changed) {
    chain.report({ dispatch: d, outcome: 'skipped', reason: 'stale: the journal moved on', inline });
    return { committed: false };
  }
  deps.faults?.('checkpointed', d);
  if (!outcome.ok) await deadLetter(deps, d, r.effects);
  const dispatches = dispatchesOf(r.effects);
  // A map item that had joined the frontier (after a failure or a pause) is counted like one in its lane.
  if (outcome.ok && laneMap && r.valueCreated) {
    const counted = await countItem(deps.store, flow, chain.run, laneMap, { now });
    chain.run = counted.run;
    dispatches.push(...(counted.next ? [counted.next] : []), ...dispatchesOf(counted.effects));
  }
  const next = r.chained ? dispatches.find((x) => x.key === r.chained?.key) : undefined;
  const queued = dispatches.filter((x) => x !== next);
  if (queued.length > 0) await deps.queue.send(queued);
  deps.faults?.('dispatched', d);
  chain.report({ dispatch: d, outcome: outcome.ok ? 'completed' : 'failed', inline });
  return { committed: true, ...(next ? { next } : {}) };
}

/** Whether a dispatch is an item running in its lane: its map still runs in lanes, and it has not joined the frontier. */
function inLane(s: Snapshot, d: Dispatch): boolean {
  return d.lane !== undefined && s.maps[d.lane.map]?.lanes !== undefined && !Object.hasOwn(s.tasks, d.key);
}

/** The `lane` of an event that makes an item in its lane join the frontier; nothing for other dispatches. */
function laneOf(s: Snapshot, d: Dispatch): { lane?: LaneItem } {
  const m = d.lane && inLane(s, d) ? s.maps[d.lane.map] : undefined;
  const item = m ? laneItemOf(d, m) : undefined;
  return item ? { lane: item } : {};
}

/**
 * The commit of an item in its lane that succeeded: its result, put on
 * condition that it is absent, then the map's counter (only by the writer
 * whose put created the result). The next item of the window may run
 * inline; the map's successor, on the last item, goes to the queue.
 */
async function finishLaneItem(chain: Chain, d: Dispatch, value: unknown, inline: boolean): Promise<StepResult> {
  const { deps, flow } = chain;
  const lane = d.lane as NonNullable<Dispatch['lane']>;
  const id = outputId(d.key);
  const created = (await deps.store.putValue(d.instanceId, id, value)) === 'created';
  deps.faults?.('checkpointed', d);
  const following = compileFlow(flow).nodes.get(d.qid)?.next ?? null;
  if (following !== null) {
    // A step before the body's last: its output, put if absent, is the next step's input (the first put wins).
    chain.run.values.set(id, created ? value : (await deps.store.getValues(d.instanceId, [id])).get(id));
    const m = chain.run.snapshot.maps[lane.map] as MapState;
    const candidate = laneDispatch(flow, chain.run.snapshot, lane.map, m, lane.item, {
      qid: following,
      input: { v: id },
    });
    const next = inlineCandidate(chain, [{ type: 'dispatch', dispatch: candidate }]) ? candidate : undefined;
    if (!next) await deps.queue.send([candidate]);
    deps.faults?.('dispatched', d);
    chain.report({ dispatch: d, outcome: 'completed', inline });
    return { committed: true, ...(next ? { next } : {}) };
  }
  if (!created) {
    chain.report({ dispatch: d, outcome: 'skipped', reason: 'its result was already committed', inline });
    return { committed: false };
  }
  const counted = await countItem(deps.store, flow, chain.run, lane.map, { now: () => deps.clock.now() });
  chain.run = counted.run;
  const candidate = counted.next;
  const next = candidate && inlineCandidate(chain, [{ type: 'dispatch', dispatch: candidate }]) ? candidate : undefined;
  const queued = [...(candidate && !next ? [candidate] : []), ...dispatchesOf(counted.effects)];
  if (queued.length > 0) await deps.queue.send(queued);
  deps.faults?.('dispatched', d);
  chain.report({ dispatch: d, outcome: 'completed', inline });
  return { committed: true, ...(next ? { next } : {}) };
}

/** The first dispatch of this pool that fits in the invocation's remaining time. */
function inlineCandidate(chain: Chain, effects: readonly Effect[]): Dispatch | undefined {
  if (chain.deps.inline === false) return undefined;
  return dispatchesOf(effects).find(
    (x) => x.pool === chain.deps.pool && fitsInline(chain.flow, x, chain.remainingMs()),
  );
}

/** The values a dispatch's input reads: from what the chain has seen, the rest from the store. */
async function valuesFor(chain: Chain, d: Dispatch): Promise<ReadonlyMap<string, unknown>> {
  const ids = [...refValueIds(d.input)];
  const missing = ids.filter((id) => !chain.run.values.has(id));
  if (missing.length > 0) {
    for (const [id, v] of await chain.deps.store.getValues(d.instanceId, missing)) chain.run.values.set(id, v);
  }
  return chain.run.values;
}

/**
 * A worker that went quiet for longer than a heartbeat (a stall, a
 * partition) may have lost its lease: renew it before committing, so a
 * takeover is noticed. Correctness does not depend on it (the journal's
 * conditional put does); it spares a needless commit race.
 */
async function checkFenceAfterStall(chain: Chain): Promise<void> {
  const { deps } = chain;
  const last = chain.claim.lastHeartbeat ?? chain.claim.startedAt ?? 0;
  if (deps.clock.now() - last > heartbeatMs(deps, chain.leaseMs)) {
    chain.claim = await deps.claims.heartbeat(chain.claim, deps.clock.now(), chain.leaseMs);
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
    // The run's failure is committed; the record is for operators. Log and go on.
    console.error(
      JSON.stringify({ level: 'error', msg: 'dead-letter send failed', key: d.key, error: ensureError(e).message }),
    );
  }
}

function fitsInline(flow: AnyFlow, d: Dispatch, remaining: number): boolean {
  const node = compileFlow(flow).nodes.get(d.qid);
  return node !== undefined && remaining > taskTimeoutMs(taskOf(node)) + INLINE_MARGIN_MS;
}

function heartbeatMs(deps: WorkerDeps, leaseMs: number): number {
  return deps.heartbeatMs ?? Math.floor(leaseMs / 3);
}

const HEARTBEAT_STOPPED = Object.freeze({ stopped: true });

/**
 * Renews the chain's lease every heartbeat period while the chain runs. When
 * a renewal finds the claim lost (revoked by a cancel, or taken over), the
 * returned signal aborts the running task.
 */
function startHeartbeat(chain: Chain): { readonly signal: AbortSignal; stop(): void } {
  const { deps } = chain;
  const every = heartbeatMs(deps, chain.leaseMs);
  const stopper = new AbortController();
  const lease = new AbortController();
  const loop = async () => {
    while (!stopper.signal.aborted) {
      try {
        await (deps.taskClock ?? deps.clock).sleep(every, stopper.signal);
      } catch {
        return;
      }
      try {
        chain.claim = await deps.claims.heartbeat(chain.claim, deps.clock.now(), chain.leaseMs);
      } catch (e) {
        if (e instanceof ClaimLostError) {
          lease.abort(e);
          return;
        }
        // A transient failure: try again at the next beat; the lease has slack.
      }
    }
  };
  void loop();
  // A constant reason: the default one is a DOMException, with a stack, per chain.
  return { signal: lease.signal, stop: () => stopper.abort(HEARTBEAT_STOPPED) };
}
