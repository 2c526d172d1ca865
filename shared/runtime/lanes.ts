import {
  type CompiledNode,
  compileFlow,
  fillKey,
  iterKey,
  iterOf,
  laneFork,
  laneMap,
  laneNext,
  loopKeyOf,
  runsInLane,
  stepOfKey,
  taskOf,
} from '../engine/compile.ts';
import type { AnyFlow } from '../engine/definition.ts';
import { RESERVATION_LAPSES, WORKER_LOST } from '../engine/errors.ts';
import {
  type ChildStep,
  childInFrontier,
  endsChild,
  firstFork,
  forkAfterMap,
  forkInputId,
  forkInputVaries,
  type LaneFacts,
  type LaneGroup,
  type LaneResult,
  type LoopProgress,
  laneCheckMs,
  laneChildOf,
  laneClaimsTell,
  laneDispatch,
  laneGroupIn,
  laneGroupOf,
  laneItemOf,
  laneKeys,
  laneNextAfter,
  laneOf,
  laneOfTask,
  laneParentKey,
  laneResultId,
  laneResults,
  laneSteps,
  laneWaitOf,
  mapCountId,
  mapDoneId,
  mapEndId,
  resumePoint,
  startsOwnChain,
  startsParked,
  stepInput,
} from '../engine/lanes.ts';
import { controlOf } from '../engine/reducer.ts';
import { materialize, outputId, type Ref, ValueMissingError } from '../engine/refs.ts';
import { resolveRetry, retryBackoff } from '../engine/retry.ts';
import type { ChainStep, Dispatch, Effect, RunEvent } from '../engine/snapshot.ts';
import type { Claim } from '../ports/claim-store.ts';
import type { InstanceStore, LaneLookTimer, LaneTimer } from '../ports/instance-store.ts';
import { dispatchesOf } from './effects.ts';
import {
  type Commit,
  type CommitOptions,
  commit,
  compactRun,
  loadRun,
  type RunState,
  readValues,
  skipTask,
} from './instances.ts';

/**
 * The children of a map (its items) or of a fork (its branches) run in
 * lanes when each child's sequence starts with a task (or a delay, then a
 * task) and ends with a task (or a task, then a delay; or a loop, or a
 * route or a fork run in the lane) (see `laneShape`, and `Lanes` in
 * `snapshot.ts`): a child in its lane never writes to the run's journal.
 * Who writes what, under which condition:
 *
 * - a task of the child's own sequence: its output, put if absent under
 *   the step's output id (`CompiledFlow.outputsById`); the first put wins,
 *   and whoever runs the next step reads that one value (a re-run of the
 *   step finds it there);
 * - the child's last step: its result, put if absent under its id (the
 *   last task's output id), then, only by the writer whose put created it,
 *   one atomic add of 1 to the parent's counter (no condition, so no lost
 *   race). A writer that found the result there adds nothing: the first
 *   one counted it, or died before counting, which the reaper repairs;
 * - a child that ends with a loop or a route run in the lane, whose last
 *   output id varies (a loop's last iteration, `<key>@<n>`; the last task
 *   of the branch the route chose), has its result under an id of its
 *   own, `<the loop's or route's output id>:result` (`laneResultTemplate`).
 *   The writer of the step that ends it (`laneNextAfter` says `end`), in
 *   its lane or in the frontier, first puts that step's output by its id,
 *   if absent, as for any step (and reads back the first put's value),
 *   then the result, that value (a loop's `value`), put if absent under
 *   the result id; only the writer whose result put created it counts the
 *   child, whether or not it created the step's output (`endChild`). A
 *   crash between the two puts leaves the step's output without the
 *   result: the reaper's look finds the child stopped at that step (its
 *   result is listed as one more entry after it, `ChildStep.result`, see
 *   `resumePoint`) and sends the step again, whose run finds its output,
 *   reads it back and puts the result;
 * - the add that returns `d` starts child `window + d - 1` (each value of
 *   `d` is returned to exactly one writer, so each child is started once;
 *   a fork starts all its branches at once, so its adds start nothing);
 * - the add that returns the number of children commits `lanes-joined` to
 *   the run's journal (a conditional put at the next `seq`, like any
 *   commit): the parent's one journal entry after its start. A map's
 *   successor, or a fork's join, follows from it;
 * - a route run in the lane (`laneRoute`) and a loop: the key function, or
 *   each iteration (`<key>@<iteration>`), is a step of the lane, its
 *   output put if absent like a task's; the worker puts it before it
 *   decides where the child goes (the branch the key names, on the route's
 *   input; the next iteration, or the step after the loop), and decides on
 *   the value stored, so a re-run that answers otherwise follows the first
 *   answer. The reaper reads the key, or lists the iterations, to know
 *   where a stalled child stopped (`resolvedLaneSteps`);
 * - a task in the lane followed by a delay that is followed by a task
 *   (`laneTimerAfter`) puts its output, then the delay's lane timer
 *   (`LaneTimer`, put if absent under the delay's key, due the delay's
 *   duration later): the child parks on it, and nothing is committed to
 *   the run's journal. A writer that finds the timer there (a duplicate of
 *   the step) does nothing more. When the timer is due, the reaper marks
 *   the delay as passed (a value under its output id), dispatches the next
 *   task in the lane on the delay's input, then fires the timer (see
 *   `fireLaneTimers`). A child that starts with a delay is started the
 *   same way, by a timer put by the writer whose add made room for it;
 * - a task in the lane that fails and is retried, by the reducer's rule
 *   (`retryBackoff`), puts the backoff's lane timer, `<key>#<attempt>`,
 *   with the failure (`LaneTimer.retry`); when it is due, the reaper
 *   dispatches that attempt in the lane, on the input the task failed on.
 *   A writer that finds the timer there changes nothing. The reaper's look
 *   starts a stalled child's retried step again at its last attempt. A
 *   failure that is final joins the frontier, as below, and fails the run;
 *   its dead letter lists the attempts retried in the lane too;
 * - a task in the lane whose next step is another step that is not a task
 *   commits its completion (`task-completed` with `lane`) to the run's journal, after
 *   its output's put: the child joins the frontier there and goes on
 *   through the journal. So does a step whose failure is final
 *   (`task-failed`, judged by the reducer) or that a pause holds
 *   (`task-held`). A writer first checks that no later step of the child
 *   (nor, for a failure or a hold, the step itself) has its output: a late
 *   duplicate of a step the child went past must not make it join again;
 * - a task of the child's own sequence that completes in the frontier and
 *   is followed by a task sends the child back to its lane (the reducer
 *   dispatches that task on the output put by its id, and puts off the
 *   group's next look by a check period). So does a delay that comes first
 *   or right after a task, when it ends: the reaper first marks it as passed
 *   (a value under the delay's output id), and the next task runs on the
 *   delay's input. Its last step, completed in the frontier, is put and
 *   counted as above;
 * - a fork whose branches run in lanes, right after a task of the child
 *   (`laneFork`), is a group of its own, run in the child's lane: the
 *   writer of that task's output puts the fork's first look (a lane timer
 *   of the child, `LaneTimer.look`), then sends its branches, which count
 *   on the fork's own counter; the add that returns its branch count sends
 *   its join in the child's lane, on their results, instead of a commit,
 *   and the join's output, put by its id, is the child's next step's input.
 *   Each look starts again the branches that stopped, as the reaper's look
 *   at a group of the frontier does, and sends the join when every branch
 *   is counted and no worker holds it, then puts the next look. Anything
 *   of such a fork that must be committed to the run's journal (a failure
 *   for good, a hold, a step that needs the reducer) first commits what
 *   the fork skipped: the completion of the task before it, with which the
 *   child joins the frontier and the fork starts there, in lanes, with the
 *   same counter (`joinLaneGroup`);
 * - a map whose items run in lanes (none starting with a delay) is such a
 *   group too, wherever it stands in the child (`laneMap`): its items task is a step of the
 *   lane (its output, the items, put by its id, the first put wins); the
 *   writer that put them puts their number (`mapCountId`, put if absent),
 *   the map's first look, then its first window of items; the add that
 *   returns the number of items (or the map's look, when that writer
 *   died) ends the map, on the items' results (`endLaneGroup`): before a
 *   step that runs in the lane, it puts the map's done mark (`mapDoneId`)
 *   and sends that step; before a fork run in the lane, it puts the done
 *   mark, then starts the fork (its input, the items' results, put first
 *   as a fork's after a loop's, see `forkInputId`; a crash between the two
 *   is the child's group's look's to repair: it finds the map done and the
 *   fork not started, and gives the fork a look, which finds its input from
 *   the map's results); before any other step, the child joins the
 *   frontier with the map's end: one commit of the items task (with its
 *   count) and the map's `lanes-joined` (`joinLaneGroup` with `ended`), on
 *   which the reducer enters the next step, then the done mark. A writer
 *   that finds the child past the map (a step after it has its output)
 *   commits nothing and puts the mark; until the mark is there the map's
 *   looks go on, and the reducer takes a second such commit while the
 *   child is in the frontier as a duplicate. Its look starts items again
 *   only once its counter stood still between two looks. What must be
 *   committed first commits the map's items task, with its count (and,
 *   for a fork after the map, the map's `lanes-joined` with it: the map
 *   ended, the reducer starts the fork in the frontier);
 * - a map whose items run in lanes that ends its child (or is the whole
 *   child) runs in the child's lane too, as above, but its end is the
 *   child's result (`mapEndId`, `<the map's output id>:result`), put in
 *   place of its done mark: whoever ends the map (the writer whose add
 *   returns its number of items, or its look that finds them all counted;
 *   after its `lanes-joined` commit, when it had joined the frontier) puts
 *   the items' results under that id, if absent, and only the writer whose
 *   put created it counts the child (`putMapResult`). A crash between the
 *   last add and that put leaves the map with every item counted and no
 *   end: its next look (put by each look until the end is there; put
 *   again by the child's group's look when none is pending, see
 *   `stalledChildren`) puts it;
 * - a signal wait right after a task and before a step of the lane
 *   (`laneWaitOf`) parks the child in its lane: the worker that put the
 *   task's output takes a ticket of the signal's waiter queue and puts its
 *   record and the wait's lane timer; each signal is one journal entry that
 *   gives it to a wait, and whoever gave it puts it under the wait's
 *   output id and sends the next step in the lane (see `lane-signals.ts`);
 * - the first window of children that start with a delay starts in the
 *   frontier, with the parent's start, for a group of the frontier; a
 *   group run in a lane (a map, or a fork after a step) starts its first
 *   window as its counts start the others (`startChild`): such a child on
 *   its delay's lane timer, put if absent. A group run in a lane that
 *   joins the frontier starts its first window there again, its children
 *   that start with a delay waiting there on it: a later step of such a
 *   child that joins the frontier (it had gone past its delay in its lane)
 *   takes the place of that wait (the reducer's `joinFrontier`), so its
 *   failure fails the run at once. A fork that starts its child starts
 *   its branches with the child's dispatch (`laneStart`, pure): it runs in
 *   the lane only when none of them starts with a delay. (Journals written
 *   before lane timers may hold `lanes-started` entries, which the reducer
 *   still takes: a child started by one waits in the frontier.)
 *
 * A crash between a put and the commit or the add that follows it, between
 * the add and the start of the next child, or between the last add and the
 * `lanes-joined` commit, leaves the counter behind the results or the
 * parent open; a lost message or a dead worker leaves a child without a
 * result. The reaper looks at a parent whose check time has come
 * (`checkLanes`): a counter at the number of children ends the parent;
 * else it recounts the results, ends the parent when all are there, and
 * starts again each child of the window that has none, is not in the
 * frontier, is not parked on a lane timer (nor sent on by one less than a
 * check period ago), and is known not to run (from the claims for a fork's
 * branches, from a counter that stood still for longer than an item may
 * run for a map's items), where its stored outputs say it stopped (see
 * `resumePoint`), at the last attempt a lane timer retried that step at.
 * A child with no output and no timer whose first step is
 * a delay (its starter died between its add and the timer) gets its timer.
 */

