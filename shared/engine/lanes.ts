import {
  type CompiledNode,
  compileFlow,
  fillKey,
  flatFirst,
  flatLast,
  flatPrev,
  iterKey,
  iterOf,
  type LaneShape,
  laneFork,
  laneMap,
  laneNext,
  laneNodes,
  laneResultTemplate,
  laneRoute,
  laneSequence,
  mapDepth,
  type Owner,
  resultApart,
  routeBranchHeads,
  runsInLane,
  stepOfKey,
  taskOf,
} from './compile.ts';
import type { AnyFlow, StepNode } from './definition.ts';
import { taskTimeoutMs } from './describe.ts';
import { dispatchEffect } from './dispatch.ts';
import { outputId, type Ref } from './refs.ts';
import type { Dispatch, LaneItem, Lanes, Snapshot, TaskActivity } from './snapshot.ts';

/**
 * Maps and forks whose children run in lanes (see {@link Lanes}), as one
 * thing: a parent with `count` children, child `i` a sequence that starts
 * with a task (or a delay, then a task) and ends with a task (or a task,
 * then a delay; or a loop, or a route or fork run in the lane, see
 * `laneShape`), with its own first step, input and result id (the
 * protocol, who writes what, is in `runtime/lanes.ts`). A map is a parent whose children
 * share one body; a fork, one whose children (branches) each have theirs.
 * Pure: the reducer, the worker and the reaper all read lanes through here.
 */

/** A map or fork that runs its children in lanes, as the snapshot holds it. */
export interface LaneGroup {
  /** The map's or fork's key (`Dispatch.lane.parent`). */
  readonly key: string;
  readonly count: number;
  readonly lanes: Lanes;
  /**
   * Set on a fork that runs in the lane of a child of another group (see
   * `laneFork`): that child, which the fork is a step of. Such a group is
   * not in the frontier: its state is static (its key, its branches, its
   * input: the output of the task before it), its counter and its
   * branches' results are in the store, and its `lanes` look fields
   * (`checkAt`, `seen`, `sentAt`) mean nothing (its look is a lane timer,
   * see `LaneLook` in `runtime/lanes.ts`).
   */
  readonly outer?: { readonly parent: string; readonly item: number };
}

/**
 * The values a caller has read that resolving groups run in lanes needs,
 * by value id; `undefined` for one not read: the number of items of a map
 * run in a lane (see {@link mapCountId}), the input of a fork run in a
 * lane after a loop or a route (see {@link forkInputId}). Such a group
 * resolves only with it.
 */
export type LaneFacts = (valueId: string) => unknown;

/**
 * The value id of the number of items of the map `key` run in a lane (put
 * before its items start). Step ids hold no `:`, so no task's output id
 * has this one's form.
 */
export const mapCountId = (key: string): string => `${outputId(key)}:n`;

/** The value id of the mark put when every item of the map `key` run in a lane is counted: the step after it may follow. */
export const mapDoneId = (key: string): string => `${outputId(key)}:done`;

/**
 * The value id whose presence says the map `qid` at map indices `idx`, run
 * in a lane (see `laneMap`), ended: when it ends its child, that child's
 * result (its items' results, see `laneResultTemplate`), put by whoever
 * ends the map; else its done mark ({@link mapDoneId}). Pure, static.
 */
export function mapEndId(flow: AnyFlow, qid: string, idx: readonly number[]): string {
  const nodes = compileFlow(flow).nodes;
  const node = nodes.get(qid);
  return node && !laneNext(qid, nodes) ? fillKey(laneResultTemplate(node, nodes), idx) : mapDoneId(fillKey(qid, idx));
}

/**
 * The value id of the input of the fork `key` run in a lane after a loop
 * or a route (a reference to the output of the step before it, which
 * depends on how far the loop went or which branch the route took: put
 * before its branches start).
 */
export const forkInputId = (key: string): string => `${outputId(key)}:in`;

/** Whether the fork `node` run in a lane starts from a reference known only at run time (see {@link forkInputId}). */
export function forkInputVaries(flow: AnyFlow, node: CompiledNode): boolean {
  const prev = flatPrev(node.qid, compileFlow(flow).nodes);
  return prev !== undefined && prev.step.kind !== 'task';
}

/**
 * The group run in lanes named `key` (a `Dispatch.lane.parent`): the map
 * or fork of the frontier (see {@link laneGroupOf}), else the fork or map
 * that runs in the lane of a child of another group (see `laneFork`,
 * `laneMap`), while that child is in its lane (not in the frontier); a map
 * only with its count in `facts`, a fork after a loop or a route with its
 * input. Pure.
 */
export function laneGroupIn(
  flow: AnyFlow,
  frontier: Pick<Snapshot, 'tasks' | 'waits' | 'maps' | 'forks'>,
  key: string,
  facts?: LaneFacts,
): LaneGroup | undefined {
  const top = laneGroupOf(frontier, key);
  if (top) return top;
  const nodes = compileFlow(flow).nodes;
  const at = stepOfKey(nodes, key);
  if (!at || !(laneFork(at.node) || laneMap(at.node))) return undefined;
  const { node, idx } = at;
  const outer = laneOfTask(flow, frontier, node.qid, idx, facts);
  const outerGroup = outer ? laneGroupIn(flow, frontier, outer.parent, facts) : undefined;
  if (!outer || !outerGroup || childInFrontier(flow, frontier, outerGroup, outer.item)) return undefined;
  if (laneMap(node)) {
    const count = facts?.(mapCountId(key));
    return typeof count === 'number' ? laneMapGroup(node, idx, outer, count) : undefined;
  }
  // A fork starts from the child's input when it starts the child, else from the output of the step before it.
  const prev = flatPrev(node.qid, nodes);
  const input =
    prev === undefined
      ? laneOf(flow, outerGroup, outer.item).input
      : forkInputVaries(flow, node)
        ? facts?.(forkInputId(key))
        : { v: outputId(fillKey(prev.qid, idx)) };
  return isRef(input) ? laneForkGroup(node, idx, outer, input) : undefined;
}

