import { compileFlow, taskOf } from '../engine/compile.ts';
import type { AnyFlow } from '../engine/definition.ts';
import { taskTimeoutMs } from '../engine/describe.ts';
import { ensureError, type SerializedError, truncateText } from '../engine/errors.ts';
import {
  decidesLanePath,
  type LaneNext,
  laneDispatch,
  laneGroupIn,
  laneItemOf,
  laneNextAfter,
  laneOfTask,
  startsOwnChain,
} from '../engine/lanes.ts';
import { isCurrentDispatch, reduce } from '../engine/reducer.ts';
import { materialize, outputId } from '../engine/refs.ts';
import { resolveRetry, retryBackoff } from '../engine/retry.ts';
import type { ChainStep, Dispatch, Effect, LaneItem, Snapshot } from '../engine/snapshot.ts';
import { SayiirError } from '../errors.ts';
import { inTaskSpan } from '../observability/tracing.ts';
import type { Claim, ClaimStore } from '../ports/claim-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeadLetterStore } from '../ports/dead-letter-store.ts';
import { ClaimHeldError, ClaimLostError } from '../ports/errors.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { Secrets } from '../ports/secrets.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import { putEngineDeadLetter } from './dead-letters.ts';
import { WORKER_DEFAULTS } from './defaults.ts';
import { dispatchesOf } from './effects.ts';
import { executeTask } from './execute-task.ts';
import {
  type Commit,
  commit,
  compactionDue,
  compactRun,
  completeTask,
  loadRun,
  type RunState,
  readValues,
} from './instances.ts';
import { waitInLane } from './lane-signals.ts';
import {
  endChild,
  factsOf,
  joinLaneGroup,
  laneTimer,
  loadLaneFacts,
  passedFrom,
  resolvedLaneSteps,
  startLaneGroup,
} from './lanes.ts';
import type { WorkflowRegistry } from './registry.ts';

/**
 * The worker's side of the engine, transport-free: what `functions/worker`
 * does with one queue message. One claim per message, however many tasks
 * the chain runs:
 *
 * ```
 *  reserve ─► load state ─► ┌ [start] ─► run task (heartbeats) ─► append completion ─► send other dispatches ┐ ─► compact ─► release
 *  (absent/    (skip if stale, │ (fence)                               (absent seq)                              │   (newer)     (fence)
 *   expired)    paused, final) └──────────── next same-pool task inline, while time allows ◄─────────────────────┘
 * ```
 *
 * The claim is started (Reserved -> Executing, with its lease) only when
 * the chain may outlive its reservation: before a task whose timeout ends
 * after it, or by the heartbeat at half of it. A chain of short tasks costs
 * two claim writes, the reservation and the release. Its worker dying is
 * then a reservation that expired: the reducer counts those per attempt
 * (`RESERVATION_LAPSES`), so a task that kills its worker still ends.
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
  /**
   * Reservation TTL: how long a chain may run before its claim is started
   * (a task whose timeout ends later starts it first; the heartbeat starts
   * it at half the TTL). @default WORKER_DEFAULTS.reserveTtlMs
   */
  readonly reserveTtlMs?: number;
  /** Executing lease; heartbeats renew it. @default WORKER_DEFAULTS.leaseMs */
  readonly leaseMs?: number;
  /** Heartbeat period. @default leaseMs / 3 */
  readonly heartbeatMs?: number;
  /** Run same-pool successors inline. @default true */
  readonly inline?: boolean;
  /** Where a task whose failure fails its run is recorded (with the reason) for inspection and redrive. */
  readonly deadLetters?: DeadLetterStore;
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
 * - `stored`: its output is put by its id (see `CompiledFlow.outputsById`),
 *   the journal entry that completes it is not committed;
 * - `checkpointed`: the completion is committed, successors not dispatched;
 * - `dispatched`: successors sent, chain not compacted, claim not released.
 */
export type WorkerPhase = 'reserved' | 'executed' | 'stored' | 'checkpointed' | 'dispatched';

/** The worker process died (fault injection); nothing after it ran. */
export class WorkerKilledError extends SayiirError {
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
  /** Set once the task ran: how long, and how long it waited in the queue (queued dispatches that carry `sentAt`). */
  readonly timing?: TaskTiming;
  /** The run as the chain last saw it (absent when the chain never opened). */
  readonly run?: { readonly status: Snapshot['status']; readonly createdAt: number };
}