/**
 * The steps of child `item` of a group (see `laneSteps`), as far as the
 * child got: with the branch that each route run in its lane chose (read
 * from the key its key function put by its id), and each loop's iterations
 * (listed by their ids, the last one read to know whether the loop ended).
 * A flow with neither reads nothing.
 */
export async function resolvedLaneSteps(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  g: LaneGroup,
  item: number,
): Promise<ChildStep[]> {
  const routes = new Map<string, string>();
  const loops = new Map<string, LoopProgress>();
  const counts = new Map<string, number>();
  const read = (id: string) => readValue(store, instanceId, id);
  for (;;) {
    const steps = laneSteps(flow, g, item, { routes, loops, counts });
    const last = steps.at(-1);
    if (last?.group && last.key && !last.out && !counts.has(last.key)) {
      // A map run in the lane whose count is not known here: its items not run yet, or its count to read.
      const count = await mapCount(store, instanceId, last.key);
      if (count === undefined) return steps;
      counts.set(last.key, count);
      continue;
    }
    if (last?.route && last.key && last.id && !routes.has(last.key)) {
      const chosen = await read(last.id);
      // Not run yet (or a key with no branch: then the child joined the frontier, which fails the run).
      if (typeof chosen !== 'string') return steps;
      routes.set(last.key, chosen);
      continue;
    }
    // A loop whose first iteration ends the list: how far it went, from its iterations' outputs.
    if (last?.iter !== 0 || !last.key) return steps;
    const loop = loopKeyOf(last.key);
    if (loops.has(loop)) return steps;
    const done = (await store.listValueIds(instanceId, outputId(iterKey(loop, '')))).map(iterOf);
    if (done.length === 0) return steps;
    const key = iterKey(loop, Math.max(...done));
    // Where the last one sent the child, by the worker's rule: on to the loop again, or past it (the loop ended;
    // a bound that fails, or a value that is no LoopResult, sent it to the frontier, past the loop too).
    const input = laneOf(flow, g, item).input; // a loop's next step does not depend on it
    const next = laneNextAfter(flow, { qid: last.qid, key, input }, await read(outputId(key)));
    loops.set(loop, { last: iterOf(key), ended: !(next.kind === 'step' && next.qid === last.qid) });
  }
}

/** The counter of a map or fork run in lanes. */
export const laneCounterId = (parent: string): string => `lanes:${parent}`;

/** The outcome of counting one child. */
export interface Counted {
  /** The child this count starts (the window moves on), if any. */
  readonly next?: Dispatch;
  /** Effects of the `lanes-joined` commit, when this count was the parent's last. */
  readonly effects: readonly Effect[];
  /** The successor recorded as run inline with `lanes-joined` (see `CommitOptions.chain`). */
  readonly chained?: ChainStep;
  readonly run: RunState;
}

/**
 * Counts a child of a map or fork run in lanes whose result this writer's
 * put just created: adds 1 to the parent's counter, starts the next child,
 * and ends the parent on its last child. The `lanes-joined` commit is not
 * compacted here: the caller compacts (a chain when it parks, others at once).
 */
export async function countLane(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  parent: string,
  options: Pick<CommitOptions, 'now' | 'chain'>,
): Promise<Counted> {
  await loadLaneFacts(store, flow, run, parent);
  const g = laneGroupIn(flow, run.snapshot, parent, factsOf(run));
  if (!g) return { effects: [], run };
  const d = await store.addToCounter(run.snapshot.instanceId, laneCounterId(parent), 1);
  const child = g.lanes.window + d - 1;
  if (d === g.count && g.outer) {
    // A fork or map run in a lane: its join, or the step after it, runs in that lane; nothing is committed. A map
    // that ends its child puts that child's result, which counts it.
    const end = await endLaneGroup(store, flow, run, g, options);
    return end.ended ?? { ...(end.after ? { next: end.after } : {}), effects: [], run };
  }
  if (d === g.count) return endLanes(store, flow, run, g, options);
  if (child >= g.count) return { effects: [], run };
  const started = await startChild(store, flow, run, g, child, options.now());
  // Its first step may run inline in this chain; a fork's branches each start a chain of their own.
  const [first, ...others] = started.dispatches;
  if (first && others.length === 0 && !startsOwnChain(flow, first)) return { next: first, effects: [], run };
  return { effects: started.dispatches.map((dispatch) => ({ type: 'dispatch', dispatch })), run };
}