/** Whether a stored value is a reference (see `Ref`): an object with one of its keys. */
function isRef(x: unknown): x is Ref {
  return typeof x === 'object' && x !== null && ['v', 'c', 'each', 'all'].some((k) => Object.hasOwn(x, k));
}

/** The group of the map `node` run in the lane of child `outer`, at map indices `idx`, of `count` items (see {@link laneGroupIn}). */
function laneMapGroup(
  node: CompiledNode,
  idx: readonly number[],
  outer: { readonly parent: string; readonly item: number },
  count: number,
): LaneGroup {
  const key = fillKey(node.qid, idx);
  const window = node.step.kind === 'map' ? Math.min(count, node.step.maxConcurrency) : count;
  return {
    key,
    count,
    // Look fields unused (see `outer`).
    lanes: { qid: node.qid, idx, input: { v: outputId(key) }, window, checkAt: 0, seen: 0 },
    outer: { parent: outer.parent, item: outer.item },
  };
}

/**
 * The group of the fork run in the lane (see `laneFork`) that comes right
 * after the map `g` run in a lane, if one does: its end starts the fork,
 * from its items' results. Pure.
 */
export function forkAfterMap(flow: AnyFlow, g: LaneGroup): LaneGroup | undefined {
  const next = laneNext(g.lanes.qid, compileFlow(flow).nodes);
  return next && laneFork(next) && g.outer
    ? laneForkGroup(next, g.lanes.idx, g.outer, laneResults(flow, g))
    : undefined;
}

/**
 * The key of the group whose child the step `qid` at map indices `idx` is
 * a step of, wherever that group runs (see {@link laneOfTask}, which also
 * says whether it runs in lanes). Pure, static.
 */
export function laneParentKey(flow: AnyFlow, qid: string, idx: readonly number[]): string | undefined {
  return laneChildOf(flow, qid, idx)?.parent;
}

/**
 * The child the step `qid` at map indices `idx` is a step of: its group's
 * key and its index there, wherever that group runs (see
 * {@link laneOfTask}, which also says whether it runs in lanes). Pure, static.
 */
export function laneChildOf(
  flow: AnyFlow,
  qid: string,
  idx: readonly number[],
): { readonly parent: string; readonly item: number } | undefined {
  const owner = laneOwner(flow, qid);
  if (owner?.kind === 'map')
    return { parent: fillKey(owner.qid, idx.slice(0, -1)), item: idx[idx.length - 1] as number };
  if (owner?.kind === 'fork') return { parent: fillKey(owner.qid, idx), item: owner.index };
  return undefined;
}

/**
 * The group of the fork `node` run in the lane of child `outer`, at map
 * indices `idx` (see {@link laneGroupIn}), whose branches start from
 * `input`: the child's input, for a fork that starts it, else the output
 * of the step before it.
 */
function laneForkGroup(
  node: CompiledNode,
  idx: readonly number[],
  outer: { readonly parent: string; readonly item: number },
  input: Ref,
): LaneGroup {
  const count = node.branchHeads?.length ?? 0;
  return {
    key: fillKey(node.qid, idx),
    count,
    // Look fields unused (see `outer`).
    lanes: { qid: node.qid, idx, input, window: count, checkAt: 0, seen: 0 },
    outer: { parent: outer.parent, item: outer.item },
  };
}

/** The map or fork `key` of a frontier, if it runs its children in lanes. */
export function laneGroupOf(frontier: Pick<Snapshot, 'maps' | 'forks'>, key: string): LaneGroup | undefined {
  const m = Object.hasOwn(frontier.maps, key) ? frontier.maps[key] : undefined;
  if (m?.lanes) return { key, count: m.count, lanes: m.lanes };
  const f = Object.hasOwn(frontier.forks, key) ? frontier.forks[key] : undefined;
  if (f?.lanes) return { key, count: f.results.length, lanes: f.lanes };
  return undefined;
}

/** Every map and fork of a frontier that runs its children in lanes. */
export function laneGroups(frontier: Pick<Snapshot, 'maps' | 'forks'>): LaneGroup[] {
  return [...Object.keys(frontier.maps), ...Object.keys(frontier.forks)].flatMap((key) => {
    const g = laneGroupOf(frontier, key);
    return g ? [g] : [];
  });
}

/** Child `item` of a group: its first and last step, its map indices, its input and its result's value id. */
export interface Lane {
  readonly head: string;
  readonly last: string;
  readonly idx: readonly number[];
  readonly input: Ref;
  /** Where the child's result is put (see `laneResultTemplate`). */
  readonly result: string;
}

function parentNode(flow: AnyFlow, g: LaneGroup): CompiledNode & { readonly lanes: LaneShape } {
  const node = compileFlow(flow).nodes.get(g.lanes.qid);
  if (!node?.lanes) throw new Error(`step '${g.lanes.qid}' of '${flow.name}' does not run in lanes`);
  return node as CompiledNode & { readonly lanes: LaneShape };
}

