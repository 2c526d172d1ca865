import {
  type CompiledFlow,
  type CompiledNode,
  compileFlow,
  fillKey,
  flatLast,
  iterKey,
  iterOf,
  laneNext,
  taskOf,
} from './compile.ts';
import { type AnyFlow, DEFAULT_SIGNAL_BUFFER } from './definition.ts';
import { dispatchEffect } from './dispatch.ts';
import { toMillis } from './duration.ts';
import { RESERVATION_LAPSES, TerminalError, WORKER_LOST } from './errors.ts';
import {
  backToLaneAfter,
  childInFrontier,
  childOf,
  firstFork,
  type LaneGroup,
  laneCheckMs,
  laneDispatch,
  laneGroupOf,
  laneGroups,
  laneOf,
  laneOfTask,
  laneResults,
  laneStart,
  laneWaitOf,
  startsParked,
} from './lanes.ts';
import { eachId, outputId, type Ref } from './refs.ts';
import { resolveRetry, retryBackoff } from './retry.ts';
import type {
  ChainStep,
  Control,
  Effect,
  ForkState,
  LaneItem,
  LaneSignalTarget,
  Lanes,
  MapState,
  Reduction,
  RunError,
  RunEvent,
  Snapshot,
  TaskActivity,
  WaitActivity,
} from './snapshot.ts';
import { FINAL_STATUSES, MAX_RECENT_DELIVERIES } from './snapshot.ts';

/**
 * The pure reducer: `(snapshot, event, now) -> { snapshot, effects }`.
 *
 * Invariants:
 * - A task key enters the frontier once and leaves it once: a completion,
 *   failure or timer for a key not in the frontier is stale and changes
 *   nothing. So applying the same event twice is the same as applying it once.
 * - A completion or failure counts only for the attempt the frontier is at
 *   ({@link isCurrentAttempt}): while attempt 2 waits out its backoff, a late
 *   completion of attempt 1 is stale (attempt 1 was already judged failed),
 *   and so is a completion of attempt 1 once attempt 2 was dispatched.
 * - While PAUSED, tasks that become ready are held (`ready`) instead of
 *   dispatched; `resume` dispatches them.
 * - A final run (COMPLETED, FAILED, CANCELLED) ignores every event.
 * - `version` grows by one per change; an unchanged snapshot is returned as is.
 */

/** A new instance's snapshot, before the `start` event. */
/** Default of `Snapshot.redispatchAfterMs`. */
export const DEFAULT_REDISPATCH_AFTER_MS = 30_000;