/**
 * Starts child `item` of group `g`, outside the frontier: its first
 * step's dispatch (returned, to send); for a child whose first step is a
 * delay, its lane timer, due the delay's duration after `now` (it parks on
 * it, see {@link fireLaneTimers}); for one that starts with a fork run in
 * its lane, that fork (see {@link startLaneGroup}). The add that makes room
 * for a child starts it, and so does the start of a group run in a lane
 * for its first window (a group of the frontier starts its first window
 * with the reducer, see `startsParked`).
 */
async function startChild(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  item: number,
  now: number,
): Promise<{ readonly dispatches: Dispatch[] }> {
  const inner = firstFork(flow, g, item);
  if (inner) return startLaneGroup(store, flow, run, inner, now);
  if (!startsParked(flow, g, item)) return { dispatches: [laneDispatch(flow, run.snapshot, g, item)] };
  await store.putTimer(run.snapshot.instanceId, laneTimer(flow, g, item, laneOf(flow, g, item).head, now));
  return { dispatches: [] };
}

/**
 * The lane timer of child `item`'s delay `delay` (its step), due the delay's
 * duration after `now`: one per delay of a child, by its key.
 */
export function laneTimer(
  flow: AnyFlow,
  g: LaneGroup,
  item: number,
  delay: string,
  now: number,
): Omit<LaneTimer, 'firedAt'> {
  const step = compileFlow(flow).nodes.get(delay)?.step;
  if (step?.kind !== 'delay') throw new Error(`step '${delay}' of '${flow.name}' is not a delay`);
  return { id: fillKey(delay, laneOf(flow, g, item).idx), dueAt: now + step.ms, parent: g.key, item };
}

/** What firing lane timers did (see {@link fireLaneTimers}). */
export interface FiredLaneTimers {
  readonly fired: number;
  /** Effects of the commits of the counts (a parent whose last child ended on its delay), not compacted. */
  readonly effects: readonly Effect[];
  readonly run: RunState;
}

/**
 * Fires the due lane timers `ids` of a run (see `laneTimerAfter`):
 *
 * - a delay followed by a task: the delay's mark (its output id, put if
 *   absent, as for a delay fired in the frontier), then the dispatch of
 *   the task after it, in the lane, on the delay's input;
 * - a delay that ends its child (`endsChild`): the child's result, the
 *   output of the task before it, put if absent under the delay's id; the
 *   writer whose put created it counts the child (`countLane`), as a
 *   child's last task does;
 * - a retry's backoff: the dispatch of the retried attempt, in the lane, on
 *   the input the task failed on;
 *
 * then the timer is fired (taken off the due index). A crash before the
 * firing leaves the timer due: the next pass sends the same dispatch again
 * (the same deduplication id; the task's output is put if absent), and finds
 * the result there (a crash between its put and its count is the reaper's
 * recount's to repair). A timer whose child has nothing more to do here (the
 * run ended, the parent no longer runs in lanes, the child joined the
 * frontier or has its result) is fired with nothing sent.
 */
export async function fireLaneTimers(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  ids: readonly string[],
  options: {
    readonly now: () => number;
    readonly send: (dispatches: readonly Dispatch[]) => Promise<void>;
    /** What a look at a fork or map run in a lane asks about work outside the store (see `LaneTimer.look`). */
    readonly look: LaneLook;
  },
): Promise<FiredLaneTimers> {
  if (ids.length === 0) return { fired: 0, effects: [], run };
  const s = run.snapshot;
  // By id: the timers due now, not every timer of the run (a map's may be many).
  const timers = (await store.getTimers(s.instanceId, ids)).filter(
    (t) => t.firedAt === undefined && t.dueAt <= options.now(),
  );
  const marks: string[] = [];
  const results: LaneResult[] = [];
  const dispatches: Dispatch[] = [];
  const looks: LaneLookTimer[] = [];
  for (const t of timers) {
    // A signal wait's timer is its timeout, settled with the run's lane signals (see `settleLaneSignals`).
    if (laneWaitOf(flow, t.id)) continue;
    // A failed run may be reopened: its children go on, and its workers drop what they are sent until then.
    if (s.status !== 'COMPLETED' && s.status !== 'CANCELLED') await loadLaneFacts(store, flow, run, t.parent);
    const g =
      s.status === 'COMPLETED' || s.status === 'CANCELLED' ? undefined : laneGroupIn(flow, s, t.parent, factsOf(run));
    if (!g || t.item >= g.count || childInFrontier(flow, s, g, t.item)) continue;
    if (t.look) {
      looks.push(t.look);
      continue;
    }
    const steps = await resolvedLaneSteps(store, flow, s.instanceId, g, t.item);
    if (t.retry) {
      // A retry's backoff ended: its task runs again, on the input it failed on.
      const at = steps.findIndex((x) => x.key === t.retry?.task);
      const input = stepInput(steps, at, laneOf(flow, g, t.item));
      if (at < 0 || !input) continue;
      const { qid, iter } = steps[at] as ChildStep;
      const step = { qid, input, attempt: t.retry.attempt, ...(iter === undefined ? {} : { iter }) };
      dispatches.push(laneDispatch(flow, s, g, t.item, step));
      continue;
    }
    const at = steps.findIndex((x) => x.timer === t.id);
    const delay = steps[at];
    const next = steps[at + 1];
    if (!delay?.id || !delay.out) continue;
    if (!next) {
      if (endsChild(flow, delay.qid)) results.push({ id: delay.id, from: delay.out, parent: t.parent });
      continue;
    }
    if (next.key === undefined) continue;
    marks.push(delay.id);
    dispatches.push(laneDispatch(flow, s, g, t.item, { qid: next.qid, input: delay.out }));
  }
  await Promise.all(marks.map((id) => store.putValue(s.instanceId, id, true)));
  let current = run;
  const effects: Effect[] = [];
  for (const r of results) {
    const counted = await putLaneResult(store, flow, current, r, { now: options.now });
    if (!counted) continue;
    current = counted.run;
    if (counted.next) dispatches.push(counted.next);
    effects.push(...counted.effects);
  }
  for (const l of looks) {
    const looked = await lookInLane(store, flow, current, l, options.look);
    current = looked.run;
    dispatches.push(...looked.dispatches);
    effects.push(...looked.effects);
  }
  if (dispatches.length > 0) await options.send(dispatches);
  const at = options.now();
  await Promise.all(timers.map((t) => store.fireTimer(s.instanceId, t.id, at)));
  return { fired: timers.length, effects, run: current };
}

/**
 * Puts the result of a child that ends on a delay (`endsChild`), or on a
 * step whose result has an id of its own (see {@link endChild}): the value
 * of `from` (the delay's input; the step's output) under `id`, if absent
 * (values the run has seen are not read again); the writer whose put
 * created it counts the child.
 *
 * @returns the count, or `undefined` when the result was there (nothing counted).
 */
export async function putLaneResult(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  result: LaneResult,
  options: Pick<CommitOptions, 'now' | 'chain'>,
): Promise<Counted | undefined> {
  const instanceId = run.snapshot.instanceId;
  const values = await readValues(store, run, result.from);
  if ((await store.putValue(instanceId, result.id, materialize(result.from, values))) !== 'created') return undefined;
  return countLane(store, flow, run, result.parent, options);
}