/** Child `item` of a group. A map's item `i` is its body on element `i` of the items; a fork's is its branch `i`. */
export function laneOf(flow: AnyFlow, g: LaneGroup, item: number): Lane {
  const node = parentNode(flow, g);
  const { input, idx } = g.lanes;
  if (node.step.kind === 'map') {
    // A map's items are one stored value (the map task's output): item `i` starts from its element `i`.
    const items = input as Extract<Ref, { readonly v: string }>;
    const at = [...idx, item];
    return {
      head: node.lanes.heads[0] as string,
      last: node.lanes.lasts[0] as string,
      idx: at,
      input: { v: items.v, at: [...(items.at ?? []), item] },
      result: fillKey(node.lanes.results[0] as string, at),
    };
  }
  return {
    head: node.lanes.heads[item] as string,
    last: node.lanes.lasts[item] as string,
    idx,
    input,
    result: fillKey(node.lanes.results[item] as string, idx),
  };
}

/**
 * The key of every step child `item` of a group may run, whatever branch
 * its routes take (see `laneNodes`): their common prefix finds every value
 * and timer the child put, with one listing.
 */
export function laneKeys(flow: AnyFlow, g: LaneGroup, item: number): string[] {
  const { head, idx } = laneOf(flow, g, item);
  return laneNodes(head, compileFlow(flow).nodes).map((n) => fillKey(n.qid, idx));
}

/** The value id of child `item`'s result, put if absent when it ends (see `laneResultTemplate`). */
export function laneResultId(flow: AnyFlow, g: LaneGroup, item: number): string {
  return laneOf(flow, g, item).result;
}

/** What a group's children make together, once all are counted: a map's results array, a fork's join input. */
export function laneResults(flow: AnyFlow, g: LaneGroup): Ref {
  const node = parentNode(flow, g);
  if (node.step.kind === 'map') {
    // The item index is the one placeholder left unfilled: the template of every item's result.
    return { each: fillKey(node.lanes.results[0] as string, g.lanes.idx), n: g.count };
  }
  return { all: Array.from({ length: g.count }, (_, i) => ({ v: laneResultId(flow, g, i) })) };
}

/** The child of a group run in lanes that the task `qid` at map indices `idx` is a step of, if any. */
export function laneOfTask(
  flow: AnyFlow,
  frontier: Pick<Snapshot, 'tasks' | 'waits' | 'maps' | 'forks'>,
  qid: string,
  idx: readonly number[],
  facts?: LaneFacts,
): { readonly parent: string; readonly item: number } | undefined {
  const found = laneChildOf(flow, qid, idx);
  return found && laneGroupIn(flow, frontier, found.parent, facts) ? found : undefined;
}

/** The owner of the sequence the step `qid` is in, above the child flows and lane routes it is nested in (see `laneSequence`, `laneRoute`). */
function laneOwner(flow: AnyFlow, qid: string): Owner | undefined {
  const nodes = compileFlow(flow).nodes;
  let n = nodes.get(qid);
  for (;;) {
    const owner = n?.owner;
    const up = owner && owner.kind !== 'root' ? nodes.get(owner.qid) : undefined;
    if (owner?.kind !== 'child' && !(owner?.kind === 'route' && up && laneRoute(up))) return owner;
    n = up;
  }
}

/**
 * The child of group `g` that the step `qid` at map indices `idx` is part of
 * (walking up its owners), or `undefined` when it is not under `g`.
 */
export function childOf(flow: AnyFlow, g: LaneGroup, qid: string, idx: readonly number[]): number | undefined {
  const nodes = compileFlow(flow).nodes;
  for (let n = nodes.get(qid); n && n.owner.kind !== 'root'; n = nodes.get(n.owner.qid)) {
    const o = n.owner;
    const depth = mapDepth(o.qid);
    if (o.qid !== g.lanes.qid || fillKey(o.qid, idx.slice(0, depth)) !== g.key) continue;
    return o.kind === 'fork' ? o.index : (idx[depth] as number);
  }
  return undefined;
}

/**
 * Whether child `item` of group `g` has gone on in the frontier (after a
 * failure or a pause of one of its steps, or from its first step that is
 * not a task): a task or a wait of it is there, or a nested map or fork of
 * it that runs its own children in lanes (any other nested map or fork has
 * a task or a wait of its children there).
 */
export function childInFrontier(
  flow: AnyFlow,
  frontier: Pick<Snapshot, 'tasks' | 'waits' | 'maps' | 'forks'>,
  g: LaneGroup,
  item: number,
): boolean {
  const mine = (a: { readonly qid: string; readonly idx: readonly number[] }) =>
    childOf(flow, g, a.qid, a.idx) === item;
  return (
    Object.values(frontier.tasks).some(mine) ||
    Object.values(frontier.waits).some(mine) ||
    laneGroups(frontier).some((nested) => nested.key !== g.key && mine(nested.lanes))
  );
}

/** A step of a child after its first, and its input (the output of the step before, by its value id). */
export interface LaneStep {
  readonly qid: string;
  readonly input: Ref;
  /** The attempt to run (a retry after a lane timer's backoff). @default 1 */
  readonly attempt?: number;
  /** For a loop: the iteration to run (its key ends with `@<iter>`). @default 0 */
  readonly iter?: number;
}

/**
 * The dispatch of child `item` of a group: its first step on its input (or
 * `step`), attempt 1. The reducer starts the first window with it, whoever
 * counts a child starts the next one, a step hands over to the next step,
 * and the reaper restarts a stalled child.
 */