/** Timings of one task attempt (ms; `startedAt` epoch ms), by the worker's clock. */
export interface TaskTiming {
  readonly startedAt: number;
  /** The task function's run (schemas included). */
  readonly durationMs: number;
  /** From the task's start to its report: the run, the commit, the successors sent. */
  readonly stepMs: number;
  /** From `Dispatch.sentAt` to the task's start. */
  readonly queueWaitMs?: number;
}

/** Safety margin kept when deciding to run a task inline. */
const INLINE_MARGIN_MS = 2_000;

/** What one chain holds while it runs. */
interface Chain {
  readonly deps: WorkerDeps;
  readonly flow: AnyFlow;
  readonly leaseMs: number;
  /** Reserved until the chain may outlive the reservation, then Executing (see {@link claimFor}). */
  claim: Claim;
  /** The start of the claim, while it is being written (the heartbeat and a step may both ask for it). */
  starting?: Promise<void>;
  run: RunState;
  /** The timing of the step being run, added to its reports. */
  timing?: Omit<TaskTiming, 'stepMs'>;
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
    await loadLaneFacts(deps.store, flow, run, d.lane?.parent);
    const lane = inLane(flow, run, d);
    if (s.status === 'PAUSED' && (lane || (t?.state === 'dispatched' && t.attempt === d.attempt))) {
      if (lane && (await laneChildPassed(deps.store, flow, run, d, 'own')))
        return await give('stale: its map item or fork branch went past this step');
      const joined = lane ? await joinGroupOf(deps, flow, run, d) : run;
      const r = await commit(
        deps.store,
        flow,
        joined,
        () => [{ type: 'task-held', key: d.key, attempt: d.attempt, ...joiningLane(flow, joined, d) }],
        { now },
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
    // Not started yet: the chain starts it when it may outlive the reservation (see `claimFor`).
    const chain: Chain = {
      deps,
      flow,
      leaseMs,
      claim: reserved,
      run,
      ...io,
      report: (r) => io.report(withRun(chain, r)),
    };
    return chain;
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
  // The run's version as this chain read it: a chain that appended nothing to the journal leaves its compaction to
  // the chains that did (a map's items parking at once would all rewrite the snapshot for the same entries).
  const readAt = chain.run.snapshot.version;
  try {
    while (d) {
      const current: Dispatch = d;
      chain.timing = undefined;
      const step: StepResult = await inTaskSpan(current, inline, () =>
        runStep(chain, current, inline, heartbeat.signal),
      );
      if (step.lost) return; // the claim is someone else's now: write nothing more
      committedOnce ||= step.committed;
      d = step.next;
      inline = true;
      if (d && compactionDue(chain.run)) chain.run = await compactRun(deps.store, chain.run);
    }
    heartbeat.stop();
    // The journal holds every commit already, so neither write waits for the
    // other: a crash that leaves the snapshot behind is compacted by the
    // reaper (the run's due time stays indexed until a compaction lands), a
    // claim left behind expires. A chain that appended nothing (a child in
    // its lane) leaves the snapshot to the writers of the entries after it.
    const appended = chain.run.snapshot.version > readAt;
    const [compacted] = await Promise.all([
      appended ? compactRun(deps.store, chain.run) : chain.run,
      deps.claims.release(chain.claim),
    ]);
    chain.run = compacted;
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
  await loadLaneFacts(deps.store, flow, chain.run, d.lane?.parent);
  if (inline && d.lane) {
    // Children in lanes are not in the frontier a cancel or pause clears: ask the stored state before each step.
    const stored = await deps.store.get(d.instanceId);
    if (stored?.status !== 'RUNNING' || !inLane(flow, chain.run, d)) {
      await deps.queue.send([d]); // its own worker will hold it, drop it, or run it
      chain.report({ dispatch: d, outcome: 'skipped', reason: 'sent to the queue: the run is not running', inline });
      return { committed: false };
    }
  } else if (inline && !isCurrentDispatch(chain.run.snapshot, d.key, d.attempt)) {
    chain.report({ dispatch: d, outcome: 'skipped', reason: 'stale dispatch', inline });
    return { committed: false };
  }
  const input = materialize(d.input, await valuesFor(chain, d));
  if (!(await claimFor(chain, d))) {
    chain.report({ dispatch: d, outcome: 'skipped', reason: 'lease lost before running', inline });
    return { committed: false, lost: true };
  }
  const startedAt = now();
  const outcome = await executeTask({
    flow,
    dispatch: d,
    input,
    clock: deps.taskClock ?? deps.clock,
    secrets: deps.secrets,
    signal: lease,
  });
  const durationMs = now() - startedAt;
  const waited = !inline && d.sentAt !== undefined ? { queueWaitMs: Math.max(0, startedAt - d.sentAt) } : {};
  chain.timing = { startedAt, durationMs, ...waited };
  deps.faults?.('executed', d);
  if (lease.aborted) {
    // The lease was lost mid-task (a cancel revoked it, or another worker took over):
    // this attempt's outcome belongs to no one, and commits nothing.
    chain.report({ dispatch: d, outcome: 'skipped', reason: 'lease lost while running', inline });
    return { committed: false, lost: true };
  }
  await checkFenceAfterStall(chain);
  const laneStep = inLane(flow, chain.run, d);
  // A route's key or a loop's again/done: the first output put decides where the child goes, whoever ran it.
  const put =
    outcome.ok && laneStep && decidesLanePath(flow, d.qid) ? await putOutput(chain, d, outcome.value, true) : undefined;
  const value = put ? put.value : outcome.ok ? outcome.value : undefined;
  const after = outcome.ok && laneStep ? laneNextAfter(flow, d, value) : undefined;
  if (after && after.kind !== 'joins') return finishLaneItem(chain, d, { value, put }, after, inline);
  // A step in its lane that joins the frontier (it failed, or the next step is not a task).
  if (laneStep && (await laneChildPassed(deps.store, flow, chain.run, d, outcome.ok ? 'later' : 'own'))) {
    chain.report({
      dispatch: d,
      outcome: 'skipped',
      reason: 'stale: its map item or fork branch went past this step',
      inline,
    });
    return { committed: false };
  }
  if (!outcome.ok && laneStep) {
    const backoffMs = laneRetryBackoff(flow, d, outcome.error);
    if (backoffMs !== undefined) return retryInLane(chain, d, outcome.error, backoffMs, inline);
  }
  if (laneStep) chain.run = await joinGroupOf(deps, flow, chain.run, d);
  const meta = { worker: deps.workerId, startedAt };
  const lane = laneOfTask(
    flow,
    chain.run.snapshot,
    d.qid,
    chain.run.snapshot.tasks[d.key]?.idx ?? [],
    factsOf(chain.run),
  );
  const pickNext = chainPicker(chain);
  if (!outcome.ok) await deadLetter(deps, flow, chain.run, d, outcome.error);
  const r: Commit = outcome.ok
    ? await completeTask(deps.store, flow, chain.run, d, value, {
        now,
        meta,
        chain: pickNext,
        beforeFailure: (error) => deadLetter(deps, flow, chain.run, d, error),
        onValueStored: () => deps.faults?.('stored', d),
        ...joiningLane(flow, chain.run, d),
      })
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
            ...joiningLane(flow, chain.run, d),
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
  const dispatches = dispatchesOf(r.effects);
  let chained = r.chained;
  // A child's last step that had joined the frontier is counted like one in its lane.
  const end = outcome.ok && lane ? laneNextAfter(flow, d, value) : undefined;
  const counted =
    end?.kind === 'end' && lane
      ? await endChild(
          deps.store,
          flow,
          chain.run,
          { ...lane, key: d.key, created: r.valueCreated === true, result: end.result },
          { now, ...(chained ? {} : { chain: pickNext }) },
        )
      : undefined;
  if (counted) {
    chain.run = counted.run;
    chained ??= counted.chained;
    dispatches.push(...(counted.next ? [counted.next] : []), ...dispatchesOf(counted.effects));
  }
  const next = chained ? dispatches.find((x) => x.key === chained?.key) : undefined;
  const queued = dispatches.filter((x) => x !== next);
  if (queued.length > 0) await deps.queue.send(queued);
  deps.faults?.('dispatched', d);
  chain.report({ dispatch: d, outcome: outcome.ok ? 'completed' : 'failed', inline });
  return { committed: true, ...(next ? { next } : {}) };
}

/** A report of the chain with the run's status and the step's timing. */
function withRun(chain: Chain, r: TaskReport): TaskReport {
  const { status, createdAt } = chain.run.snapshot;
  const t = chain.timing;
  const timing = t ? { timing: { ...t, stepMs: Math.max(0, chain.deps.clock.now() - t.startedAt) } } : {};
  return { ...r, run: { status, createdAt }, ...timing };
}

/** Whether a dispatch is a step of a child running in its lane: its parent still runs in lanes, and it has not joined the frontier. */
function inLane(flow: AnyFlow, run: RunState, d: Dispatch): boolean {
  const s = run.snapshot;
  return (
    d.lane !== undefined &&
    laneGroupIn(flow, s, d.lane.parent, factsOf(run)) !== undefined &&
    !Object.hasOwn(s.tasks, d.key)
  );
}

/**
 * Whether the child (map item, fork branch) of a step in its lane has gone
 * past it: a step after it (`later`), or it too (`own`), has its output
 * stored. Such a step is a late duplicate: it must not make the child join
 * the frontier again and run its later steps twice. A step that succeeded
 * asks about later steps only (its own output may be there from an earlier
 * run whose commit was lost); one that failed or is held, about its own too.
 */
async function laneChildPassed(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  d: Dispatch,
  from: 'own' | 'later',
): Promise<boolean> {
  const g = d.lane ? laneGroupIn(flow, run.snapshot, d.lane.parent, factsOf(run)) : undefined;
  if (!g || !d.lane) return false;
  const steps = await resolvedLaneSteps(store, flow, d.instanceId, g, d.lane.item);
  const at = steps.findIndex((x) => x.key === d.key);
  return at >= 0 && passedFrom(store, d.instanceId, steps, from === 'own' ? at : at + 1);
}

/**
 * Before a step of a child of a fork or map run in a lane (see `laneFork`,
 * `laneMap`) commits to the run's journal: that group joins the frontier
 * (see `joinLaneGroup`), whose reducer knows only groups of the frontier.
 * The children it sends again find the outputs of what they already ran.
 */
async function joinGroupOf(deps: WorkerDeps, flow: AnyFlow, run: RunState, d: Dispatch): Promise<RunState> {
  const g = d.lane ? laneGroupIn(flow, run.snapshot, d.lane.parent, factsOf(run)) : undefined;
  if (!g?.outer) return run;
  const joined = await joinLaneGroup(deps.store, flow, run, g, { now: () => deps.clock.now() });
  const sent = dispatchesOf(joined.effects);
  if (sent.length > 0) await deps.queue.send(sent);
  return joined.run;
}

/** The `lane` of an event that makes a step in its lane join the frontier; nothing for other dispatches. */
function joiningLane(flow: AnyFlow, run: RunState, d: Dispatch): { lane?: LaneItem } {
  const g = d.lane && inLane(flow, run, d) ? laneGroupIn(flow, run.snapshot, d.lane.parent, factsOf(run)) : undefined;
  const item = g ? laneItemOf(flow, d, g) : undefined;
  return item ? { lane: item } : {};
}

/** Chooses, from a commit's effects, the successor this chain runs inline (recorded with the commit). */
function chainPicker(chain: Chain): (effects: readonly Effect[]) => ChainStep | undefined {
  return (effects) => {
    const own = effects.filter((e) => e.type !== 'dispatch' || !startsOwnChain(chain.flow, e.dispatch));
    const next = inlineCandidate(chain, own);
    return next ? { key: next.key, claim: chain.claim.taskKey } : undefined;
  };
}

/**
 * The commit of a step of a child in its lane that succeeded (see
 * `runtime/lanes.ts`): its output, put on condition that it is absent; for
 * a step before a delay, the delay's lane timer (the child parks on it);
 * for another step before the child's last, the next step follows, inline if it can;
 * for its last, the parent's counter (only by the writer whose put created
 * the result). The next child of a map's window, or what follows the parent
 * on its last child, may run inline.
 */
async function finishLaneItem(
  chain: Chain,
  d: Dispatch,
  output: { readonly value: unknown; readonly put?: PutOutput | undefined },
  after: Exclude<LaneNext, { kind: 'joins' }>,
  inline: boolean,
): Promise<StepResult> {
  const { deps, flow } = chain;
  const lane = d.lane as NonNullable<Dispatch['lane']>;
  const id = outputId(d.key);
  // What follows reads the first put's value: the next step, or the child's result.
  const readBack = after.kind === 'step' || after.kind === 'end';
  const { created, value } = output.put ?? (await putOutput(chain, d, output.value, readBack));
  deps.faults?.('checkpointed', d);
  const g = laneGroupIn(flow, chain.run.snapshot, lane.parent, factsOf(chain.run));
  if (!g) throw new Error(`'${lane.parent}' does not run in lanes`);
  if (after.kind === 'group') {
    // A fork or map run in the lane: its children start, a group of lanes of its own; the child waits in it.
    const started = await startLaneGroup(deps.store, flow, chain.run, after.group, deps.clock.now());
    chain.run = started.run;
    await deps.queue.send(started.dispatches);
    deps.faults?.('dispatched', d);
    chain.report({ dispatch: d, outcome: 'completed', inline });
    return { committed: true };
  }
  if (after.kind === 'timer') {
    const delay = after.delay;
    // The child parks on its lane timer; the reaper sends it on when it is due (see `fireLaneTimers`).
    const timer = laneTimer(flow, g, lane.item, delay.qid, deps.clock.now());
    if ((await deps.store.putTimer(d.instanceId, timer)) === 'exists') {
      // A duplicate of this step parked the child first: this run of it changed nothing.
      chain.report({ dispatch: d, outcome: 'skipped', reason: 'stale: its child already parked on the delay', inline });
      return { committed: false };
    }
    deps.faults?.('dispatched', d);
    chain.report({ dispatch: d, outcome: 'completed', inline });
    return { committed: true };
  }
  if (after.kind === 'signal') {
    // The child parks in its lane on the signal wait; a signal given to it sends it on (see `lane-signals.ts`).
    const parked = await waitInLane(deps.store, flow, chain.run, g, lane.item, after.wait.qid, {
      now: () => deps.clock.now(),
    });
    const sent = [...parked.dispatches, ...dispatchesOf(parked.effects)];
    if (sent.length > 0) await deps.queue.send(sent);
    if (!parked.parked) {
      chain.report({
        dispatch: d,
        outcome: 'skipped',
        reason: 'stale: its child already waits for the signal',
        inline,
      });
      return { committed: false };
    }
    deps.faults?.('dispatched', d);
    chain.report({ dispatch: d, outcome: 'completed', inline });
    return { committed: true };
  }
  if (after.kind === 'step') {
    // A step before the child's last: its output, put if absent, is the next step's input (the first put wins).
    chain.run.values.set(id, value);
    const { kind: _, ...step } = after;
    const candidate = laneDispatch(flow, chain.run.snapshot, g, lane.item, step);
    const next = inlineCandidate(chain, [{ type: 'dispatch', dispatch: candidate }]) ? candidate : undefined;
    if (!next) await deps.queue.send([candidate]);
    deps.faults?.('dispatched', d);
    chain.report({ dispatch: d, outcome: 'completed', inline });
    return { committed: true, ...(next ? { next } : {}) };
  }
  chain.run.values.set(id, value);
  const counted = await endChild(
    deps.store,
    flow,
    chain.run,
    { ...lane, key: d.key, created, result: after.result },
    { now: () => deps.clock.now(), chain: chainPicker(chain) },
  );
  if (!counted) {
    chain.report({ dispatch: d, outcome: 'skipped', reason: 'its result was already committed', inline });
    return { committed: false };
  }
  chain.run = counted.run;
  const candidates = [...(counted.next ? [counted.next] : []), ...dispatchesOf(counted.effects)];
  const chainedKey = counted.chained?.key;
  // The next child of the window is not in the frontier: no commit records it, so it may run inline as it is.
  const next =
    chainedKey !== undefined
      ? candidates.find((x) => x.key === chainedKey)
      : counted.next && inlineCandidate(chain, [{ type: 'dispatch', dispatch: counted.next }])
        ? counted.next
        : undefined;
  const queued = candidates.filter((x) => x !== next);
  if (queued.length > 0) await deps.queue.send(queued);
  deps.faults?.('dispatched', d);
  chain.report({ dispatch: d, outcome: 'completed', inline });
  return { committed: true, ...(next ? { next } : {}) };
}

/** What a put of a step's output by its id left: whether it created it, and the value stored (the first put's). */
interface PutOutput {
  readonly created: boolean;
  readonly value: unknown;
}

/**
 * Puts the output of step `d` by its id if absent. A put that finds one
 * there reads it back when `readBack` (the first put wins: what follows
 * reads that one), else leaves `value` undefined.
 */
async function putOutput(chain: Chain, d: Dispatch, value: unknown, readBack: boolean): Promise<PutOutput> {
  const id = outputId(d.key);
  if ((await chain.deps.store.putValue(d.instanceId, id, value)) === 'created') return { created: true, value };
  return {
    created: false,
    value: readBack ? (await chain.deps.store.getValues(d.instanceId, [id])).get(id) : undefined,
  };
}

/**
 * The backoff before the next attempt of a failed step of a child in its
 * lane, by the reducer's rule (`retryBackoff`), or `undefined` when the
 * failure is final: then it joins the frontier, whose commit fails the run.
 */
function laneRetryBackoff(flow: AnyFlow, d: Dispatch, error: SerializedError): number | undefined {
  const node = compileFlow(flow).nodes.get(d.qid);
  if (!node) return undefined;
  // A child's step starts its budget at its first attempt: one retried in the frontier went back with a new step.
  return retryBackoff(resolveRetry(taskOf(node).options.retry), {
    instanceId: d.instanceId,
    key: d.key,
    attempt: d.attempt,
    used: d.attempt,
    retryable: error.retryable,
  });
}

/**
 * A failed step of a child in its lane that is retried (see `runtime/lanes.ts`):
 * the backoff's lane timer, put if absent under `<key>#<next attempt>`, with
 * the failure; the reaper dispatches the next attempt in the lane when it is
 * due. Nothing is committed to the run's journal. A writer that finds the
 * timer there (a duplicate of this attempt failed first) changes nothing.
 */
async function retryInLane(
  chain: Chain,
  d: Dispatch,
  error: SerializedError,
  backoffMs: number,
  inline: boolean,
): Promise<StepResult> {
  const { deps } = chain;
  const lane = d.lane as NonNullable<Dispatch['lane']>;
  const now = deps.clock.now();
  const attempt = d.attempt + 1;
  const put = await deps.store.putTimer(d.instanceId, {
    id: `${d.key}#${attempt}`,
    dueAt: now + backoffMs,
    parent: lane.parent,
    item: lane.item,
    retry: {
      task: d.key,
      attempt,
      failedAt: now,
      worker: deps.workerId,
      error: { name: truncateText(error.name, 200), message: truncateText(error.message) },
    },
  });
  if (put === 'exists') {
    chain.report({
      dispatch: d,
      outcome: 'skipped',
      reason: 'stale: a duplicate of this attempt failed first',
      inline,
    });
    return { committed: false };
  }
  deps.faults?.('checkpointed', d);
  chain.report({ dispatch: d, outcome: 'failed', inline });
  return { committed: true };
}

/** The first dispatch of this pool that fits in the invocation's remaining time. */
function inlineCandidate(chain: Chain, effects: readonly Effect[]): Dispatch | undefined {
  if (chain.deps.inline === false) return undefined;
  return dispatchesOf(effects).find(
    (x) => x.pool === chain.deps.pool && fitsInline(chain.flow, x, chain.remainingMs()),
  );
}

/** The values a dispatch's input reads: from what the chain has seen, the rest from the store. */
function valuesFor(chain: Chain, d: Dispatch): Promise<ReadonlyMap<string, unknown>> {
  return readValues(chain.deps.store, chain.run, d.input);
}

/**
 * Margin between a task's timeout and the end of a reservation it runs
 * under without starting it (time for its commit): a second, or a quarter
 * of a shorter reservation.
 */
const startMarginMs = (reserveTtlMs: number) => Math.min(1_000, Math.floor(reserveTtlMs / 4));

/**
 * Makes the chain's claim cover task `d`: a reservation covers a task whose
 * timeout, with a margin, ends before the reservation does; else the claim
 * is started first (Reserved -> Executing, with a lease the heartbeat
 * renews). False when the claim was lost (its reservation expired and
 * another worker took the task, or a cancel revoked it): `d` must not run.
 */
async function claimFor(chain: Chain, d: Dispatch): Promise<boolean> {
  if (chain.claim.state === 'executing') return true;
  const node = compileFlow(chain.flow).nodes.get(d.qid);
  const ends = chain.deps.clock.now() + (node ? taskTimeoutMs(taskOf(node)) : Number.POSITIVE_INFINITY);
  const margin = startMarginMs(chain.deps.reserveTtlMs ?? WORKER_DEFAULTS.reserveTtlMs);
  if (ends + margin <= chain.claim.expiresAt) return true;
  try {
    await startClaim(chain);
    return true;
  } catch (e) {
    if (e instanceof ClaimLostError) return false;
    throw e;
  }
}

/** Starts the chain's claim, once (fenced). @throws {ClaimLostError} */
function startClaim(chain: Chain): Promise<void> {
  chain.starting ??= (async () => {
    const { deps } = chain;
    chain.claim = await deps.claims.start(chain.claim, deps.clock.now(), chain.leaseMs);
  })().finally(() => {
    chain.starting = undefined;
  });
  return chain.starting;
}

/**
 * A worker that went quiet for longer than a heartbeat (a stall, a
 * partition), or past its reservation, may have lost its claim: renew it
 * (start it, for a reservation) before committing, so a takeover is
 * noticed. Correctness does not depend on it (the journal's conditional put
 * does); it spares a needless commit race.
 */
async function checkFenceAfterStall(chain: Chain): Promise<void> {
  const { deps, claim } = chain;
  const now = deps.clock.now();
  if (claim.state === 'reserved') {
    if (now >= claim.expiresAt) await startClaim(chain);
    return;
  }
  const last = claim.lastHeartbeat ?? claim.startedAt ?? 0;
  if (now - last > heartbeatMs(deps, chain.leaseMs)) {
    chain.claim = await deps.claims.heartbeat(claim, now, chain.leaseMs);
  }
}

/**
 * Records the task in the dead-letter store when its failure will fail the
 * run (retries exhausted, or terminal), as a dry run of the reducer on the
 * state the commit starts from says. The record is put before the failure
 * is committed: a crash between the two leaves a record whose run did not
 * fail (it reads as resolved), never a failed run without its record. A put
 * that fails throws, so the failure is not committed and the task runs again.
 */
async function deadLetter(deps: WorkerDeps, flow: AnyFlow, run: RunState, d: Dispatch, error: SerializedError) {
  if (!deps.deadLetters) return;
  const now = deps.clock.now();
  const s = run.snapshot;
  const dry = reduce(
    flow,
    s,
    { type: 'task-failed', key: d.key, attempt: d.attempt, error, ...joiningLane(flow, run, d) },
    now,
  );
  const fail = dry.effects.find((e) => e.type === 'fail');
  if (fail?.type !== 'fail' || fail.error.taskKey !== d.key) return;
  await putEngineDeadLetter(deps.deadLetters, deps.store, d, fail.error, { at: now, worker: deps.workerId });
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
 * Keeps the chain's claim while the chain runs: a reservation is started at
 * half its time (the chain outlived what a reservation covers), a lease is
 * renewed every heartbeat period. When this finds the claim lost (revoked
 * by a cancel, or taken over), the returned signal aborts the running task.
 */
function startHeartbeat(chain: Chain): { readonly signal: AbortSignal; stop(): void } {
  const { deps } = chain;
  const every = heartbeatMs(deps, chain.leaseMs);
  const stopper = new AbortController();
  const lease = new AbortController();
  const loop = async () => {
    while (!stopper.signal.aborted) {
      // Half of what is left of a reservation (a tenth of a beat at least: a start that failed transiently is tried again).
      const left = chain.claim.expiresAt - deps.clock.now();
      const wait = chain.claim.state === 'reserved' ? Math.max(Math.floor(every / 10), Math.floor(left / 2)) : every;
      try {
        await (deps.taskClock ?? deps.clock).sleep(wait, stopper.signal);
      } catch {
        return;
      }
      try {
        if (chain.claim.state === 'reserved') await startClaim(chain);
        else chain.claim = await deps.claims.heartbeat(chain.claim, deps.clock.now(), chain.leaseMs);
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