/**
 * Counts child `end.item` of the group `end.parent` whose step `end.key`
 * just ended it (`laneNextAfter` said `end`), in its lane or in the
 * frontier, after that step's output was put by its id (`created`: by
 * this writer). When the child's result is that output (see
 * `laneResultTemplate`), the writer whose put created it counts. Else its
 * result, the value of `end.result`, is put under its own id, if absent,
 * and the writer whose result put created it counts (see
 * {@link putLaneResult}), whether or not it created the step's output: a
 * writer that died between the two puts left the step's output only, and
 * the step's next run (sent again by the look, see `resumePoint`) puts the
 * result.
 *
 * @returns the count, or `undefined` when this writer counted nothing.
 */
export async function endChild(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  end: {
    readonly parent: string;
    readonly item: number;
    readonly key: string;
    readonly created: boolean;
    readonly result: Ref;
  },
  options: Pick<CommitOptions, 'now' | 'chain'>,
): Promise<Counted | undefined> {
  await loadLaneFacts(store, flow, run, end.parent);
  const g = laneGroupIn(flow, run.snapshot, end.parent, factsOf(run));
  if (!g) return undefined;
  const id = laneResultId(flow, g, end.item);
  if (id === outputId(end.key)) return end.created ? countLane(store, flow, run, end.parent, options) : undefined;
  return putLaneResult(store, flow, run, { id, from: end.result, parent: end.parent }, options);
}

/**
 * Commits the end of a map or fork run in lanes: what follows it is in the
 * returned effects. A map that ends a child of a group run in lanes (it
 * had joined the frontier) then puts that child's result, as in its lane
 * (see {@link putMapResult}); the reducer, for which such a child's end is
 * counted outside the journal, follows nothing from it.
 */
async function endLanes(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  options: Pick<CommitOptions, 'now' | 'chain'>,
): Promise<Counted> {
  const r = await commit(store, flow, run, () => [{ type: 'lanes-joined', key: g.key }], options);
  const ended: Counted = { effects: r.effects, run: r.run, ...(r.chained ? { chained: r.chained } : {}) };
  const counted = await putMapResult(store, flow, r.run, g, r.chained ? { now: options.now } : options);
  if (!counted) return ended;
  const chained = ended.chained ?? counted.chained;
  return {
    ...counted,
    effects: [...ended.effects, ...counted.effects],
    ...(chained ? { chained } : {}),
  };
}

/**
 * When the map `g` ends a child of a group run in lanes (see
 * `mapEndId`), wherever it ran: that child's result, the map's items'
 * results, put if absent; the writer whose put created it counts the child
 * (see {@link putLaneResult}). `undefined` when the map ends no child, or
 * this writer counted nothing.
 */
async function putMapResult(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  options: Pick<CommitOptions, 'now' | 'chain'>,
): Promise<Counted | undefined> {
  const nodes = compileFlow(flow).nodes;
  const last = isMapGroup(flow, g) && !laneNext(g.lanes.qid, nodes);
  const child = last ? laneChildOf(flow, g.lanes.qid, g.lanes.idx) : undefined;
  if (!child) return undefined;
  await loadLaneFacts(store, flow, run, child.parent);
  const outer = laneGroupIn(flow, run.snapshot, child.parent, factsOf(run));
  if (!outer) return undefined;
  const result = { id: laneResultId(flow, outer, child.item), from: laneResults(flow, g), parent: child.parent };
  return putLaneResult(store, flow, run, result, options);
}

/**
 * Whether a child went past step `from` of its steps (see `laneSteps`):
 * that step, or one after it, has its mark stored (one listing).
 */
export async function passedFrom(
  store: InstanceStore,
  instanceId: string,
  steps: readonly ChildStep[],
  from: number,
): Promise<boolean> {
  const ids = steps.slice(from).flatMap((x) => (x.id ? [x.id] : []));
  if (ids.length === 0) return false;
  const stored = new Set(await store.listValueIds(instanceId, commonPrefix(ids)));
  return ids.some((id) => stored.has(id));
}