export function laneDispatch(
  flow: AnyFlow,
  run: Pick<Snapshot, 'instanceId' | 'workflow'>,
  g: LaneGroup,
  item: number,
  step?: LaneStep,
): Dispatch {
  const lane = laneOf(flow, g, item);
  const node = compileFlow(flow).nodes.get(step?.qid ?? lane.head) as CompiledNode;
  const loop = node.step.kind === 'loop' ? { iter: step?.iter ?? 0 } : undefined;
  const key = loop ? iterKey(fillKey(node.qid, lane.idx), loop.iter) : fillKey(node.qid, lane.idx);
  const t: TaskActivity = {
    qid: node.qid,
    idx: lane.idx,
    input: step?.input ?? lane.input,
    attempt: step?.attempt ?? 1,
    state: 'dispatched',
    gen: 1,
    ...loop,
  };
  return { ...dispatchEffect(node, run, key, t).dispatch, lane: { parent: g.key, item } };
}

/**
 * The fork that child `item` of a group starts with, as a group of lanes
 * of its own, when that fork runs in the child's lane (see `laneFork`). Pure.
 */
export function firstFork(flow: AnyFlow, g: LaneGroup, item: number): LaneGroup | undefined {
  const lane = laneOf(flow, g, item);
  const node = compileFlow(flow).nodes.get(lane.head);
  return node && laneFork(node) ? laneForkGroup(node, lane.idx, { parent: g.key, item }, lane.input) : undefined;
}

/**
 * The dispatches that start child `item` of a group (see
 * {@link laneDispatch}): its first step's, or, when it starts with a fork
 * run in its lane ({@link firstFork}), the starts of that fork's branches.
 * Pure.
 */
export function laneStart(
  flow: AnyFlow,
  run: Pick<Snapshot, 'instanceId' | 'workflow'>,
  g: LaneGroup,
  item: number,
): Dispatch[] {
  const inner = firstFork(flow, g, item);
  if (!inner) return [laneDispatch(flow, run, g, item)];
  return Array.from({ length: inner.count }, (_, b) => laneStart(flow, run, inner, b)).flat();
}

/**
 * Whether child `item` of a group starts parked: its first step is a delay
 * (see `laneShape`). In the first window of a group of the frontier, it
 * waits there (its start is part of the group's start, or a journal entry,
 * `lanes-started`); started by a count, or in the first window of a group
 * run in a lane, it parks on its delay's lane timer (see `startChild` in
 * `runtime/lanes.ts`). Otherwise it starts from its dispatch
 * ({@link laneDispatch}), with no entry.
 */
export function startsParked(flow: AnyFlow, g: LaneGroup, item: number): boolean {
  return compileFlow(flow).nodes.get(laneOf(flow, g, item).head)?.step.kind === 'delay';
}

/** What a dispatch of a child in its lane tells the frontier when it joins it (a failure, a pause). */
export function laneItemOf(flow: AnyFlow, d: Dispatch, g: LaneGroup): LaneItem | undefined {
  if (d.lane?.parent !== g.key) return undefined;
  return { parent: g.key, qid: d.qid, idx: laneOf(flow, g, d.lane.item).idx, input: d.input };
}

/**
 * The delay that follows the task `qid` of a child run in lanes, when it
 * waits as a lane timer (`LaneTimer` in the instance store): it comes right
 * after the task and is followed by a task (see {@link backToLaneAfter}).
 * The task's output is put by its id, then the timer; the reaper fires the
 * timer when it is due and dispatches the task after the delay in the lane.
 * So the child never touches the run's journal for its delay. Pure, static.
 */
export function laneTimerAfter(flow: AnyFlow, qid: string): CompiledNode | undefined {
  const nodes = compileFlow(flow).nodes;
  const node = nodes.get(qid);
  const next = laneNext(qid, nodes);
  if (node?.step.kind !== 'task' || next?.step.kind !== 'delay') return undefined;
  return backToLaneAfter(flow, next.qid) || endsChild(flow, next.qid) ? next : undefined;
}

/** A signal wait step of a flow. */
export type SignalStep = Extract<StepNode, { readonly kind: 'signal' }>;

/**
 * Whether the signal wait `node` waits in the lane of the child it is a
 * step of (a map item, a fork branch run in lanes): it comes right after a
 * task, a loop, a route or a fork run in the lane, and a step that runs in
 * the lane follows it. Then the child parks on it with no commit to the
 * run's journal (see `runtime/lane-signals.ts`), and the step after it runs
 * in the lane on the signal's payload, put by the wait's output id. A wait
 * elsewhere in such a child makes it join the frontier, as any step that
 * needs the reducer. Pure, static.
 */
function waitsInLane(flow: AnyFlow, node: CompiledNode): boolean {
  const nodes = compileFlow(flow).nodes;
  if (node.step.kind !== 'signal') return false;
  const owner = laneOwner(flow, node.qid);
  const parent = owner && owner.kind !== 'root' ? nodes.get(owner.qid) : undefined;
  if ((owner?.kind !== 'map' && owner?.kind !== 'fork') || parent?.lanes === undefined) return false;
  const prev = flatPrev(node.qid, nodes);
  const next = laneNext(node.qid, nodes);
  const after =
    prev !== undefined && (prev.step.kind === 'task' || prev.step.kind === 'loop' || laneRoute(prev) || laneFork(prev));
  return after && next !== undefined && runsInLane(next);
}

/** The due time of the lane timer of a signal wait with no timeout (the last time a date holds): it only parks the child. */
export const NO_TIMEOUT_DUE = 8_640_000_000_000_000;

/** The step of the signal wait whose key is `key`, when it waits in its child's lane (see {@link waitsInLane}). Pure. */
export function laneWaitOf(flow: AnyFlow, key: string): SignalStep | undefined {
  const found = stepOfKey(compileFlow(flow).nodes, key);
  if (!found || key.includes('@') || found.node.step.kind !== 'signal') return undefined;
  return waitsInLane(flow, found.node) ? found.node.step : undefined;
}