export function initSnapshot(
  flow: AnyFlow,
  instanceId: string,
  inputId: string,
  now: number,
  options: { readonly redispatchAfterMs?: number; readonly retentionMs?: number } = {},
): Snapshot {
  const { redispatchAfterMs = DEFAULT_REDISPATCH_AFTER_MS, retentionMs } = options;
  if (retentionMs !== undefined && !(Number.isSafeInteger(retentionMs) && retentionMs > 0)) {
    throw new RangeError(`retentionMs must be a positive integer of milliseconds, got ${retentionMs}`);
  }
  return {
    instanceId,
    inputId,
    redispatchAfterMs,
    ...(retentionMs === undefined ? {} : { retentionMs }),
    workflow: flow.name,
    defHash: flow.hash,
    status: 'RUNNING',
    version: 0,
    createdAt: now,
    updatedAt: now,
    tasks: {},
    waits: {},
    forks: {},
    maps: {},
    signals: {},
    ...(flow.options.deadline === undefined ? {} : { deadlineAt: now + toMillis(flow.options.deadline) }),
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Draft {
  status: Snapshot['status'];
  steps: number;
  tasks: Record<string, TaskActivity>;
  waits: Record<string, WaitActivity>;
  forks: Record<string, ForkState>;
  maps: Record<string, MapState>;
  signals: Record<string, string[]>;
  deliveries?: readonly string[];
  laneSignals?: { served: Record<string, number>; given: Record<string, string | null> };
  output?: Ref;
  error?: RunError;
}

/** Applies one event. Pure: same inputs, same result. */
export function reduce(flow: AnyFlow, snapshot: Snapshot, event: RunEvent, now: number): Reduction {
  // A run fenced for its purge takes nothing more: whatever raced the fence lost.
  if (snapshot.purging) return { snapshot, effects: [], changed: false };
  if (event.type === 'purge') return fencePurge(snapshot, now);
  const reopens = snapshot.status === 'FAILED' && (event.type === 'retry' || event.type === 'skip');
  if (FINAL_STATUSES.has(snapshot.status) && !reopens) return { snapshot, effects: [], changed: false };
  const r = new Reducer(compileFlow(flow), snapshot, now);
  const changed = r.apply(event);
  if (!changed) return { snapshot, effects: [], changed: false };
  return { snapshot: r.result(), effects: r.effects, changed: true };
}

class Reducer {
  readonly effects: Effect[] = [];
  private readonly d: Draft;

  constructor(
    private readonly cf: CompiledFlow,
    private readonly base: Snapshot,
    private readonly now: number,
  ) {
    this.d = {
      status: base.status,
      steps: base.steps ?? 0,
      tasks: { ...base.tasks },
      waits: { ...base.waits },
      forks: { ...base.forks },
      maps: { ...base.maps },
      signals: Object.fromEntries(Object.entries(base.signals).map(([k, v]) => [k, [...v]])),
      ...(base.deliveries ? { deliveries: base.deliveries } : {}),
      ...(base.laneSignals
        ? { laneSignals: { served: { ...base.laneSignals.served }, given: { ...base.laneSignals.given } } }
        : {}),
      ...(base.output ? { output: base.output } : {}),
      ...(base.error ? { error: base.error } : {}),
    };
  }

  result(): Snapshot {
    const next: Mutable<Snapshot> = {
      ...this.base,
      status: this.d.status,
      version: this.base.version + 1,
      updatedAt: this.now,
      tasks: this.d.tasks,
      waits: this.d.waits,
      forks: this.d.forks,
      maps: this.d.maps,
      signals: this.d.signals,
    };
    if (this.d.deliveries) next.deliveries = this.d.deliveries;
    if (this.d.laneSignals) next.laneSignals = this.d.laneSignals;
    if (this.d.steps > 0) next.steps = this.d.steps;
    delete next.dueAt;
    delete next.error;
    if (this.d.output) next.output = this.d.output;
    if (this.d.error) next.error = this.d.error;
    const live = this.d.status === 'RUNNING' || this.d.status === 'PAUSED';
    const due = live
      ? nextDue(this.d, this.base.redispatchAfterMs, this.base.deadlineAt)
      : retentionEnd(this.base.retentionMs, this.now);
    if (due !== undefined) next.dueAt = due;
    return next;
  }

  private node(qid: string): CompiledNode {
    const n = this.cf.nodes.get(qid);
    if (!n) throw new Error(`flow '${this.cf.flow.name}' has no step '${qid}'`);
    return n;
  }

  apply(e: RunEvent): boolean {
    switch (e.type) {
      case 'start':
        if (this.base.version !== 0) return false;
        if (this.base.deadlineAt !== undefined)
          this.effects.push({ type: 'timer', key: DEADLINE_KEY, dueAt: this.base.deadlineAt });
        this.enter(this.cf.first, [], { v: this.base.inputId });
        return true;
      case 'purge':
        return false; // handled by `reduce` before a reducer is made
      case 'retry':
        return this.retry(e.key);
      case 'skip':
        return this.skip(e.key, e.control ?? {}, e.valueId);
      case 'task-completed': {
        if (e.lane) this.joinFrontier(e.key, e.attempt, e.lane);
        if (!isCurrentAttempt(this.d.tasks[e.key], e.attempt)) return false;
        if (!this.completed(e.key, e.control ?? {}, e.valueId)) return false;
        if (e.chain) this.d.tasks = withChain(this.d.tasks, e.chain);
        return true;
      }
      case 'task-failed':
        if (e.lane) this.joinFrontier(e.key, e.attempt, e.lane);
        return this.failed(e.key, e.attempt, e.error);
      case 'lanes-joined': {
        const g = laneGroupOf(this.d, e.key);
        if (!g) return false;
        // Every child has its result. A child's last step that completed in the frontier may
        // have had its result put and counted (or recounted by the reaper) before its commit:
        // it is done, and must not stay in the frontier to be dispatched again.
        for (const [k, t] of Object.entries(this.d.tasks))
          if (childOf(this.cf.flow, g, t.qid, t.idx) !== undefined) delete this.d.tasks[k];
        for (const [k, w] of Object.entries(this.d.waits))
          if (childOf(this.cf.flow, g, w.qid, w.idx) !== undefined) delete this.d.waits[k];
        const { qid, idx } = g.lanes;
        const result = laneResults(this.cf.flow, g);
        if (this.node(qid).step.kind === 'map') {
          delete this.d.maps[e.key];
          this.advance(qid, idx, result);
        } else {
          delete this.d.forks[e.key];
          this.join(e.key, qid, idx, result);
        }
        if (e.chain) this.d.tasks = withChain(this.d.tasks, e.chain);
        return true;
      }
      case 'lanes-checked': {
        const g = laneGroupOf(this.d, e.key);
        if (!g || g.lanes.checkAt > this.now) return false;
        const sent = e.restarted ? { sentAt: this.now } : {};
        this.setLanes(e.key, { ...g.lanes, checkAt: this.now + this.checkMs(g.lanes.qid), seen: e.done, ...sent });
        return true;
      }
      case 'lanes-started': {
        const g = laneGroupOf(this.d, e.key);
        if (!g) return false;
        // A child that starts with a delay (see `startsParked`), or with a fork run in its lane that joins the
        // frontier (see `joinLaneFork`), starts there.
        const started = e.items.filter(
          (i) =>
            i < g.count &&
            (startsParked(this.cf.flow, g, i) || firstFork(this.cf.flow, g, i) !== undefined) &&
            this.startInFrontier(g, i),
        );
        return started.length > 0;
      }
      case 'timer-fired':
        return this.timer(e.key);
      case 'redispatch': {
        const t = this.d.tasks[e.key];
        if (t?.state !== 'dispatched' || this.d.status !== 'RUNNING') return false;
        if (e.attempt !== undefined && e.attempt !== t.attempt) return false;
        switch (e.reason ?? 'lost') {
          case 'lease-expired':
            // Its worker died mid-attempt: that attempt counts, and the next
            // follows the retry policy (so a task that kills every worker ends).
            return this.failed(e.key, t.attempt, WORKER_LOST.lease);
          case 'reservation-expired': {
            // Its worker died holding a reservation. A chain of short tasks
            // never starts its claim (see `WorkerDeps.reserveTtlMs`), so the
            // attempt may have run: the lapses of one attempt are counted,
            // and the RESERVATION_LAPSES-th fails it as a lost worker would,
            // so a task that kills every worker that runs it still ends.
            const lapses = (t.lapses ?? 0) + 1;
            if (lapses >= RESERVATION_LAPSES) return this.failed(e.key, t.attempt, WORKER_LOST.reservations);
            this.dispatch(e.key, { ...t, lapses });
            return true;
          }
          case 'redrive':
            this.dispatch(e.key, t);
            return true;
          default:
            if (checkDueAt(t, this.base.redispatchAfterMs) > this.now) return false;
            // The dispatch was lost before any worker started it: same attempt, new generation.
            this.dispatch(e.key, t);
            return true;
        }
      }
      case 'dispatch-checked': {
        const t = this.d.tasks[e.key];
        if (t?.state !== 'dispatched' || checkDueAt(t, this.base.redispatchAfterMs) > this.now) return false;
        this.d.tasks[e.key] = { ...t, checkedAt: this.now };
        return true;
      }
      case 'task-held': {
        if (e.lane) this.joinFrontier(e.key, e.attempt, e.lane);
        const t = this.d.tasks[e.key];
        if (this.d.status !== 'PAUSED' || t?.state !== 'dispatched' || t.attempt !== e.attempt) return false;
        this.d.tasks[e.key] = withoutDispatch({ ...t, state: 'ready' });
        return true;
      }
      case 'signal':
        return this.signal(e.name, e.valueId, e.deliveryId, e.toLane, e.bound);
      case 'signal-taken': {
        const l = this.laneSignals();
        if ((l.served[e.name] ?? 0) !== e.head || e.served <= e.head) return false;
        if (e.wait !== undefined) {
          const buffered = Object.hasOwn(this.d.signals, e.name) ? (this.d.signals[e.name] as string[]) : [];
          const valueId = buffered[0];
          if (valueId === undefined || !this.laneWaitOpen(e.wait, e.name)) return false;
          if (buffered.length === 1) delete this.d.signals[e.name];
          else this.d.signals[e.name] = buffered.slice(1);
          l.given[e.wait] = valueId;
        }
        l.served[e.name] = e.served;
        this.unbind(e.bound);
        return true;
      }
      case 'signal-timed-out': {
        if (!this.laneWaitOpen(e.key, e.name)) return false;
        const l = this.laneSignals();
        const wait = laneWaitOf(this.cf.flow, e.key);
        if (wait?.onTimeout === 'continue') l.given[e.key] = null;
        else
          this.failRun({
            name: 'SignalTimeoutError',
            message: `no signal '${e.name}' within the timeout of '${e.key}'`,
            taskKey: e.key,
          });
        this.unbind(e.bound);
        return true;
      }
      case 'cancel': {
        const abort = this.abortRunning();
        this.clearFrontier();
        this.d.status = 'CANCELLED';
        this.d.error = { name: 'Cancelled', message: e.reason ?? 'cancelled' };
        if (abort) this.effects.push(abort);
        return true;
      }
      case 'pause':
        if (this.d.status !== 'RUNNING') return false;
        this.d.status = 'PAUSED';
        return true;
      case 'resume': {
        if (this.d.status !== 'PAUSED') return false;
        this.d.status = 'RUNNING';
        for (const [key, t] of Object.entries(this.d.tasks)) {
          if (t.state === 'ready') this.dispatch(key, t);
        }
        return true;
      }
    }
  }

  /** A step of a child in its lane joins the frontier (dispatched at `attempt`), if its parent still runs in lanes. */
  private joinFrontier(key: string, attempt: number, item: LaneItem): void {
    const g = laneGroupOf(this.d, item.parent);
    if (Object.hasOwn(this.d.tasks, key) || !g) return;
    // A child goes on in the frontier from one step only: a late report of a step it already passed
    // (a duplicate message run again) changes nothing.
    const child = childOf(this.cf.flow, g, item.qid, item.idx);
    if (child === undefined) return;
    // Its first delay, where its group parked it on joining the frontier (see `joinLaneGroup`): it had gone past it in
    // its lane, and this later step takes its place.
    const head = laneOf(this.cf.flow, g, child).head;
    for (const [k, w] of Object.entries(this.d.waits))
      if (w.kind === 'delay' && w.qid === head && item.qid !== head && childOf(this.cf.flow, g, w.qid, w.idx) === child)
        delete this.d.waits[k];
    if (childInFrontier(this.cf.flow, this.d, g, child)) return;
    // A loop's iteration joins as that iteration (its key says which).
    const iter = this.node(item.qid).step.kind === 'loop' ? { iter: iterOf(key) } : {};
    this.d.tasks[key] = { qid: item.qid, idx: item.idx, input: item.input, attempt, state: 'dispatched', ...iter };
  }

  /**
   * A step of a child run in lanes ended in the frontier, and the child
   * goes back to its lane after it (see `backToLaneAfter`: a task, or a
   * delay right after a task, followed by a task): the next task is
   * dispatched in the lane on the step's output, stored by its id. The
   * group's next look is put off by a whole check period, so the reaper
   * does not take a child just back in its lane for a stalled one.
   *
   * @returns whether it went back.
   */
  private backToLane(node: CompiledNode, idx: readonly number[], output: Ref): boolean {
    if (this.d.status !== 'RUNNING' || !backToLaneAfter(this.cf.flow, node.qid)) return false;
    const lane = laneOfTask(this.cf.flow, this.d, node.qid, idx);
    const g = lane ? laneGroupOf(this.d, lane.parent) : undefined;
    // The step that ended, inside the child flow `node` is, if it is one; and the one to run after it.
    const ended = flatLast(node.qid, this.cf.nodes);
    const next = laneNext(node.qid, this.cf.nodes);
    if (!lane || !g || !ended || !next) return false;
    // A task's output is its own, put by its id; a route's, its branch's last task's; a delay passes on its input
    // (the output of the task before it, or the child's input).
    const byId = 'v' in output && !output.at;
    if (ended.step.kind === 'task' && !(byId && output.v === outputId(fillKey(ended.qid, idx)))) return false;
    if (ended.step.kind === 'route' && !byId) return false;
    // A loop's output is its last iteration's value, in the iteration's output put by its id.
    if (ended.step.kind === 'loop' && !('v' in output && output.at?.length === 1 && output.at[0] === 'value'))
      return false;
    const dispatch = laneDispatch(this.cf.flow, this.base, g, lane.item, { qid: next.qid, input: output });
    this.effects.push({ type: 'dispatch', dispatch });
    this.setLanes(g.key, { ...g.lanes, checkAt: Math.max(g.lanes.checkAt, this.now + this.checkMs(g.lanes.qid)) });
    return true;
  }

  /** Replaces the lanes of the map or fork `key` run in lanes. */
  private setLanes(key: string, lanes: Lanes): void {
    const m = this.d.maps[key];
    if (m?.lanes) this.d.maps[key] = { ...m, lanes };
    const f = this.d.forks[key];
    if (f?.lanes) this.d.forks[key] = { ...f, lanes };
  }

  /** How long until the reaper looks at a map or fork run in lanes again (see `laneCheckMs`). */
  private checkMs(qid: string): number {
    return laneCheckMs(this.cf.flow, qid, this.base.redispatchAfterMs);
  }

  /**
   * Starts the children of a map or fork in lanes (see `Lanes`): the first
   * `window` of them are dispatched; the rest start as children end.
   */
  private startLanes(
    key: string,
    qid: string,
    idx: readonly number[],
    input: Ref,
    count: number,
    window: number,
  ): Lanes {
    const lanes: Lanes = { qid, idx, input, window, checkAt: this.now + this.checkMs(qid), seen: 0, sentAt: this.now };
    const g = { key, count, lanes };
    for (let i = 0; i < window; i++) {
      if (startsParked(this.cf.flow, g, i)) this.startInFrontier(g, i);
      else
        for (const dispatch of laneStart(this.cf.flow, this.base, g, i))
          this.effects.push({ type: 'dispatch', dispatch });
    }
    return lanes;
  }

  /** Child `item` of a group in lanes starts with a delay: it waits in the frontier (see `startsParked`). */
  private startInFrontier(g: LaneGroup, item: number): boolean {
    if (childInFrontier(this.cf.flow, this.d, g, item)) return false;
    const lane = laneOf(this.cf.flow, g, item);
    this.enter(lane.head, lane.idx, lane.input);
    return true;
  }

  /** A fork's branches all ended: its join runs on their results. */
  private join(forkKey: string, qid: string, idx: readonly number[], results: Ref): void {
    this.addTask(forkKey, { qid, idx, input: results, attempt: 1, state: 'ready' });
  }

  private clearFrontier(): void {
    this.d.tasks = {};
    this.d.waits = {};
    this.d.forks = {};
    this.d.maps = {};
  }

  // ---- entering steps -------------------------------------------------

  /** Starts the step `qid` in map scope `idx` with `input`. */
  private enter(qid: string, idx: readonly number[], input: Ref): void {
    const node = this.node(qid);
    const key = fillKey(qid, idx);
    const s = node.step;
    switch (s.kind) {
      case 'task':
      case 'route':
      case 'map':
        this.addTask(key, { qid, idx, input, attempt: 1, state: 'ready' });
        return;
      case 'loop':
        this.addTask(iterKey(key, 0), { qid, idx, iter: 0, input, attempt: 1, state: 'ready' });
        return;
      case 'delay': {
        const dueAt = this.now + s.ms;
        this.d.waits[key] = { kind: 'delay', qid, idx, input, dueAt };
        this.effects.push({ type: 'timer', key, dueAt });
        return;
      }
      case 'signal': {
        const buffered = this.d.signals[s.signal];
        const valueId = buffered?.shift();
        if (buffered && buffered.length === 0) delete this.d.signals[s.signal];
        if (valueId !== undefined) {
          this.advance(qid, idx, { v: valueId });
          return;
        }
        const wait: Mutable<WaitActivity> = { kind: 'signal', qid, idx, input, signal: s.signal };
        if (s.timeoutMs !== undefined) {
          wait.dueAt = this.now + s.timeoutMs;
          this.effects.push({ type: 'timer', key, dueAt: wait.dueAt });
        }
        this.d.waits[key] = wait;
        return;
      }
      case 'fork': {
        const heads = node.branchHeads ?? [];
        const results = heads.map(() => null);
        if (node.lanes) {
          const lanes = this.startLanes(key, qid, idx, input, heads.length, heads.length);
          this.d.forks[key] = { remaining: heads.length, results, lanes };
          return;
        }
        this.d.forks[key] = { remaining: heads.length, results };
        for (const head of heads) this.enter(head, idx, input);
        return;
      }
      case 'child':
        this.enter(node.head as string, idx, input);
        return;
    }
  }

  private addTask(key: string, t: TaskActivity): void {
    this.d.tasks[key] = t;
    if (this.d.status === 'RUNNING') this.dispatch(key, t);
  }

  private dispatch(key: string, t: TaskActivity): void {
    const gen = t.state === 'dispatched' ? (t.gen ?? 1) + 1 : 1;
    const next: Mutable<TaskActivity> = { ...t, state: 'dispatched', dispatchedAt: this.now, gen };
    delete next.dueAt;
    delete next.checkedAt;
    delete next.claim;
    this.d.tasks[key] = next;
    this.effects.push(dispatchEffect(this.node(t.qid), this.base, key, next));
  }

  // ---- leaving steps --------------------------------------------------

  /** The step `qid` finished with `output`: go to its next sibling, or end its sequence. */
  private advance(qid: string, idx: readonly number[], output: Ref): void {
    if (this.d.status === 'FAILED' || this.d.status === 'CANCELLED') return;
    const node = this.node(qid);
    if (node.next !== null) {
      if (!this.backToLane(node, idx, output)) this.enter(node.next, idx, output);
      return;
    }
    const owner = node.owner;
    switch (owner.kind) {
      case 'root':
        this.d.status = 'COMPLETED';
        this.d.output = output;
        this.clearFrontier();
        this.effects.push({ type: 'complete', output });
        return;
      case 'route':
      case 'child':
        this.advance(owner.qid, idx, output);
        return;
      case 'fork': {
        const forkKey = fillKey(owner.qid, idx);
        const f = this.d.forks[forkKey];
        if (!f) return;
        // Branches in lanes are counted outside the journal (see `ForkState.lanes`).
        if (f.lanes) return;
        const results = [...f.results];
        results[owner.index] = output;
        if (f.remaining > 1) {
          this.d.forks[forkKey] = { remaining: f.remaining - 1, results };
          return;
        }
        delete this.d.forks[forkKey];
        this.join(forkKey, owner.qid, idx, { all: results as Ref[] });
        return;
      }
      case 'map': {
        const parentIdx = idx.slice(0, -1);
        const item = idx[idx.length - 1] as number;
        const mapKey = fillKey(owner.qid, parentIdx);
        const m = this.d.maps[mapKey];
        if (!m) return;
        // Items in lanes are counted outside the journal (see `MapState.lanes`).
        if (m.lanes) return;
        // An item that ended as the template says needs no record.
        const usual = m.template !== undefined && 'v' in output && !output.at && output.v === eachId(m.template, item);
        const except = usual ? m.except : { ...m.except, [item]: output };
        const done = m.done + 1;
        if (done === m.count) {
          delete this.d.maps[mapKey];
          const result: Ref =
            m.template !== undefined
              ? { each: m.template, n: m.count, ...(Object.keys(except).length > 0 ? { except } : {}) }
              : { all: Array.from({ length: m.count }, (_, i) => except[i] as Ref) };
          this.advance(owner.qid, parentIdx, result);
          return;
        }
        this.d.maps[mapKey] = { ...m, done, except, next: m.next < m.count ? m.next + 1 : m.next };
        if (m.next < m.count) this.startItem(owner.qid, parentIdx, m.items ?? outputId(mapKey), m.next);
        return;
      }
    }
  }

  private startItem(mapQid: string, parentIdx: readonly number[], items: string, i: number): void {
    const node = this.node(mapQid);
    this.enter(node.head as string, [...parentIdx, i], { v: items, at: [i] });
  }

  private completed(key: string, control: Control, valueId: string = outputId(key)): boolean {
    const t = this.d.tasks[key];
    if (!t) return false;
    delete this.d.tasks[key];
    this.d.steps++;
    const node = this.node(t.qid);
    const s = node.step;
    const out: Ref = { v: valueId };
    switch (s.kind) {
      case 'task':
      case 'fork':
        this.advance(t.qid, t.idx, out);
        return true;
      case 'route': {
        const routeKey = control.routeKey;
        const head = routeKey !== undefined ? (node.routeHeads?.[routeKey] ?? node.fallbackHead) : undefined;
        if (head === undefined) {
          this.failRun({
            name: 'RouteKeyError',
            message: `route '${key}' chose key ${JSON.stringify(routeKey)}, which has no branch and there is no default branch`,
            taskKey: key,
          });
          return true;
        }
        this.enter(head, t.idx, t.input);
        return true;
      }
      case 'map': {
        const count = control.count ?? 0;
        if (count === 0) {
          this.advance(t.qid, t.idx, { c: [] });
          return true;
        }
        const started = Math.min(count, s.maxConcurrency);
        const template = node.itemResultId ? fillKey(node.itemResultId, t.idx) : undefined;
        if (template !== undefined && node.lanes) {
          const lanes = this.startLanes(key, t.qid, t.idx, { v: valueId }, count, started);
          this.d.maps[key] = { count, next: started, done: 0, except: {}, items: valueId, template, lanes };
          return true;
        }
        this.d.maps[key] = {
          count,
          next: started,
          done: 0,
          except: {},
          items: valueId,
          ...(template ? { template } : {}),
        };
        for (let i = 0; i < started; i++) this.startItem(t.qid, t.idx, valueId, i);
        return true;
      }
      case 'loop': {
        const iter = t.iter ?? 0;
        const value: Ref = { v: valueId, at: ['value'] };
        if (control.loop === 'done') {
          this.advance(t.qid, t.idx, value);
        } else if (iter + 1 >= s.maxIterations) {
          if (s.onMax === 'exit') this.advance(t.qid, t.idx, value);
          else {
            this.failRun({
              name: 'LoopLimitError',
              message: `loop '${t.qid}' reached maxIterations (${s.maxIterations})`,
              taskKey: key,
            });
          }
        } else {
          const base = fillKey(t.qid, t.idx);
          this.addTask(iterKey(base, iter + 1), {
            qid: t.qid,
            idx: t.idx,
            iter: iter + 1,
            input: value,
            attempt: 1,
            state: 'ready',
          });
        }
        return true;
      }
      default:
        return false;
    }
  }

  private failed(key: string, attempt: number, error: { name: string; message: string; retryable: boolean }): boolean {
    const t = this.d.tasks[key];
    if (!t || !isCurrentAttempt(t, attempt)) return false;
    const policy = resolveRetry(taskOf(this.node(t.qid)).options.retry);
    const used = attempt - (t.budgetFrom ?? 1) + 1;
    const delay = retryBackoff(policy, {
      instanceId: this.base.instanceId,
      key,
      attempt,
      used,
      retryable: error.retryable,
    });
    if (delay !== undefined) {
      const dueAt = this.now + delay;
      const next: Mutable<TaskActivity> = { ...t, attempt: attempt + 1, state: 'backoff', dueAt };
      delete next.lapses;
      this.d.tasks[key] = next;
      this.effects.push({ type: 'timer', key, dueAt });
      return true;
    }
    this.d.tasks[key] = withoutDispatch({ ...t, state: 'failed' });
    this.failRun({ name: error.name, message: error.message, taskKey: key, attempts: attempt });
    return true;
  }

  /**
   * Fails the run. The frontier is kept as it was (tasks in flight, waits,
   * fork and map progress), so that a manual retry or skip of the failed
   * task can reopen the run where it stopped.
   */
  private failRun(error: RunError): void {
    const abort = this.abortRunning();
    this.d.status = 'FAILED';
    this.d.error = error;
    if (abort) this.effects.push(abort);
    this.effects.push({ type: 'fail', error });
  }

  /** The abort effect for every dispatched task, with the claims they run under; none when nothing runs. */
  private abortRunning(): Effect | undefined {
    const running = Object.entries(this.d.tasks).filter(([, t]) => t.state === 'dispatched');
    if (running.length === 0) return undefined;
    const keys = running.map(([k]) => k);
    const claims = [...new Set(running.map(([k, t]) => t.claim ?? k))];
    return { type: 'abort', keys, claims };
  }

  /** Reopens a failed run: re-dispatches what was in flight when it failed. */
  private reopen(): void {
    this.d.status = 'RUNNING';
    delete this.d.error;
    for (const [k, t] of Object.entries(this.d.tasks)) {
      if (t.state === 'dispatched') this.dispatch(k, t);
    }
    // Timers of a failed run were dropped by whoever armed them: arm them again.
    this.effects.push(...timerEffects(this.d.tasks, this.d.waits, this.base.deadlineAt));
  }

  private retry(key: string): boolean {
    const t = this.d.tasks[key];
    if (this.d.status !== 'FAILED' || t?.state !== 'failed') return false;
    this.reopen();
    const fresh: TaskActivity = withoutDispatch({
      ...t,
      state: 'ready',
      attempt: t.attempt + 1,
      budgetFrom: t.attempt + 1,
    });
    this.d.tasks[key] = fresh;
    this.dispatch(key, fresh);
    return true;
  }

  private skip(key: string, control: Control, valueId: string | undefined): boolean {
    const t = this.d.tasks[key];
    if (!t) return false;
    if (this.d.status === 'FAILED') {
      if (t.state !== 'failed') return false;
      // The skipped task must not be dispatched again by the reopening.
      this.d.tasks[key] = { ...t, state: 'ready' };
      this.reopen();
    }
    return this.completed(key, control, valueId);
  }

  private timer(key: string): boolean {
    if (key === DEADLINE_KEY) {
      if (this.base.deadlineAt === undefined || this.base.deadlineAt > this.now) return false;
      this.failRun({
        name: 'DeadlineExceededError',
        message: `the run passed its deadline (${new Date(this.base.deadlineAt).toISOString()})`,
      });
      return true;
    }
    const t = this.d.tasks[key];
    if (t?.state === 'backoff') {
      if ((t.dueAt ?? 0) > this.now) return false;
      const ready = withoutDispatch({ ...t, state: 'ready' });
      this.d.tasks[key] = ready;
      if (this.d.status === 'RUNNING') this.dispatch(key, ready);
      return true;
    }
    const w = this.d.waits[key];
    if (!w || w.dueAt === undefined || w.dueAt > this.now) return false;
    delete this.d.waits[key];
    if (w.kind === 'delay') {
      this.advance(w.qid, w.idx, w.input);
      return true;
    }
    const s = this.node(w.qid).step;
    if (s.kind === 'signal' && s.onTimeout === 'continue') {
      this.advance(w.qid, w.idx, { c: null });
    } else {
      this.failRun({
        name: 'SignalTimeoutError',
        message: `no signal '${w.signal}' within the timeout of '${key}'`,
        taskKey: key,
      });
    }
    return true;
  }

  /**
   * A signal goes to the oldest wait for it, else to the buffer, unless it
   * is a retried delivery (its id is among the recent ones) or the buffer
   * of its name is full ({@link signalRefusal} says which): then nothing
   * changes.
   */
  private signal(
    name: string,
    valueId: string,
    deliveryId: string | undefined,
    lane: LaneSignalTarget | undefined,
    bound: readonly string[] | undefined,
  ): boolean {
    const toLane = lane !== undefined && this.laneTargetOpen(name, lane);
    const refused = signalRefusal(this.cf.flow, this.base, name, deliveryId);
    if (refused !== undefined && !(refused === 'buffer-full' && toLane)) return false;
    if (deliveryId !== undefined) {
      this.d.deliveries = [...(this.d.deliveries ?? []), deliveryId].slice(-MAX_RECENT_DELIVERIES);
    }
    this.unbind(bound);
    const waiting = Object.keys(this.d.waits)
      .filter((k) => {
        const w = this.d.waits[k];
        return w?.kind === 'signal' && w.signal === name;
      })
      .sort()[0];
    if (waiting === undefined && lane !== undefined && toLane) {
      const l = this.laneSignals();
      l.given[lane.wait] = valueId;
      l.served[name] = lane.served;
      return true;
    }
    if (waiting === undefined) {
      const buffered = Object.hasOwn(this.d.signals, name) ? (this.d.signals[name] as string[]) : [];
      this.d.signals[name] = [...buffered, valueId];
      return true;
    }
    const w = this.d.waits[waiting] as WaitActivity;
    delete this.d.waits[waiting];
    this.advance(w.qid, w.idx, { v: valueId });
    return true;
  }

  /** The run's side of lane signal waits, made on first use. */
  private laneSignals(): NonNullable<Draft['laneSignals']> {
    this.d.laneSignals ??= { served: {}, given: {} };
    return this.d.laneSignals;
  }

  /**
   * Whether `key` is a lane wait for signal `name` that may still be given
   * one: a signal wait of the flow for that name, not given one yet, not
   * waiting in the frontier (its child joined it).
   */
  private laneWaitOpen(key: string, name: string): boolean {
    if (laneWaitOf(this.cf.flow, key)?.signal !== name) return false;
    return !Object.hasOwn(this.d.laneSignals?.given ?? {}, key) && !Object.hasOwn(this.d.waits, key);
  }

  /** Whether a delivery's lane target still stands: the head is where the deliverer read it, and its wait is open. */
  private laneTargetOpen(name: string, lane: LaneSignalTarget): boolean {
    const served = this.d.laneSignals?.served[name] ?? 0;
    return served === lane.head && lane.served > lane.head && this.laneWaitOpen(lane.wait, name);
  }

  /** Drops the entries of `given` whose outputs are put (see `LaneSignals.given`). */
  private unbind(bound: readonly string[] | undefined): void {
    const given = this.d.laneSignals?.given;
    for (const key of bound ?? []) if (given && Object.hasOwn(given, key)) delete given[key];
  }
}

/**
 * Why a signal would change nothing, or `undefined` when it would be
 * delivered (to a wait or to the buffer). Pure; the reducer applies the
 * same rule, so a caller can say why after a commit that changed nothing.
 *
 * - `duplicate`: a delivery with this id is among the run's recent ones
 *   (checked first: a retry after the run ended is still that delivery);
 * - `finished`: the run is over;
 * - `buffer-full`: nothing waits for the signal and the run already holds
 *   the flow's `signalBuffer` of that name.
 */
export function signalRefusal(
  flow: AnyFlow,
  s: Snapshot,
  name: string,
  deliveryId?: string,
): 'finished' | 'duplicate' | 'buffer-full' | undefined {
  // A retried delivery is a duplicate whatever became of the run since: it gets the first one's answer.
  if (deliveryId !== undefined && s.deliveries?.includes(deliveryId)) return 'duplicate';
  if (FINAL_STATUSES.has(s.status)) return 'finished';
  const waited = Object.values(s.waits).some((w) => w.kind === 'signal' && w.signal === name);
  const held = Object.hasOwn(s.signals, name) ? (s.signals[name]?.length ?? 0) : 0;
  if (!waited && held >= (flow.options.signalBuffer ?? DEFAULT_SIGNAL_BUFFER)) return 'buffer-full';
  return undefined;
}

/** Timer key of the run's deadline. */
export const DEADLINE_KEY = '$deadline';

/**
 * The frontier with the successor a chain runs inline marked as held by the
 * chain's claim (see `ChainStep`), if it is dispatched; else as it was. Pure:
 * the reducer applies a completion's `chain` with it, and a writer that
 * chooses the successor after reducing applies it to the result.
 */
export function withChain(tasks: Snapshot['tasks'], step: ChainStep): Record<string, TaskActivity> {
  const next = Object.hasOwn(tasks, step.key) ? tasks[step.key] : undefined;
  if (next?.state !== 'dispatched') return { ...tasks };
  return { ...tasks, [step.key]: { ...next, claim: step.claim } };
}

/** One due time in a frontier: a timer to fire, or a dispatched task due for a check. */
export interface DueTime {
  readonly key: string;
  readonly dueAt: number;
  /**
   * `timer`: a retry backoff, a delay, a signal timeout, the deadline;
   * `check`: a dispatch the reaper looks at; `lanes`: a map or fork run in
   * lanes whose progress the reaper looks at.
   */
  readonly kind: 'timer' | 'check' | 'lanes';
}

/**
 * Every due time of a frontier: the one source that the snapshot's `dueAt`
 * (what the reaper indexes), the reaper's due work and the re-arming of
 * timers are derived from. Pure.
 */
export function dueTimes(
  frontier: Pick<Snapshot, 'tasks' | 'waits' | 'maps' | 'forks' | 'redispatchAfterMs' | 'deadlineAt'>,
): DueTime[] {
  const due: DueTime[] = [];
  for (const [key, t] of Object.entries(frontier.tasks)) {
    if (t.state === 'backoff' && t.dueAt !== undefined) due.push({ key, dueAt: t.dueAt, kind: 'timer' });
    if (t.state === 'dispatched' && t.dispatchedAt !== undefined)
      due.push({ key, dueAt: checkDueAt(t, frontier.redispatchAfterMs), kind: 'check' });
  }
  for (const [key, w] of Object.entries(frontier.waits)) {
    if (w.dueAt !== undefined) due.push({ key, dueAt: w.dueAt, kind: 'timer' });
  }
  for (const g of laneGroups(frontier)) due.push({ key: g.key, dueAt: g.lanes.checkAt, kind: 'lanes' });
  if (frontier.deadlineAt !== undefined) due.push({ key: DEADLINE_KEY, dueAt: frontier.deadlineAt, kind: 'timer' });
  return due;
}

function nextDue(d: Draft, redispatchAfterMs: number, deadlineAt: number | undefined): number | undefined {
  let due: number | undefined;
  for (const t of dueTimes({ ...d, redispatchAfterMs, deadlineAt })) {
    due = due === undefined ? t.dueAt : Math.min(due, t.dueAt);
  }
  return due;
}

/** When a run that finished at `finishedAt` may be purged; never without a retention. */
const retentionEnd = (retentionMs: number | undefined, finishedAt: number): number | undefined =>
  retentionMs === undefined ? undefined : finishedAt + retentionMs;

/**
 * The `purge` event: a finished run is fenced (`purging`), due at once, so
 * that a purge cut short is taken up again by the next reaper pass; a live
 * run refuses it. Whether the retention has ended is the caller's call (see
 * {@link purgeDue}).
 */
function fencePurge(snapshot: Snapshot, now: number): Reduction {
  if (!FINAL_STATUSES.has(snapshot.status)) return { snapshot, effects: [], changed: false };
  const next: Snapshot = { ...snapshot, version: snapshot.version + 1, updatedAt: now, purging: true, dueAt: now };
  return { snapshot: next, effects: [], changed: true };
}

/**
 * Whether the reaper should purge a run now: it finished and its retention
 * (counted from the time it finished, its last update) has ended, or its
 * purge was fenced and not yet done. Pure.
 */
export function purgeDue(snapshot: Snapshot, now: number): boolean {
  if (snapshot.purging) return true;
  if (!FINAL_STATUSES.has(snapshot.status) || snapshot.retentionMs === undefined) return false;
  return snapshot.updatedAt + snapshot.retentionMs <= now;
}

/** When a dispatched task is due for the reaper's check: a redispatch period after its dispatch, or after its last check. */
export function checkDueAt(t: Pick<TaskActivity, 'dispatchedAt' | 'checkedAt'>, redispatchAfterMs: number): number {
  return Math.max(t.dispatchedAt ?? 0, t.checkedAt ?? 0) + redispatchAfterMs;
}

function withoutDispatch(t: TaskActivity): TaskActivity {
  const copy: Mutable<TaskActivity> = { ...t };
  delete copy.dueAt;
  delete copy.dispatchedAt;
  delete copy.checkedAt;
  delete copy.gen;
  delete copy.claim;
  delete copy.lapses;
  return copy;
}

/** What the reaper may do for an instance now: timers due, and dispatched tasks due for a check. Pure. */
export function dueWork(
  snapshot: Snapshot,
  now: number,
): { readonly timers: string[]; readonly stale: string[]; readonly lanes: string[] } {
  const due = { timers: [] as string[], stale: [] as string[], lanes: [] as string[] };
  if (snapshot.status !== 'RUNNING' && snapshot.status !== 'PAUSED') return due;
  for (const d of dueTimes(snapshot)) {
    if (d.dueAt <= now) (d.kind === 'timer' ? due.timers : d.kind === 'check' ? due.stale : due.lanes).push(d.key);
  }
  return due;
}

/**
 * Whether an outcome reported for `attempt` of a task counts: the task is in
 * the frontier at that attempt, dispatched (or held by a pause after its
 * worker started it). Pure; the reducer's rule for completions and failures.
 */
export function isCurrentAttempt(t: TaskActivity | undefined, attempt: number): boolean {
  return t !== undefined && t.attempt === attempt && (t.state === 'dispatched' || t.state === 'ready');
}

/**
 * Whether a dispatch is still wanted: the run is RUNNING and the task is
 * dispatched at that attempt. The one rule the worker (before running), the
 * reaper (before re-dispatching) and the reducer share. Pure.
 */
export function isCurrentDispatch(snapshot: Snapshot, key: string, attempt: number): boolean {
  const t = snapshot.tasks[key];
  return snapshot.status === 'RUNNING' && t?.state === 'dispatched' && t.attempt === attempt;
}

/**
 * What the reducer needs to know of a committed output of the task at `qid`:
 * the route key, the item count, or the loop decision. Pure.
 *
 * @throws {TerminalError} when the output does not fit the step (a map's items
 *   are not an array, a loop body did not return a `LoopResult`).
 */
export function controlOf(flow: AnyFlow, qid: string, value: unknown): Control {
  const node = compileFlow(flow).nodes.get(qid);
  switch (node?.step.kind) {
    case 'route':
      if (typeof value !== 'string')
        throw new TerminalError(`route '${qid}' key function returned ${typeof value}, expected a string`);
      return { routeKey: value };
    case 'map':
      if (!Array.isArray(value))
        throw new TerminalError(`map '${qid}' items function returned ${typeof value}, expected an array`);
      return { count: value.length };
    case 'loop': {
      const loop = (value as { loop?: unknown } | null)?.loop;
      if (loop !== 'again' && loop !== 'done') {
        throw new TerminalError(`loop '${qid}' body must return LoopResult.again(value) or LoopResult.done(value)`);
      }
      return { loop };
    }
    default:
      return {};
  }
}

/** A timer effect for every timer in a frontier: retry backoffs, delays, signal timeouts, the deadline. Pure. */
function timerEffects(tasks: Snapshot['tasks'], waits: Snapshot['waits'], deadlineAt: number | undefined): Effect[] {
  return dueTimes({ tasks, waits, maps: {}, forks: {}, redispatchAfterMs: 0, deadlineAt })
    .filter((d) => d.kind === 'timer')
    .map((d) => ({ type: 'timer', key: d.key, dueAt: d.dueAt }));
}

/**
 * What must be (re)done for a stored instance to make progress: dispatch
 * every task in flight (its message may have been lost with a crash) and
 * re-arm every timer. Pure. Duplicates are harmless: claims and the
 * conditional output commit absorb them.
 */
export function pendingEffects(flow: AnyFlow, snapshot: Snapshot): Effect[] {
  if (snapshot.status !== 'RUNNING' && snapshot.status !== 'PAUSED') return [];
  const cf = compileFlow(flow);
  const effects: Effect[] = [];
  for (const [key, t] of Object.entries(snapshot.tasks)) {
    const node = cf.nodes.get(t.qid);
    if (t.state === 'dispatched' && node) effects.push(dispatchEffect(node, snapshot, key, t));
  }
  effects.push(...timerEffects(snapshot.tasks, snapshot.waits, snapshot.deadlineAt));
  return effects;
}