/** The longest prefix of every id: one listing of the values finds them all. */
export function commonPrefix(ids: readonly string[]): string {
  let prefix = ids[0] ?? '';
  for (const id of ids) while (!id.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix;
}

/** What the reaper tells a look at lanes about work outside the store. */
export interface LaneLook {
  readonly now: () => number;
  /** Whether a live claim holds any of these task keys of the run. */
  readonly running: (keys: readonly string[]) => Promise<boolean>;
  /** Whether a dispatch is most likely waiting in its queue (a backlog there): not lost. */
  readonly queued: (d: Dispatch) => Promise<boolean>;
  /** How long after children were sent a backlog still explains one no worker took (see `REAPER_DEFAULTS.maxQueueWaitMs`). */
  readonly maxQueueWaitMs: number;
}

/**
 * The reaper's look at a map or fork run in lanes, once its check time has
 * come (see `laneCheckMs`). A counter at the number of children means the
 * parent is done (its last counter died before committing it): it ends.
 * Otherwise the results are recounted (one listing of the values the
 * children put), and the parent ends if all are there. A child without a
 * result, not in the frontier, is started again from its first step
 * without an output (its input the output before it) when it is known not
 * to run:
 *
 * - a fork's branch (claims tell, see `laneClaimsTell`): no live claim on
 *   any of its step keys, and its queue has no backlog, as for a task of
 *   the frontier: a lost message or a dead worker is seen within a
 *   redispatch period;
 * - a map's item: when the counter stood still for a whole check period,
 *   longer than any item may run (a worker died between writes, a message
 *   was lost). A counter that moved means progress: the look is recorded,
 *   nothing else.
 *
 * @returns the dispatches to send and the effects of what was committed (not compacted).
 */
export async function checkLanes(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  parent: string,
  look: LaneLook,
): Promise<{ readonly dispatches: readonly Dispatch[]; readonly effects: readonly Effect[]; readonly run: RunState }> {
  const g = laneGroupOf(run.snapshot, parent);
  if (!g) return { dispatches: [], effects: [], run };
  const options = { now: look.now };
  const found = await lookAtGroup(store, flow, run, g, look, g.lanes);
  if (found.done) return { dispatches: [], ...(await endLanes(store, flow, run, g, options)) };
  let dispatches = found.dispatches;
  const restarted = dispatches.length > 0 ? { restarted: true } : {};
  const r = await commit(
    store,
    flow,
    run,
    () => [{ type: 'lanes-checked', key: parent, done: found.counted, ...restarted }],
    options,
  );
  if (!r.changed) dispatches = [];
  return { dispatches, effects: r.effects, run: r.run };
}

/**
 * What a look at group `g` finds, wherever the group runs (see
 * {@link checkLanes}, `lookInLane`), from its counter and `last`, what the
 * look before saw (`seen`, its counter) and when children were last sent
 * (`sentAt`): `done` when every child is counted, or has its result; else
 * the children to start again (see {@link stalledChildren}). A map's items
 * may run in one another's chains, so they are started again only once its
 * counter stood still since the look before.
 */
async function lookAtGroup(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  look: LaneLook,
  last: { readonly seen: number; readonly sentAt?: number | undefined },
): Promise<{ readonly counted: number; readonly done: boolean; readonly dispatches: Dispatch[] }> {
  const counted = await store.getCounter(run.snapshot.instanceId, laneCounterId(g.key));
  // Only a put that created a result is counted, so a full counter means every result is there.
  if (counted >= g.count) return { counted, done: true, dispatches: [] };
  if (laneClaimsTell(flow, g) || counted === last.seen)
    return { counted, ...(await stalledChildren(store, flow, run, g, look, last.sentAt)) };
  return { counted, done: await allResults(store, flow, run, g, counted), dispatches: [] };
}

/**
 * Whether every child of a map whose counter moved since the last look
 * (`counted`), and whose last children have all started, has its result:
 * the count of one was lost with its writer, and the map may end now
 * rather than once its counter stood still for a look. One listing, only
 * when the children left fit in the window.
 */
async function allResults(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  counted: number,
): Promise<boolean> {
  if (g.count - counted > g.lanes.window) return false;
  const ids = Array.from({ length: g.count }, (_, i) => laneResultId(flow, g, i));
  const listed = new Set(await store.listValueIds(run.snapshot.instanceId, commonPrefix(ids)));
  return ids.every((id) => listed.has(id));
}

/**
 * The children of group `g` that stopped (see {@link checkLanes}): every
 * result there (`done`), or the dispatches that start again each child
 * of the window that has no result, is not in the frontier, is not parked
 * on a lane timer (nor sent on by one less than a check period ago), and
 * is known not to run, where its stored outputs say it stopped (see
 * `resumePoint`). A child that stopped in a fork run in its lane (see
 * `laneFork`) with no look pending there gets one, due now: that fork's
 * own look starts its branches. `sentAt`: when the children were last sent.
 */
async function stalledChildren(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  look: LaneLook,
  sentAt: number | undefined,
): Promise<{ readonly done: boolean; readonly dispatches: Dispatch[] }> {
  const instanceId = run.snapshot.instanceId;
  const byClaims = laneClaimsTell(flow, g);
  const children = Array.from({ length: g.count }, (_, i) => {
    // Every step the child may run, whatever its routes chose: their values and timers share a prefix.
    const keys = laneKeys(flow, g, i);
    return { keys, ids: keys.map(outputId), result: laneResultId(flow, g, i) };
  });
  const listed = new Set(await store.listValueIds(instanceId, commonPrefix(children.flatMap((c) => c.ids))));
  // A child that waits on a lane timer (a delay, a retry's backoff, a look), or was just sent on by one, has not stalled.
  const checkMs = laneCheckMs(flow, g.lanes.qid, run.snapshot.redispatchAfterMs);
  const timerPrefix = commonPrefix(children.flatMap((c) => c.keys));
  const timers = (await store.listTimers(instanceId, timerPrefix)).filter((t) => t.parent === g.key);
  // A signal wait with its output put went on, or its binder died before sending it on (see `lane-signals.ts`).
  const waitDone = (t: LaneTimer) => laneWaitOf(flow, t.id) !== undefined && listed.has(outputId(t.id));
  const parked = new Set(
    timers
      .filter((t) => (t.firedAt === undefined && !waitDone(t)) || look.now() - (t.firedAt ?? 0) < checkMs)
      .map((t) => t.item),
  );
  // A step retried in its lane starts again at its last attempt: attempt 1 again would fail into the timer of its retry, there already.
  const attempts = new Map<string, number>();
  for (const t of timers)
    if (t.retry) attempts.set(t.retry.task, Math.max(attempts.get(t.retry.task) ?? 1, t.retry.attempt));
  const done = children.map((c) => listed.has(c.result));
  const results = done.filter(Boolean).length;
  if (results >= g.count) return { done: true, dispatches: [] };
  const started = Math.min(g.count, g.lanes.window + results);
  // A backlog explains a child no worker took only so long after children were last sent.
  const trustBacklog = look.now() - (sentAt ?? Number.NEGATIVE_INFINITY) < look.maxQueueWaitMs;
  // A new generation, so the queue's deduplication does not swallow the second start of a child.
  const gen = 1 + Math.max(1, look.now());
  const dispatches: Dispatch[] = [];
  for (let i = 0; i < started; i++) {
    const c = children[i];
    // Children with a step in the frontier (after a failure, a pause, or a step that is not a task) go on from there.
    if (!c || done[i] || parked.has(i) || childInFrontier(flow, run.snapshot, g, i)) continue;
    const steps = await resolvedLaneSteps(store, flow, instanceId, g, i);
    const from = resumePoint(steps, (id) => listed.has(id), laneOf(flow, g, i));
    if (!from) continue;
    if (from.group && from.key !== undefined) {
      // In a group run in its lane, whose looks stopped (its starter died before the first, or the run was not running).
      await loadLaneFacts(store, flow, run, from.key);
      const inner = laneGroupIn(flow, run.snapshot, from.key, factsOf(run));
      const looks = timers.flatMap((t) => (t.look && t.look.group === from.key ? [t.look.n] : []));
      if (inner) await store.putTimer(instanceId, lookTimer(inner, 1 + Math.max(-1, ...looks), look.now(), look.now()));
      continue;
    }
    if (steps[0]?.qid === from.qid && startsParked(flow, g, i)) {
      // Started by no one yet (its starter died between its count and its timer): its timer starts it.
      await store.putTimer(instanceId, laneTimer(flow, g, i, from.qid, look.now()));
      continue;
    }
    const attempt = (from.key === undefined ? undefined : attempts.get(from.key)) ?? 1;
    const d: Dispatch = { ...laneDispatch(flow, run.snapshot, g, i, { ...from, attempt }), gen };
    const keys = steps.flatMap((x) => (x.key ? [x.key] : []));
    if (byClaims && ((await look.running(keys)) || (trustBacklog && (await look.queued(d))))) continue;
    dispatches.push(d);
  }
  return { done: false, dispatches };
}

/** The id of look `n` at the fork `group` run in a lane (see `LaneTimer.look`). */
export const lookTimerId = (group: string, n: number): string => `${group}~look~${n}`;

/**
 * Look `n` at group `g`, a fork run in a lane (see `LaneTimer.look`), due
 * `dueAt`: a timer of the child that the fork is a step of, so that child
 * counts as parked while its fork runs. `sentAt`: when the branches were
 * last sent.
 */
function lookTimer(g: LaneGroup, n: number, dueAt: number, sentAt: number, seen = 0): Omit<LaneTimer, 'firedAt'> {
  const outer = g.outer as NonNullable<LaneGroup['outer']>;
  return {
    id: lookTimerId(g.key, n),
    dueAt,
    parent: outer.parent,
    item: outer.item,
    look: { group: g.key, n, sentAt, ...(seen > 0 ? { seen } : {}) },
  };
}

/** How long after a look at a fork run in a lane the next one is due: a check period (see `laneCheckMs`). */
function lookPeriodMs(flow: AnyFlow, run: RunState, g: LaneGroup): number {
  return laneCheckMs(flow, g.lanes.qid, run.snapshot.redispatchAfterMs);
}

/**
 * Starts a fork or map run in a lane (see `laneFork`, `laneMap`) whose
 * child's step before it (or its items task) just put its output: a map's
 * count (see `mapCountId`), its first look, due a check period later, then
 * the dispatches of its first window of children (returned, to send). A
 * crash between the look and the dispatches leaves children that no one
 * sent, which that look starts. A map of no items ends at once (see
 * {@link endLaneGroup}). Nothing is committed to the run's journal.
 */
export async function startLaneGroup(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  now: number,
): Promise<{ readonly dispatches: Dispatch[]; readonly run: RunState }> {
  const instanceId = run.snapshot.instanceId;
  const node = compileFlow(flow).nodes.get(g.lanes.qid);
  if (isMapGroup(flow, g)) {
    await store.putValue(instanceId, mapCountId(g.key), g.count);
    run.values.set(mapCountId(g.key), g.count);
  } else if (node && forkInputVaries(flow, node)) {
    // The output of the loop or route before it: a reference its branches' workers read back (see `forkInputId`).
    await store.putValue(instanceId, forkInputId(g.key), g.lanes.input);
    run.values.set(forkInputId(g.key), g.lanes.input);
  }
  if (g.count === 0) {
    const end = await endLaneGroup(store, flow, run, g, { now: () => now });
    const ended = end.ended;
    const after = ended ? [...(ended.next ? [ended.next] : []), ...dispatchesOf(ended.effects)] : [];
    return { dispatches: end.after ? [end.after] : after, run: ended?.run ?? run };
  }
  await store.putTimer(instanceId, lookTimer(g, 0, now + lookPeriodMs(flow, run, g), now));
  // Its first window, each child as a count would start it (a child that starts with a delay, on its lane timer).
  const window = Array.from({ length: g.lanes.window }, (_, i) => startChild(store, flow, run, g, i, now));
  return { dispatches: (await Promise.all(window)).flatMap((c) => c.dispatches), run };
}

/** Whether a group is a map's items (else a fork's branches). */
function isMapGroup(flow: AnyFlow, g: LaneGroup): boolean {
  return compileFlow(flow).nodes.get(g.lanes.qid)?.step.kind === 'map';
}

/** The value id whose presence says a group run in a lane ended: a fork's join's output, a map's end (see `mapEndId`). */
function groupDoneId(flow: AnyFlow, g: LaneGroup): string {
  return isMapGroup(flow, g) ? mapEndId(flow, g.lanes.qid, g.lanes.idx) : outputId(g.key);
}

/** What follows a group run in a lane once every child is counted (see {@link endLaneGroup}). */
interface GroupEnd {
  /** The step to send in the child's lane: a fork's join, the step after a map. */
  readonly after?: Dispatch;
  /**
   * What ending a map wrote, other than its next step: the count of the
   * child it ends (when this writer's put created its result), the start
   * of the fork after it (its branches' dispatches in `effects`), or the
   * child's commit that joins the frontier. Its effects are to send.
   */
  readonly ended?: Counted;
}

/**
 * What follows a group run in a lane (see `laneFork`, `laneMap`) once every
 * child is counted, in its child's lane: a fork's join, on its branches'
 * results; after a map, on its items' results: when a step that runs in
 * the lane follows it, its done mark, put if absent, then that step; when
 * a fork run in the lane follows it, its done mark, then that fork's start
 * (see {@link startLaneGroup}; a crash between the two is repaired by the
 * child's group's look, which finds the fork's input from the map's
 * results, see `forkInputFound`); when it ends its child, that child's
 * result, which counts it (see {@link putMapResult}); else the child joins
 * the frontier with the map's end (see {@link joinLaneGroup}, `ended`), no
 * done mark put: until that commit lands, the map's look sees its counter
 * full and commits it. Nothing when the child is no longer in its lane.
 */
async function endLaneGroup(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  options: Pick<CommitOptions, 'now' | 'chain'>,
): Promise<GroupEnd> {
  const outerGroup = g.outer ? laneGroupIn(flow, run.snapshot, g.outer.parent, factsOf(run)) : undefined;
  if (!g.outer || !outerGroup) return {};
  const results = laneResults(flow, g);
  if (!isMapGroup(flow, g))
    return { after: laneDispatch(flow, run.snapshot, outerGroup, g.outer.item, { qid: g.lanes.qid, input: results }) };
  const next = laneNext(g.lanes.qid, compileFlow(flow).nodes);
  if (!next) {
    const counted = await putMapResult(store, flow, run, g, options);
    return counted ? { ended: counted } : {};
  }
  const fork = forkAfterMap(flow, g);
  if (!runsInLane(next) && !fork) {
    const joined = await joinLaneGroup(store, flow, run, g, { now: options.now, ended: true });
    return { ended: { effects: joined.effects, run: joined.run } };
  }
  await store.putValue(run.snapshot.instanceId, mapDoneId(g.key), true);
  if (!fork)
    return { after: laneDispatch(flow, run.snapshot, outerGroup, g.outer.item, { qid: next.qid, input: results }) };
  const started = await startLaneGroup(store, flow, run, fork, options.now());
  const effects: Effect[] = started.dispatches.map((dispatch) => ({ type: 'dispatch', dispatch }));
  return { ended: { effects, run: started.run } };
}

/** A stored value, or `undefined` when there is none. */
export function readValue(store: InstanceStore, instanceId: string, id: string): Promise<unknown> {
  return store.getValues(instanceId, [id]).then(
    (values) => values.get(id),
    (e: unknown) => {
      if (e instanceof ValueMissingError) return undefined;
      throw e;
    },
  );
}

/** Whether a value is stored under `id`. */
export async function hasValue(store: InstanceStore, instanceId: string, id: string): Promise<boolean> {
  return (await store.listValueIds(instanceId, id)).includes(id);
}

/**
 * The number of items of the map `key` run in a lane (see `mapCountId`),
 * or `undefined` before its items task put its output. A count missing
 * beside the items (its writer died between the two puts) is put from them.
 */
async function mapCount(store: InstanceStore, instanceId: string, key: string): Promise<number | undefined> {
  const count = await readValue(store, instanceId, mapCountId(key));
  if (typeof count === 'number') return count;
  const items = await readValue(store, instanceId, outputId(key));
  if (!Array.isArray(items)) return undefined;
  await store.putValue(instanceId, mapCountId(key), items.length);
  return items.length;
}

/** The counts of the maps run in lanes a run has read (see `LaneFacts`), from its values. */
export function factsOf(run: RunState): LaneFacts {
  return (id) => run.values.get(id);
}

/**
 * Reads into the run's values the count of each map run in a lane that
 * the group `key` is, or is nested in (see `laneMap`), so that
 * `laneGroupIn` resolves it: a read for each count not read yet, nothing
 * for a group with no such map around it.
 */
export async function loadLaneFacts(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  key: string | undefined,
): Promise<void> {
  const nodes = compileFlow(flow).nodes;
  const instanceId = run.snapshot.instanceId;
  // The group and the groups around it, outermost first: a fact of one is found from its child's resolved steps.
  const chain: { key: string; node: CompiledNode; idx: readonly number[] }[] = [];
  for (let k = key; k !== undefined; ) {
    const at = stepOfKey(nodes, k);
    if (!at) break;
    chain.unshift({ key: k, ...at });
    k = laneParentKey(flow, at.node.qid, at.idx);
  }
  for (const { key: k, node, idx } of chain) {
    // A group of the frontier needs none.
    if (laneGroupOf(run.snapshot, k)) continue;
    if (laneMap(node) && !run.values.has(mapCountId(k))) {
      const count = await mapCount(store, instanceId, k);
      if (count !== undefined) run.values.set(mapCountId(k), count);
    }
    if (laneFork(node) && forkInputVaries(flow, node) && !run.values.has(forkInputId(k))) {
      const input =
        (await readValue(store, instanceId, forkInputId(k))) ?? (await forkInputFound(store, flow, run, k, node, idx));
      if (input !== undefined) run.values.set(forkInputId(k), input);
    }
  }
}

/**
 * The input of the fork `key` run in a lane after a loop or a route, when
 * its starter died before putting it (see `forkInputId`): the output of the
 * step before it, as its child's resolved steps say, put for the next
 * reader; `undefined` while that step has no output.
 */
async function forkInputFound(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  key: string,
  node: CompiledNode,
  idx: readonly number[],
): Promise<Ref | undefined> {
  const child = laneChildOf(flow, node.qid, idx);
  const outer = child ? laneGroupIn(flow, run.snapshot, child.parent, factsOf(run)) : undefined;
  if (!child || !outer) return undefined;
  const steps = await resolvedLaneSteps(store, flow, run.snapshot.instanceId, outer, child.item);
  const at = steps.findIndex((x) => x.group && x.key === key);
  const before = at > 0 ? steps[at - 1] : undefined;
  if (!before?.id || !before.out || !(await hasValue(store, run.snapshot.instanceId, before.id))) return undefined;
  await store.putValue(run.snapshot.instanceId, forkInputId(key), before.out);
  return before.out;
}

/**
 * A look at a fork or map run in a lane (see `LaneTimer.look`), as
 * `checkLanes` looks at a group of the frontier, with no commit: nothing
 * when the group no longer runs in the lane (a fork's join's output, or a
 * map's done mark, is there, or its child joined the frontier); what
 * follows it (see {@link endLaneGroup}), when every child is counted or
 * has its result (its counter died before sending it, or its message was
 * lost) and no worker holds it nor, while a backlog explains it, waits for
 * it; else the children that stopped, started again (see
 * `stalledChildren`; a map's, only once its counter stood still since the
 * look before). Each look but the last puts the next (put if absent: a
 * pass that dies before firing this one puts it once), a check period
 * later; a paused run's group is only looked at again.
 *
 * @returns the dispatches to send.
 */
async function lookInLane(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  l: LaneLookTimer,
  look: LaneLook,
): Promise<{ readonly dispatches: Dispatch[]; readonly effects: readonly Effect[]; readonly run: RunState }> {
  const s = run.snapshot;
  const nothing = { dispatches: [], effects: [], run };
  await loadLaneFacts(store, flow, run, l.group);
  const g = laneGroupIn(flow, s, l.group, factsOf(run));
  if (!g?.outer || (s.status !== 'RUNNING' && s.status !== 'PAUSED')) return nothing;
  if (await hasValue(store, s.instanceId, groupDoneId(flow, g))) return nothing;
  const now = look.now();
  const next = (sentAt: number, seen = l.seen ?? 0) =>
    store.putTimer(s.instanceId, lookTimer(g, l.n + 1, now + lookPeriodMs(flow, run, g), sentAt, seen));
  if (s.status === 'PAUSED') {
    await next(l.sentAt);
    return nothing;
  }
  const found = await lookAtGroup(store, flow, run, g, look, { seen: l.seen ?? 0, sentAt: l.sentAt });
  const dispatches = found.dispatches;
  let ended: Counted | undefined;
  if (found.done) {
    const end = await endLaneGroup(store, flow, run, g, { now: look.now });
    const after = end.after;
    const gen = 1 + Math.max(1, now);
    // As for its children, a backlog in its queue explains a step no worker took only so long after they were sent.
    const trustBacklog = now - l.sentAt < look.maxQueueWaitMs;
    const waits = after && ((await look.running([after.key])) || (trustBacklog && (await look.queued(after))));
    if (after && !waits) dispatches.push({ ...after, gen });
    // What the map's end wrote (its child's result, the fork after it, its commit): this look sends what it started.
    ended = end.ended;
    if (ended?.next) dispatches.push(ended.next);
  }
  await next(dispatches.length > 0 ? now : l.sentAt, found.counted);
  return { dispatches, effects: ended?.effects ?? [], run: ended?.run ?? run };
}

/**
 * Commits what a fork or map run in a lane (see `laneFork`, `laneMap`)
 * skipped: the completion of its child's step before the fork (for a fork
 * that starts its child, `lanes-started`), or of the map's items task with
 * its count, with which the child joins the frontier (as it did before
 * such groups ran in lanes), and the group starts there, in lanes, with the
 * same counter, so its children's results and counts carry over (its
 * children are sent again; one that already ran finds its outputs). Done
 * before anything of the group is committed to the run's journal (a
 * failure, a hold, a step that needs the reducer): the reducer only knows
 * groups of the frontier. A group run in the lane of another such group
 * joins with it, outermost first. Nothing is committed when the group
 * ended (a late duplicate of one of its steps: the child went on).
 * Idempotent: a child already in the frontier takes no second join.
 *
 * @returns the run after the commits, and their effects (the fork's branches' dispatches).
 */
export async function joinLaneGroup(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  options: Pick<CommitOptions, 'now'> & {
    /** The map `g` ended (every item counted): it joins with its end, and the reducer enters the step after it. */
    readonly ended?: boolean;
  },
): Promise<{ readonly run: RunState; readonly effects: readonly Effect[] }> {
  if (!g.outer) return { run, effects: [] };
  const instanceId = run.snapshot.instanceId;
  await loadLaneFacts(store, flow, run, g.outer.parent);
  let outer = laneGroupIn(flow, run.snapshot, g.outer.parent, factsOf(run));
  if (!outer) return { run, effects: [] };
  const effects: Effect[] = [];
  let current = run;
  if (outer.outer) {
    const up = await joinLaneGroup(store, flow, current, outer, { now: options.now });
    current = up.run;
    effects.push(...up.effects);
    outer = laneGroupIn(flow, current.snapshot, g.outer.parent, factsOf(current));
    if (!outer) return { run: current, effects };
  }
  const item = g.outer.item;
  if (await hasValue(store, instanceId, groupDoneId(flow, g))) return { run: current, effects };
  if (firstFork(flow, outer, item)?.key === g.key) {
    // The fork starts its child: the child starts in the frontier, with it.
    const r = await commit(
      store,
      flow,
      current,
      () => [{ type: 'lanes-started', key: outer.key, items: [item] }],
      options,
    );
    return { run: r.run, effects: [...effects, ...r.effects] };
  }
  const steps = await resolvedLaneSteps(store, flow, instanceId, outer, item);
  const map = isMapGroup(flow, g);
  const own = steps.findIndex((x) => x.key === g.key);
  // A map that ended joins with its end once: not when its child went past it (a step after it has its output; a
  // late look). Its done mark, put once the child joined or went past, stops its looks.
  const mark = () => store.putValue(instanceId, mapDoneId(g.key), true);
  if (options.ended && map && (await passedFrom(store, instanceId, steps, own + 2))) {
    await mark();
    return { run: current, effects };
  }
  const prev = steps[own - 1];
  // A fork right after a map run in the lane: the map's end started it. That map joins, and ends, first.
  const mapBefore =
    !map && prev?.group && compileFlow(flow).nodes.get(prev.qid)?.step.kind === 'map' ? prev.key : undefined;
  // The step to commit: a map's own items task, with its count; for a fork, the task before it, or the items task of
  // the map before it.
  const at = map ? own : mapBefore !== undefined ? own - 2 : own - 1;
  const before = steps[at];
  const input = stepInput(steps, at, laneOf(flow, outer, item));
  if (own < 0 || at < 0 || !before?.key || !input) return { run: current, effects };
  const timers = await store.listTimers(instanceId, `${before.key}#`);
  const attempt = Math.max(
    1,
    ...timers.flatMap((t) => (t.retry && t.retry.task === before.key ? [t.retry.attempt] : [])),
  );
  const lane = { parent: outer.key, qid: before.qid, idx: laneOf(flow, outer, item).idx, input };
  // What the step's output decides (a loop's end), as its own commit would say; a map's count.
  const count = map ? g.count : mapBefore !== undefined ? await mapCount(store, instanceId, mapBefore) : undefined;
  const control =
    count !== undefined
      ? { control: { count } }
      : { control: controlOf(flow, before.qid, await readValue(store, instanceId, before.id ?? outputId(before.key))) };
  // The map whose end this commit records too: the reducer ends it at once (every item is counted).
  const ends = options.ended && map ? g.key : mapBefore;
  const r = await commit(
    store,
    flow,
    current,
    () => [
      { type: 'task-completed', key: before.key as string, attempt, lane, ...control },
      ...(ends !== undefined ? [{ type: 'lanes-joined' as const, key: ends }] : []),
    ],
    { now: options.now },
  );
  // The ended map's items, which its start in the frontier sends again, have their results: none is sent.
  effects.push(
    ...r.effects.filter((e) => e.type !== 'dispatch' || ends === undefined || e.dispatch.lane?.parent !== ends),
  );
  if (options.ended && map && childInFrontier(flow, r.run.snapshot, outer, item)) await mark();
  return { run: r.run, effects };
}

/**
 * Skips a task with an operator-supplied output (see `skipTask`), and counts
 * it when it is the last step of a child run in lanes that had joined the
 * frontier (a failed item or branch): the parent goes on as if it had run.
 *
 * @returns the skip's commit, with the effects of the count added.
 */
export async function skipAndCount(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  taskKey: string,
  output: unknown,
  options: { readonly now: () => number; readonly watch?: boolean; readonly actor?: string },
): Promise<Commit> {
  const before = await loadRun(store, flow, instanceId);
  const t = before && Object.hasOwn(before.snapshot.tasks, taskKey) ? before.snapshot.tasks[taskKey] : undefined;
  const lane = before && t ? laneOfTask(flow, before.snapshot, t.qid, t.idx) : undefined;
  const r = await skipTask(store, flow, instanceId, taskKey, output, {
    ...options,
    ...(before ? { known: before } : {}),
  });
  // Only a child's last step counts it.
  const end = t && lane ? laneNextAfter(flow, { qid: t.qid, key: taskKey, input: t.input }, output) : undefined;
  if (!t || !lane || end?.kind !== 'end') return r;
  const counted = await endChild(
    store,
    flow,
    r.run,
    { ...lane, key: taskKey, created: r.valueCreated === true, result: end.result },
    { now: options.now },
  );
  if (!counted) return r;
  const started: Effect[] = counted.next ? [{ type: 'dispatch', dispatch: counted.next }] : [];
  return { ...r, run: await compactRun(store, counted.run), effects: [...r.effects, ...started, ...counted.effects] };
}

/** What the reaper does for a claim of a child in its lane whose worker died (see {@link laneClaimExpired}). */
export type LaneDeath =
  /** Nothing: the claim says nothing of a step to run (the child went on, another worker runs it, the run is not running). */
  | { readonly kind: 'none' }
  /** A lane timer, put if absent, sends the step again: the same attempt after a lapse (due at once), the next after its backoff. */
  | { readonly kind: 'timer'; readonly created: boolean; readonly id?: string; readonly dueAt?: number }
  /**
   * The attempt failed and the retry policy has no other: the child joins
   * the frontier with the failure (`event`, which fails the run as a
   * failure of its worker would); `dispatch` is the step's, for its dead letter.
   */
  | {
      readonly kind: 'failed';
      readonly event: RunEvent;
      readonly dispatch: Dispatch;
      /** The run after the join of the fork run in a lane the step is in, if it is (see {@link joinLaneGroup}), and its effects. */
      readonly run: RunState;
      readonly effects: readonly Effect[];
    };

/**
 * A claim expired on a step of a child run in lanes (read consistently: its
 * worker died holding it). Such a step is not in the frontier, so the
 * reaper's redispatch of a frontier task does not reach it, and the look at
 * its parent would start it again at the same attempt forever: a task that
 * kills its worker would never end. So it is counted as in the frontier,
 * on the step the child stopped at (see `resumePoint`; the chain that held
 * the claim ran it, or a step before it), at its current attempt (the last
 * its lane timers retried it at):
 *
 * - an expired reservation of a chain still at its first step (the worker
 *   may have died before running it, see `WorkerDeps.reserveTtlMs`) is a lapse:
 *   a lane timer due now, `<key>#<attempt>~<fence>`, sends the same attempt
 *   again; the `RESERVATION_LAPSES`-th lapse of one attempt counts as a
 *   death instead;
 * - an expired lease, or a reservation of a chain past its first step, is
 *   a death: the attempt failed (`WorkerLostError`);
 *   its retry's lane timer, `<key>#<next attempt>` as a worker's failure
 *   puts it, waits for the backoff; with no retry left, the child joins the
 *   frontier with the failure, which fails the run.
 *
 * Idempotent: each timer names the claim it records (`LaneRetry.lostClaim`),
 * a later pass over the same claim (its reaper died before releasing it)
 * puts nothing, and the failure's commit is the reducer's to judge.
 */
export async function laneClaimExpired(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  claim: Claim,
  look: Pick<LaneLook, 'now' | 'running'>,
): Promise<LaneDeath> {
  const none = { kind: 'none' } as const;
  const s = run.snapshot;
  const nodes = compileFlow(flow).nodes;
  const step = stepOfKey(nodes, claim.taskKey);
  if (s.status !== 'RUNNING' || !step || Object.hasOwn(s.tasks, claim.taskKey)) return none;
  await loadLaneFacts(store, flow, run, laneParentKey(flow, step.node.qid, step.idx));
  const lane = laneOfTask(flow, s, step.node.qid, step.idx, factsOf(run));
  const g = lane ? laneGroupIn(flow, s, lane.parent, factsOf(run)) : undefined;
  if (!g || !lane || childInFrontier(flow, s, g, lane.item)) return none;
  const instanceId = s.instanceId;
  const steps = await resolvedLaneSteps(store, flow, instanceId, g, lane.item);
  const ids = steps.flatMap((x) => (x.id ? [x.id] : []));
  const stored = new Set(
    await store.listValueIds(instanceId, commonPrefix([...ids, laneResultId(flow, g, lane.item)])),
  );
  if (stored.has(laneResultId(flow, g, lane.item))) return none;
  const from = resumePoint(steps, (id) => stored.has(id), laneOf(flow, g, lane.item));
  const at = from?.key === undefined ? -1 : steps.findIndex((x) => x.key === from.key);
  const held = steps.findIndex((x) => x.key === claim.taskKey);
  // The chain that held the claim started at `held`: it may have reached `at`, not a step before its own.
  // In a fork run in its lane: that fork's look sees to its branches.
  if (!from?.key || from.group || at < 0 || held < 0 || held > at) return none;
  // Its output is there: it ran, and its worker died after (its commit is what runs again, see `resumePoint`).
  if (stored.has(outputId(from.key))) return none;
  if (await look.running(steps.flatMap((x) => (x.key ? [x.key] : [])))) return none;
  const key = from.key;
  const timers = await store.listTimers(instanceId, `${key}#`);
  const attempt = Math.max(1, ...timers.flatMap((t) => (t.retry?.task === key ? [t.retry.attempt] : [])));
  // A claim left by an older attempt of this step says nothing of the current one.
  if (held === at && claim.attempt < attempt) return none;
  // A pass that recorded this claim's death and died before releasing it: the record is there.
  const lostClaim = `${claim.taskKey}~${claim.fence}`;
  if (timers.some((t) => t.retry?.lostClaim === lostClaim)) return { kind: 'timer', created: false };
  const now = look.now();
  const retry = (next: number, message: string) => ({
    task: key,
    attempt: next,
    failedAt: now,
    worker: claim.workerId,
    error: { name: WORKER_LOST.lease.name, message },
    lostClaim,
  });
  const lapses = timers.filter((t) => t.retry?.lapse && t.retry.task === key && t.retry.attempt === attempt).length;
  // Past the chain's first step the worker was running, whatever its claim's state (as for a task run inline in the frontier).
  if (claim.state === 'reserved' && held === at && lapses + 1 < RESERVATION_LAPSES) {
    const id = `${key}#${attempt}~${claim.fence}`;
    const put = await store.putTimer(instanceId, {
      id,
      dueAt: now,
      parent: g.key,
      item: lane.item,
      retry: { ...retry(attempt, 'the worker holding this step stopped before renewing its reservation'), lapse: true },
    });
    return { kind: 'timer', created: put === 'created', id, dueAt: now };
  }
  const lost = claim.state === 'reserved' && held === at ? WORKER_LOST.reservations : WORKER_LOST.lease;
  const backoffMs = retryBackoff(resolveRetry(taskOf(nodes.get(from.qid) ?? step.node).options.retry), {
    instanceId,
    key,
    attempt,
    used: attempt,
    retryable: true,
  });
  if (backoffMs !== undefined) {
    const put = await store.putTimer(instanceId, {
      id: `${key}#${attempt + 1}`,
      dueAt: now + backoffMs,
      parent: g.key,
      item: lane.item,
      retry: retry(attempt + 1, lost.message),
    });
    return { kind: 'timer', created: put === 'created' };
  }
  const dispatch = laneDispatch(flow, s, g, lane.item, { ...from, attempt });
  const item = laneItemOf(flow, dispatch, g);
  if (!item) return none;
  // The reducer knows only groups of the frontier: a group run in a lane joins it first.
  const joined = await joinLaneGroup(store, flow, run, g, { now: look.now });
  return {
    kind: 'failed',
    event: { type: 'task-failed', key, attempt, error: lost, lane: item },
    dispatch,
    run: joined.run,
    effects: joined.effects,
  };
}