/** The names of the signals a child run in lanes may wait for in its lane (see {@link waitsInLane}). Pure, static. */
export function laneWaitNames(flow: AnyFlow): ReadonlySet<string> {
  let names = waitNames.get(flow);
  if (!names) {
    const nodes = [...compileFlow(flow).nodes.values()];
    names = new Set(nodes.flatMap((n) => (n.step.kind === 'signal' && waitsInLane(flow, n) ? [n.step.signal] : [])));
    waitNames.set(flow, names);
  }
  return names;
}

/** {@link laneWaitNames} per flow. */
const waitNames = new WeakMap<AnyFlow, ReadonlySet<string>>();

/** The signal wait that follows the step `qid` of a child run in lanes (a task, a loop, a fork's join), when it waits in the lane (see {@link waitsInLane}). Pure, static. */
export function laneSignalAfter(flow: AnyFlow, qid: string): CompiledNode | undefined {
  const nodes = compileFlow(flow).nodes;
  const node = nodes.get(qid);
  const next = laneNext(qid, nodes);
  // The step that ended: a task (a route's branch ends with one), a loop's last iteration, a fork's join.
  const ended = node !== undefined && (node.step.kind === 'task' || node.step.kind === 'loop' || laneFork(node));
  return ended && next?.step.kind === 'signal' && waitsInLane(flow, next) ? next : undefined;
}

/**
 * Whether the step `qid` is a delay that ends a child run in lanes, right
 * after a task: the child's result is the delay's output (the task's), put
 * by the delay's id when it ends (see `laneShape`). Pure, static.
 */
export function endsChild(flow: AnyFlow, qid: string): boolean {
  const nodes = compileFlow(flow).nodes;
  const node = nodes.get(qid);
  if (node?.step.kind !== 'delay' || laneNext(qid, nodes) !== undefined) return false;
  return flatPrev(qid, nodes)?.step.kind === 'task' && compileFlow(flow).laneResults.has(qid);
}

/** Where a child goes in its lane after one of its steps succeeded (see {@link laneNextAfter}). */
export type LaneNext =
  /** The next step, in the lane, on `input` (a loop's next iteration, `iter`). */
  | { readonly kind: 'step'; readonly qid: string; readonly input: Ref; readonly iter?: number }
  /** The child parks on the lane timer of the delay that follows (see {@link laneTimerAfter}). */
  | { readonly kind: 'timer'; readonly delay: CompiledNode }
  /** The child parks in its lane on the signal wait that follows (see {@link laneSignalAfter}). */
  | { readonly kind: 'signal'; readonly wait: CompiledNode }
  /**
   * The step was the child's last: `result` is the child's result (the
   * step's output; a loop's, its value), put by its id, whose put counts
   * the child (see `endChild` in `runtime/lanes.ts`).
   */
  | { readonly kind: 'end'; readonly result: Ref }
  /**
   * The next step is a fork that runs in the lane (see `laneFork`): its
   * branches start, a group of lanes of their own (`group`), from the
   * step's output; the child waits in that group until its join runs. Or
   * the step was the items task of a map run in the lane (see `laneMap`):
   * its items start, a group of their own; the child waits in it until the
   * step after the map runs.
   */
  | { readonly kind: 'group'; readonly group: LaneGroup }
  /**
   * The child joins the frontier with the step's completion, committed to
   * the run's journal: the next step needs the reducer (a signal wait that
   * does not wait in the lane, see {@link laneSignalAfter}; a
   * fork or map that does not run in the lane, a route that does not run in
   * the lane, a delay not followed by a task), or the output decides something only the reducer
   * does (a route key with no branch, a loop that reached its bound and
   * fails, an output that is not what the step must return): the commit
   * fails the run, or fails the task, as it would in the frontier.
   */
  | { readonly kind: 'joins' };

/**
 * Where child of a group run in lanes goes after its step `d` (in its lane)
 * succeeded with `output`. After a task, the next step (or its delay's
 * lane timer, or the child's end); after a route's key function, the first
 * step of the branch it chose, on the route's input; after a loop's
 * iteration, the next iteration on its value (`LoopResult.again`), or the
 * step after the loop on it (`LoopResult.done`, or the bound reached with
 * `onMax: 'exit'`). Pure.
 */
export function laneNextAfter(
  flow: AnyFlow,
  d: Pick<Dispatch, 'qid' | 'key' | 'input' | 'lane'>,
  output: unknown,
): LaneNext {
  const nodes = compileFlow(flow).nodes;
  const node = nodes.get(d.qid);
  if (!node) return { kind: 'joins' };
  const own: Ref = { v: outputId(d.key) };
  const after = (input: Ref): LaneNext => {
    const delay = laneTimerAfter(flow, d.qid);
    if (delay) return { kind: 'timer', delay };
    const wait = laneSignalAfter(flow, d.qid);
    if (wait) return { kind: 'signal', wait };
    const next = laneNext(d.qid, nodes);
    if (!next) return { kind: 'end', result: input };
    if (laneFork(next) && d.lane) {
      const idx = stepOfKey(nodes, d.key)?.idx ?? [];
      return { kind: 'group', group: laneForkGroup(next, idx, d.lane, input) };
    }
    return runsInLane(next) ? { kind: 'step', qid: next.qid, input } : { kind: 'joins' };
  };
  const s = node.step;
  if (s.kind === 'map') {
    // The items: they start, a group of lanes of its own (none: the map ends at once); else the reducer fails it.
    // A map's items task never ends its child: in the frontier, the reducer starts its items.
    if (!laneMap(node) || !d.lane || !Array.isArray(output)) return { kind: 'joins' };
    const idx = stepOfKey(nodes, d.key)?.idx ?? [];
    return { kind: 'group', group: laneMapGroup(node, idx, d.lane, output.length) };
  }
  if (s.kind === 'loop') {
    const loop = (output as { loop?: unknown } | null)?.loop;
    const value: Ref = { ...own, at: ['value'] };
    const iter = iterOf(d.key);
    if (loop === 'again' && iter + 1 < s.maxIterations)
      return { kind: 'step', qid: d.qid, input: value, iter: iter + 1 };
    if (loop === 'done' || (loop === 'again' && s.onMax === 'exit')) return after(value);
    return { kind: 'joins' };
  }
  if (laneRoute(node)) {
    const head = routeHeadOf(flow, d.qid, output);
    return head ? { kind: 'step', qid: head.qid, input: d.input } : { kind: 'joins' };
  }
  return after(own);
}

/**
 * Whether the output of step `qid`, in a lane, decides where its child goes
 * next (a route's key, a loop's again or done), not only what the next step
 * reads: then the first output put by its id decides, whoever ran the step
 * (a re-run may return another), so the worker puts it before it decides.
 */
export function decidesLanePath(flow: AnyFlow, qid: string): boolean {
  const nodes = compileFlow(flow).nodes;
  const node = nodes.get(qid);
  return node !== undefined && (node.step.kind === 'loop' || laneRoute(node) || laneMap(node));
}

/**
 * The first step of the branch that the route `qid`'s key function chose
 * with `output` (its default's, for a key without a branch of its own), or
 * `undefined` when `output` is not a string or no branch takes it: then
 * the route's commit fails the run, as the reducer says.
 */
export function routeHeadOf(flow: AnyFlow, qid: string, output: unknown): CompiledNode | undefined {
  const nodes = compileFlow(flow).nodes;
  const node = nodes.get(qid);
  if (node?.step.kind !== 'route' || typeof output !== 'string') return undefined;
  const head =
    (Object.hasOwn(node.routeHeads ?? {}, output) ? node.routeHeads?.[output] : undefined) ?? node.fallbackHead;
  return head !== undefined ? flatFirst(head, nodes) : undefined;
}

/** A step of a child's own sequence (see {@link laneSteps}). */
export interface ChildStep {
  readonly qid: string;
  /** Its task key, for a task (the other steps run in the frontier, under no key of their own here). */
  readonly key?: string;
  /**
   * The value id whose presence says the child went past this step: a
   * task's output, put by its id (see `CompiledFlow.outputsById`); the mark
   * the reaper puts before a delay sends the child back to its lane (see
   * {@link backToLaneAfter}); the child's result, for a delay that ends it
   * (see {@link endsChild}); none for other steps.
   */
  readonly id?: string;
  /** Its output, when it is stored by id: a task's own; a delay's is its input (the task's before it, or the child's). */
  readonly out?: Ref;
  /** For a delay that goes back to the lane when it ends, or ends the child: the id of its lane timer, its key (see {@link laneTimerAfter}). */
  readonly timer?: string;
  /**
   * Set on a route run in the lane (see `laneRoute`), whose key function
   * is the step (its `out` is its input, which its branch starts from): the
   * steps after it are those of the branch its key chose, then the route's
   * next; listed only when the key is known (see {@link laneSteps}).
   */
  readonly route?: true;
  /**
   * Set on an iteration of a loop (its key ends with `@<iter>`; its `out`
   * is its value, which the next iteration, or the step after the loop,
   * starts from). The iterations after it are listed only when `loops`
   * says how far the loop went (see {@link laneSteps}).
   */
  readonly iter?: number;
  /**
   * Set on a fork run in the lane (see `laneFork`): its key is its join's,
   * whose output, put by its id, says the child went past it; `in` is the
   * join's input (its branches' results). The child is in the fork's own
   * group between the step before it and its join.
   */
  readonly group?: true;
  /** The step's input when it is not the output of the step before: a fork's join's. */
  readonly in?: Ref;
  /**
   * Set on the last entry of a child whose result has an id of its own
   * (see `resultApart`): not a step, the result (`id`, `out`) that the
   * writer of the child's last step puts after that step's output. A child
   * whose last step has its output and no result stopped between the two
   * puts: that step runs again, and its run puts the result.
   */
  readonly result?: true;
}
/*
 * A map run in the lane (see `laneMap`) is two steps of its child: its
 * items task (key and output as a task's), then its group (`group`, the
 * same key; `id` its end, see `mapEndId`: its done mark, or the child's
 * result when it ends the child; `out` its items' results, listed only
 * once its count is known, see `laneSteps`).
 */

/** How far a loop of a child went (see {@link laneSteps}): its last iteration with an output, and whether the loop ended there. */
export interface LoopProgress {
  readonly last: number;
  readonly ended: boolean;
}

/**
 * The steps of child `item`'s own sequence, first to last: a nested child
 * flow's in place of it (see `laneSequence`); after a route run in the
 * lane, the steps of the branch its key function chose, when `known.routes`
 * has that key (by the route's task key), else the list ends with the
 * route; for a loop, its iterations up to the next one to run, when
 * `known.loops` says how far it went (by the loop's key without the
 * iteration), and the steps after it once it ended, else the list ends
 * with its first iteration. Not the steps nested in other steps. Once
 * the list reaches the child's end, a result with an id of its own ends it
 * (see {@link ChildStep.result}).
 */
export function laneSteps(
  flow: AnyFlow,
  g: LaneGroup,
  item: number,
  known: {
    readonly routes?: ReadonlyMap<string, string>;
    readonly loops?: ReadonlyMap<string, LoopProgress>;
    readonly counts?: ReadonlyMap<string, number>;
  } = {},
): ChildStep[] {
  const { head, last, idx, input, result } = laneOf(flow, g, item);
  const nodes = compileFlow(flow).nodes;
  const steps: ChildStep[] = [];
  // Lists the steps of the sequence from `first`; false when it stopped at a route whose key is not known.
  const walk = (first: string): boolean => {
    for (const n of laneSequence(first, nodes)) {
      const key = fillKey(n.qid, idx);
      const before = steps.at(-1)?.out ?? input;
      if (n.step.kind === 'task') steps.push({ qid: n.qid, key, id: outputId(key), out: { v: outputId(key) } });
      else if (n.step.kind === 'loop') {
        const went = known.loops?.get(key);
        // Up to the iteration to run next: none past the bound (a loop that reached it and fails joined the frontier).
        const iterations =
          went === undefined ? 1 : went.ended ? went.last + 1 : Math.min(went.last + 2, n.step.maxIterations);
        for (let i = 0; i < iterations; i++) {
          const id = outputId(iterKey(key, i));
          steps.push({ qid: n.qid, key: iterKey(key, i), id, out: { v: id, at: ['value'] }, iter: i });
        }
        if (!went?.ended) return false;
      } else if (laneRoute(n)) {
        steps.push({ qid: n.qid, key, id: outputId(key), out: before, route: true });
        const chosen = known.routes?.get(key);
        const branch = chosen === undefined ? undefined : routeHeadOf(flow, n.qid, chosen);
        if (!branch || !walk(branch.qid)) return false;
      } else if (laneMap(n)) {
        steps.push({ qid: n.qid, key, id: outputId(key), out: { v: outputId(key) } });
        const count = known.counts?.get(key);
        const inner = count === undefined ? undefined : laneMapGroup(n, idx, { parent: g.key, item }, count);
        steps.push({
          qid: n.qid,
          key,
          id: mapEndId(flow, n.qid, idx),
          group: true,
          ...(inner ? { out: laneResults(flow, inner) } : {}),
        });
        if (!inner) return false;
      } else if (laneFork(n)) {
        const inner = laneForkGroup(n, idx, { parent: g.key, item }, before);
        steps.push({
          qid: n.qid,
          key,
          id: outputId(key),
          out: { v: outputId(key) },
          group: true,
          in: laneResults(flow, inner),
        });
      } else if (waitsInLane(flow, n)) {
        // A signal wait in the lane: its output, the signal's payload, put by its id, is the next step's input.
        steps.push({ qid: n.qid, id: outputId(key), out: { v: outputId(key) }, timer: key });
      } else if (backToLaneAfter(flow, n.qid) || endsChild(flow, n.qid))
        steps.push({ qid: n.qid, id: outputId(key), out: before, timer: key });
      else steps.push({ qid: n.qid });
    }
    return true;
  };
  const ended = walk(head);
  const lastNode = nodes.get(last);
  // A map that ends the child puts its result as its own end (see `mapEndId`): its group is the last entry.
  if (ended && lastNode && resultApart(lastNode, nodes) && !laneMap(lastNode))
    steps.push({ qid: last, id: result, out: { v: result }, result: true });
  return steps;
}

/**
 * Whether a child run in lanes goes back to its lane when its step `qid`
 * ends in the frontier: the next step is a task, and `qid` is a task (its
 * output is put by its id) or a delay right after a task (its output is
 * that task's, put by its id) or first in the child (its output is the
 * child's input). The task that follows is dispatched in the
 * lane on that output. The reaper marks a delay's passing (a value put
 * under the delay's output id, before the commit that fires it), so that a
 * child whose message to the next task is lost is started again after the
 * delay, not before it (see {@link resumePoint}). Pure, static.
 */
export function backToLaneAfter(flow: AnyFlow, qid: string): boolean {
  const nodes = compileFlow(flow).nodes;
  // A child flow ends with its last step (see `laneSequence`).
  const node = flatLast(qid, nodes);
  const next = node ? laneNext(node.qid, nodes) : undefined;
  if (!node || !next || !runsInLane(next)) return false;
  // A route run in the lane ended with its branch's last task (see `laneRoute`), a loop with its last iteration.
  if (runsInLane(node)) return true;
  // A delay passes on its input: the output of the task before it, or the child's input when it comes first.
  const prev = flatPrev(node.qid, nodes);
  return node.step.kind === 'delay' && (prev === undefined || prev.step.kind === 'task');
}

/** A child's result to put when its last delay ends (see {@link endsChild}): the delay's output id, its input, the parent. */
export interface LaneResult {
  readonly id: string;
  readonly from: Ref;
  readonly parent: string;
}

/**
 * What to put before firing the timers `keys` of a frontier, for the
 * delays among them of children run in lanes: the mark of each delay that
 * sends its child back to its lane (its output id, see
 * {@link backToLaneAfter}), and the result of each child that a delay ends
 * (see {@link endsChild}; a child whose step before it ran in the
 * frontier). Pure.
 */
export function laneDelayWrites(
  flow: AnyFlow,
  frontier: Pick<Snapshot, 'tasks' | 'waits' | 'maps' | 'forks'>,
  keys: readonly string[],
): { readonly marks: string[]; readonly results: LaneResult[] } {
  const marks: string[] = [];
  const results: LaneResult[] = [];
  for (const key of keys) {
    const w = Object.hasOwn(frontier.waits, key) ? frontier.waits[key] : undefined;
    const lane = w?.kind === 'delay' ? laneOfTask(flow, frontier, w.qid, w.idx) : undefined;
    if (!w || !lane) continue;
    if (backToLaneAfter(flow, w.qid)) marks.push(outputId(key));
    else if (endsChild(flow, w.qid)) results.push({ id: outputId(key), from: w.input, parent: lane.parent });
  }
  return { marks, results };
}

/** The input of step `at` of a child's own sequence: the output of the step before it, or the child's input. */
export function stepInput(steps: readonly ChildStep[], at: number, lane: Pick<Lane, 'input'>): Ref | undefined {
  return steps[at]?.in ?? (at === 0 ? lane.input : steps[at - 1]?.out);
}

/**
 * Where a child that is not in the frontier and has no result stopped,
 * from which of its steps' marks are stored (`has`, see
 * {@link ChildStep.id}): the step to run again and its input, or
 * `undefined` when there is nothing to run. After the last step `k` it went
 * past, the child runs step `k + 1` if it is a task (in its lane, or back in
 * it after a task or a delay in the frontier), on step `k`'s output. If
 * step `k + 1` is not a task, step `k` is a task that ran in the lane and
 * whose commit, which joins the frontier, was lost: it runs again (its
 * output is there already, and its commit follows).
 */
export function resumePoint(
  steps: readonly ChildStep[],
  has: (id: string) => boolean,
  lane: Pick<Lane, 'input'>,
):
  | { readonly qid: string; readonly key?: string; readonly input: Ref; readonly iter?: number; readonly group?: true }
  | undefined {
  let k = -1;
  steps.forEach((s, i) => {
    if (s.id !== undefined && has(s.id)) k = i;
  });
  const at = (i: number) => steps[i] as ChildStep;
  // A step to run again: its qid, key (a loop's names its iteration) and iteration, on `input`.
  const from = (x: ChildStep, input: Ref) =>
    x.key === undefined
      ? undefined
      : { qid: x.qid, key: x.key, input, ...(x.iter === undefined ? {} : { iter: x.iter }) };
  if (k === steps.length - 1) return undefined;
  // Not started: from its first step (a delay first is started by a commit, see `startsParked`; a fork first is
  // in its own group, see `laneStart`).
  const first = at(0);
  if (k < 0 && first.group && first.key !== undefined && first.in)
    return { qid: first.qid, key: first.key, input: first.in, group: true };
  if (k < 0) return from(first, lane.input) ?? { qid: first.qid, input: lane.input };
  const passed = at(k);
  const next = at(k + 1);
  // In a group run in the lane (see `ChildStep.group`): a fork's join follows on its branches' results, the step
  // after a map on its items' results, once all are counted.
  const groupInput = next.in ?? passed.out;
  if (next.group && next.key !== undefined && groupInput !== undefined)
    return { qid: next.qid, key: next.key, input: groupInput, group: true };
  if (next.key !== undefined && passed.out !== undefined) return from(next, passed.out);
  const input = stepInput(steps, k, lane);
  return input !== undefined ? from(passed, input) : undefined;
}

/**
 * Whether every step of a child runs under a claim named by one of that
 * child's own step keys, so that the claims tell whether a child is running:
 * true for a fork (each branch starts from a queue message of its own, see
 * {@link startsOwnChain}, and its steps run in that chain or in chains of
 * their own); false for a map, whose next item may run inline in the chain
 * of the item whose count started it.
 */
export function laneClaimsTell(flow: AnyFlow, g: LaneGroup): boolean {
  return parentNode(flow, g).step.kind === 'fork';
}

/**
 * Whether a dispatch must start a chain of its own rather than run inline in
 * the chain whose commit dispatched it: a fork branch's start does, so that
 * the claims of the branch's own keys tell whether it runs (see
 * {@link laneClaimsTell}). A step handing over to the next step of the same
 * branch is not a commit's dispatch, and may run inline.
 */
export function startsOwnChain(flow: AnyFlow, d: Dispatch): boolean {
  return d.lane !== undefined && compileFlow(flow).nodes.get(d.qid)?.owner.kind === 'fork';
}

/** Slack over a lane's task timeouts before a group counts as stalled. */
const STALL_MARGIN_MS = 1_000;

/**
 * How long until the reaper looks at a group again. Where claims tell
 * whether a child runs ({@link laneClaimsTell}), the redispatch period, as
 * for a task in the frontier; else long enough that no child can still be
 * running when the counter has not moved (the longest child's task
 * timeouts, one after another), and never less than the redispatch period.
 * Pure.
 */
export function laneCheckMs(flow: AnyFlow, qid: string, redispatchAfterMs: number): number {
  const cf = compileFlow(flow);
  const node = cf.nodes.get(qid);
  if (node?.step.kind === 'fork') return redispatchAfterMs;
  // Every task of a child's own sequence, as if all ran in its lane one after another (a route's longest branch).
  const runMs = (head: string): number =>
    laneSequence(head, cf.nodes).reduce((sum, n) => {
      if (n.step.kind === 'task' || laneMap(n)) return sum + taskTimeoutMs(taskOf(n));
      if (n.step.kind === 'loop') return sum + n.step.maxIterations * taskTimeoutMs(taskOf(n));
      if (!laneRoute(n)) return sum;
      return sum + taskTimeoutMs(taskOf(n)) + Math.max(0, ...routeBranchHeads(n).map(runMs));
    }, 0);
  const longest = Math.max(0, ...(node?.lanes?.heads ?? []).map(runMs));
  return Math.max(redispatchAfterMs, longest + STALL_MARGIN_MS);
}
