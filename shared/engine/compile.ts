import type { AnyFlow, BodyNode, StepNode } from './definition.ts';
import { outputId } from './refs.ts';
import type { TaskDef } from './task.ts';

/**
 * The continuation graph of a flow. Every step gets a qualified id (`qid`),
 * unique in the whole tree:
 *
 * - a step of the root flow: its id (`charge`);
 * - a step of a child flow, or of a flow used as a branch body: the owner's
 *   id, `/`, the step's id (`ship/label`);
 * - a step inside a map body: under the placeholder `map[]`, which a task key
 *   fills with the item index (`resize[3]`, `resize[3]/upload`).
 *
 * A task key is its qid with the map indices filled in, plus `@n` for the
 * n-th loop iteration. Every node knows its `next` sibling and who continues
 * when its sequence ends (its `owner`).
 */

export type Owner =
  | { readonly kind: 'root' }
  | { readonly kind: 'fork'; readonly qid: string; readonly index: number }
  | { readonly kind: 'route'; readonly qid: string }
  | { readonly kind: 'child'; readonly qid: string }
  | { readonly kind: 'map'; readonly qid: string };

export interface CompiledNode {
  readonly qid: string;
  readonly step: StepNode;
  readonly next: string | null;
  /** The step before it in its sequence (`null` for a sequence's first). */
  readonly prev: string | null;
  readonly owner: Owner;
  /** fork: the first qid of each branch. */
  readonly branchHeads?: readonly string[];
  /** route: the first qid of each key's branch. */
  readonly routeHeads?: Readonly<Record<string, string>>;
  readonly fallbackHead?: string;
  /** child: first qid of the child flow; map: first qid of the item body. */
  readonly head?: string;
  /**
   * map: the value-id template (its item index as `[]`) of an item's
   * result: the output id of the body's last step when it is a task (or a
   * fork's join); when the items run in lanes, their result's (see
   * {@link LaneShape.results}).
   */
  readonly itemResultId?: string;
  /**
   * map or fork whose children run in lanes: each child (a map's item, a
   * fork's branch) is a sequence that starts with a task (or a delay, then
   * a task) and ends with a task (or a task, then a delay; or a fork run
   * in the lane, see {@link laneFork}; or a loop, or a route or a map run
   * in the lane, see {@link resultApart}), so its tasks run outside the
   * run's journal, and its other steps (a signal wait that does not wait
   * in the lane, see `laneWaitOf`; a route whose
   * branches do not all start and end with a task, a fork or map whose
   * children start with a delay) through it (see `Lanes` in
   * `snapshot.ts`). A nested child flow counts as its steps in place (see
   * {@link laneSequence}); a loop, and a route whose branches all start
   * and end with a task, run in the lane (see {@link runsInLane}); so do a
   * fork whose branches run in lanes, first or after a task, a loop, a
   * route or a map run in the lane (see {@link laneFork}), and a map whose
   * items run in lanes (see {@link laneMap}). The first and last qid of each child's
   * sequence: one pair for a map (every item runs the one body), one per
   * branch for a fork.
   */
  readonly lanes?: LaneShape;
  /**
   * Set on a route, or a fork, that runs in the lane of the child it is a
   * step of (see {@link laneRoute}, {@link laneFork}), computed once here.
   */
  readonly inLane?: true;
}

/** See {@link CompiledNode.lanes}. */
export interface LaneShape {
  /** The first step of each sequence (a task, or a delay before a task; inside the child flow that comes first, if one does). */
  readonly heads: readonly string[];
  /** The last step of each sequence (a task, or a delay after a task, a loop, a route or a fork run in the lane). */
  readonly lasts: readonly string[];
  /**
   * The value-id template (map indices as `[]`) of each sequence's result,
   * put if absent when the child ends (see {@link laneResultTemplate}).
   */
  readonly results: readonly string[];
}

export interface CompiledFlow {
  readonly flow: AnyFlow;
  readonly first: string;
  readonly nodes: ReadonlyMap<string, CompiledNode>;
  /**
   * Steps whose output is read by a deterministic value id, so committed
   * under it (put if absent, the first put wins): the last step of a map
   * body, when it is a task or a join (a map item's result, read by
   * template), and every task of a child run in lanes that is a step of
   * the child's own sequence (the last one's output is the child's result;
   * the others are how a step in the lane hands over to the next, and how
   * the reaper finds where a stalled child stopped).
   */
  readonly outputsById: ReadonlySet<string>;
  /** The last step of each child run in lanes: its output is the child's result, and its put counts the child. */
  readonly laneResults: ReadonlySet<string>;
}

const cache = new WeakMap<AnyFlow, CompiledFlow>();

/** Compiles a built flow (memoized per flow object). */
export function compileFlow(flow: AnyFlow): CompiledFlow {
  const hit = cache.get(flow);
  if (hit) return hit;
  const nodes = new Map<string, CompiledNode>();
  const first = compileSeq(flow.steps, '', { kind: 'root' }, nodes);
  const laneResults = new Set([...nodes.values()].flatMap((n) => n.lanes?.lasts ?? []));
  markLaneForks(nodes);
  const inLanes = [...nodes.values()].flatMap((n) => (n.lanes?.heads ?? []).flatMap((head) => laneTasks(head, nodes)));
  const outputsById = new Set([
    ...[...nodes.values()].flatMap((n) => (n.step.kind === 'map' && n.head ? resultById(n.head, nodes) : [])),
    ...inLanes.map((n) => n.qid),
  ]);
  const compiled = { flow, first, nodes, outputsById, laneResults };
  cache.set(flow, compiled);
  return compiled;
}

function compileBody(body: BodyNode, qid: string, owner: Owner, nodes: Map<string, CompiledNode>): string {
  if (body.kind === 'task') {
    nodes.set(qid, { qid, step: { kind: 'task', id: body.id, task: body.task }, next: null, prev: null, owner });
    return qid;
  }
  return compileSeq(body.flow.steps, `${qid}/`, owner, nodes);
}

function compileSeq(
  steps: readonly StepNode[],
  prefix: string,
  owner: Owner,
  nodes: Map<string, CompiledNode>,
): string {
  const qids = steps.map((s) => `${prefix}${s.id}`);
  steps.forEach((step, i) => {
    const qid = qids[i] as string;
    const base = { qid, step, next: qids[i + 1] ?? null, prev: qids[i - 1] ?? null, owner };
    switch (step.kind) {
      case 'fork': {
        const branchHeads = step.branches.map((b, index) =>
          compileBody(b, `${prefix}${b.id}`, { kind: 'fork', qid, index }, nodes),
        );
        const lanes = laneShape(branchHeads, nodes);
        nodes.set(qid, { ...base, branchHeads, ...(lanes ? { lanes } : {}) });
        break;
      }
      case 'route': {
        const routeHeads: Record<string, string> = {};
        for (const b of step.branches) {
          routeHeads[b.key] = compileBody(b.body, `${prefix}${b.body.id}`, { kind: 'route', qid }, nodes);
        }
        const fallbackHead = step.fallback
          ? compileBody(step.fallback, `${prefix}${step.fallback.id}`, { kind: 'route', qid }, nodes)
          : undefined;
        const route: CompiledNode = { ...base, routeHeads, ...(fallbackHead ? { fallbackHead } : {}) };
        nodes.set(qid, branchesRunInLane(route, nodes) ? { ...route, inLane: true } : route);
        break;
      }
      case 'child':
        nodes.set(qid, { ...base, head: compileSeq(step.flow.steps, `${qid}/`, { kind: 'child', qid }, nodes) });
        break;
      case 'map': {
        const head = compileBody(step.body, `${qid}[]`, { kind: 'map', qid }, nodes);
        const lanes = laneShape([head], nodes);
        // In lanes, an item's result is put by its id when it ends (a last delay's: the reaper puts it).
        const itemResultId = lanes?.results[0] ?? resultById(head, nodes).map(outputId)[0];
        nodes.set(qid, { ...base, head, ...(itemResultId ? { itemResultId } : {}), ...(lanes ? { lanes } : {}) });
        break;
      }
      default:
        nodes.set(qid, base);
    }
  });
  return qids[0] as string;
}

/**
 * The lanes of a map or fork whose every child sequence (from `heads`)
 * starts with a task, or with a delay and then a task, or with a fork
 * that runs in the lane (see {@link laneFork}), and ends with a task, or
 * with a task and then a delay, or with such a fork (alone, or after a
 * task, a loop or a route run in the lane), or with a loop, or with a
 * route run in the lane (see {@link laneRoute}); else `undefined`. A
 * child's sequence is its steps in the order they run, with the steps of
 * a nested child flow in place of the flow (see {@link laneSequence}). A
 * child's first task runs in its lane, and its result is put by its id
 * (see {@link laneResultTemplate}).
 */
function laneShape(heads: readonly string[], nodes: ReadonlyMap<string, CompiledNode>): LaneShape | undefined {
  const firsts: string[] = [];
  const lasts: string[] = [];
  const results: string[] = [];
  for (const head of heads) {
    const seq = laneSequence(head, nodes);
    const [first, second] = seq;
    const [beforeLast, last] = seq.length > 1 ? seq.slice(-2) : [undefined, seq[0]];
    const runs = (n: CompiledNode | undefined) => n !== undefined && runsInLane(n);
    // A fork first or last runs in the lane (see `laneFork`): its branches start the child, its join's output is its
    // result. First, its branches start with the child's dispatch (see `laneStart`): none may start with a delay.
    const forkFirst = first?.step.kind === 'fork' && startsInLanes(first, nodes);
    // A map first: its items task is the child's first step (in the lane, see `laneMap`, or joining the frontier
    // before a step that needs it). Alone, it is the whole child when it runs in the lane.
    const mapFirst =
      first?.step.kind === 'map' && first.lanes !== undefined && (second !== undefined || resultApart(first, nodes));
    const starts = runs(first) || (first?.step.kind === 'delay' && runs(second)) || forkFirst || mapFirst;
    const forks =
      last?.step.kind === 'fork' &&
      last.lanes !== undefined &&
      (beforeLast === undefined || runsInLane(beforeLast) || mapRunsInLane(beforeLast));
    const ends =
      last?.step.kind === 'task' ||
      (last?.step.kind === 'delay' && beforeLast?.step.kind === 'task') ||
      forks ||
      (last !== undefined && resultApart(last, nodes));
    if (!starts || !ends || !first || !last) return undefined;
    firsts.push(first.qid);
    lasts.push(last.qid);
    results.push(laneResultTemplate(last, nodes));
  }
  return heads.length > 0 ? { heads: firsts, lasts, results } : undefined;
}

/**
 * Whether a child run in lanes whose last step is `last` has its result
 * under an id of its own (see {@link laneResultTemplate}): the output id of
 * the step that ends it varies with the run (a loop's last iteration,
 * `<key>@<n>`; the last task of the branch a route run in the lane chose),
 * or is no step's output (a map run in the lane: its items' results, see
 * {@link laneMap}). Pure, static.
 */
export function resultApart(last: CompiledNode, _nodes: ReadonlyMap<string, CompiledNode>): boolean {
  return last.step.kind === 'loop' || laneRoute(last) || mapRunsInLane(last);
}

/**
 * Whether the map `node`, a step of a child run in lanes, runs in that
 * child's lane (see {@link laneMap}): its own items run in lanes (those
 * that start with a delay start on lane timers, see `startLaneGroup` in
 * `runtime/lanes.ts`). Static: the same test marks such maps and shapes
 * the children they end or start.
 */
function mapRunsInLane(node: CompiledNode): boolean {
  return node.step.kind === 'map' && node.lanes !== undefined;
}

/** Whether a map's or fork's children run in lanes, none starting with a delay (see `startsParked` in `lanes.ts`). */
function startsInLanes(node: CompiledNode, nodes: ReadonlyMap<string, CompiledNode>): boolean {
  return node.lanes?.heads.every((h) => nodes.get(h)?.step.kind !== 'delay') === true;
}

/**
 * The value-id template (map indices as `[]`) of the result of a child run
 * in lanes whose last step is `last`: that step's output id (a task's; a
 * last delay's, the output of the task before it, put by the reaper when
 * the delay ends; a fork's, its join's); for a step whose last output id
 * varies ({@link resultApart}), `<its output id>:result` (step ids hold no
 * `:`, so no task's output id has this form), put by the writer of the
 * step that ends the child (see `runtime/lanes.ts`). Pure, static.
 */
export function laneResultTemplate(last: CompiledNode, nodes: ReadonlyMap<string, CompiledNode>): string {
  const id = outputId(last.qid);
  return resultApart(last, nodes) ? `${id}:result` : id;
}

/** The last step of the sequence from `head`, when its output is put by its id as a map item's result: a task, a fork's join. */
function resultById(head: string, nodes: ReadonlyMap<string, CompiledNode>): string[] {
  const last = lastOf(head, nodes);
  return last && (last.step.kind === 'task' || last.step.kind === 'fork') ? [last.qid] : [];
}

/** The last node of the sequence starting at `head`. */
function lastOf(head: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode | undefined {
  return sequence(head, nodes).at(-1);
}

/** The nodes of the sequence starting at `head`, first to last (not the steps nested in them). */
export function sequence(head: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode[] {
  const seq: CompiledNode[] = [];
  for (let n = nodes.get(head); n; n = n.next ? nodes.get(n.next) : undefined) seq.push(n);
  return seq;
}

/*
 * A child run in lanes sees a nested child flow (`thenFlow`) as its steps in
 * place: the flow adds no state of its own (the reducer enters its first
 * step and leaves after its last), so its steps are steps of the child's
 * own sequence, and its output is its last step's. The four functions below
 * walk a sequence that way; a node of kind `child` never appears in it.
 */

/** The step that runs first when `qid` is entered: itself, or the first step of the child flow it is (nested flows included). */
export function flatFirst(qid: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode | undefined {
  let n = nodes.get(qid);
  while (n?.step.kind === 'child' && n.head !== undefined) n = nodes.get(n.head);
  return n;
}

/** The step whose output is `qid`'s: itself, or the last step of the child flow it is (nested flows included). */
export function flatLast(qid: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode | undefined {
  let n = nodes.get(qid);
  while (n?.step.kind === 'child' && n.head !== undefined) n = lastOf(n.head, nodes);
  return n;
}

/** The step that runs after `qid` in its sequence, leaving the child flows it ends and entering those that come next. */
export function flatNext(qid: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode | undefined {
  let n = nodes.get(qid);
  while (n && n.next === null && n.owner.kind === 'child') n = nodes.get(n.owner.qid);
  return n?.next ? flatFirst(n.next, nodes) : undefined;
}

/** The step that ran before `qid` in its sequence, across child flows as {@link flatNext}. */
export function flatPrev(qid: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode | undefined {
  let n = nodes.get(qid);
  while (n && n.prev === null && n.owner.kind === 'child') n = nodes.get(n.owner.qid);
  return n?.prev ? flatLast(n.prev, nodes) : undefined;
}

/** The steps of the sequence starting at `head`, in the order they run, with nested child flows' steps in place of them. */
export function laneSequence(head: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode[] {
  const seq: CompiledNode[] = [];
  for (let n = flatFirst(head, nodes); n; n = flatNext(n.qid, nodes)) seq.push(n);
  return seq;
}

/**
 * Whether a route runs in the lane of the child it is a step of (a map
 * item, a fork branch run in lanes): each of its branches (the default's
 * too) starts and ends with a task, child flows opened. Then its key
 * function runs in the lane as a task, its output put by its id, and the
 * branch that key names follows in the lane, on the route's input; the
 * step after the route runs on the branch's last output, also put by its
 * id. A route that is not such (a branch that starts or ends with another
 * step) makes its child join the frontier, as any step that needs the
 * reducer. Pure, static.
 */
export function laneRoute(node: CompiledNode): boolean {
  return node.inLane === true && node.step.kind === 'route';
}

/**
 * Whether a fork runs in the lane of the child it is a step of (a map
 * item, a fork branch run in lanes): its own branches run in lanes (see
 * {@link CompiledNode.lanes}), and a task, a loop, a route or a map run in
 * the lane comes right before it in the child's sequence, or nothing (it
 * starts the child). Then its branches start, as a group of lanes of its
 * own, from that step's output, put by its id (a map's: its items'
 * results, when its end starts the fork; or from the child's input), with
 * no commit to the run's journal; its join runs in the lane when its last
 * branch is counted, its output put by its id like a task's. Pure, static.
 */
export function laneFork(node: CompiledNode): boolean {
  return node.inLane === true && node.step.kind === 'fork';
}

/**
 * Whether a map runs in the lane of the child it is a step of (a map item,
 * a fork branch run in lanes): its own items run in lanes (see
 * {@link CompiledNode.lanes}), none starting with a delay. Then its items
 * task runs in the lane as a task does (its output, the items, put by its
 * id); its items start, as a group of lanes of its own, with no commit to
 * the run's journal; and when the last is counted, on the items' results:
 * the step after the map follows in the child's lane when it runs there
 * (see {@link runsInLane}); a fork run in the lane after it starts (see
 * {@link laneFork}); a map that ends the child puts the child's result
 * (see {@link resultApart}); else the child joins the frontier with the
 * map's end (one journal entry: its items task and its end), and the
 * reducer enters the step after it. Pure, static.
 */
export function laneMap(node: CompiledNode): boolean {
  return node.inLane === true && node.step.kind === 'map';
}

/** Marks the forks and maps that run in the lane of the child they are a step of (see {@link laneFork}, {@link laneMap}). */
function markLaneForks(nodes: Map<string, CompiledNode>): void {
  const steps = [...nodes.values()].flatMap((n) => (n.lanes?.heads ?? []).flatMap((head) => laneNodes(head, nodes)));
  const maps = steps.filter((x) => mapRunsInLane(x));
  for (const n of maps) nodes.set(n.qid, { ...n, inLane: true });
  // First in the child (its branches start from the child's input, with its dispatch: none may start with a delay,
  // see `laneStart`), or after a task, a loop, a route or a map run in the lane (from its output; a map's end starts
  // it, see `endLaneGroup` in `runtime/lanes.ts`; branches that start with a delay start on lane timers).
  const forks = steps.filter((x) => {
    const prev = flatPrev(x.qid, nodes);
    const starts = prev === undefined ? startsInLanes(x, nodes) : runsInLane(prev);
    return x.step.kind === 'fork' && x.lanes !== undefined && starts;
  });
  for (const n of forks) nodes.set(n.qid, { ...n, inLane: true });
}

/** Whether every branch of the route `node` (its default's too) starts and ends with a task, child flows opened. */
function branchesRunInLane(node: CompiledNode, nodes: ReadonlyMap<string, CompiledNode>): boolean {
  return routeBranchHeads(node).every((head) => {
    const seq = laneSequence(head, nodes);
    return seq[0]?.step.kind === 'task' && seq.at(-1)?.step.kind === 'task';
  });
}

/**
 * Whether a step of a child runs in the child's lane as a task does: a
 * task; a route run in the lane (its key function, see {@link laneRoute});
 * a loop (each iteration of its body, the next one in the lane too, its
 * output put by its id, `<key>@<iteration>`); a map run in the lane (its
 * items task, see {@link laneMap}). Pure, static.
 */
export function runsInLane(node: CompiledNode): boolean {
  return node.step.kind === 'task' || node.step.kind === 'loop' || laneRoute(node) || laneMap(node);
}

/** The first step of each branch of a route, its default's last. */
export function routeBranchHeads(node: CompiledNode): string[] {
  return [...Object.values(node.routeHeads ?? {}), ...(node.fallbackHead ? [node.fallbackHead] : [])];
}

/**
 * The step after `qid` in the lane of its child: the next step of its
 * sequence, leaving the child flows (see {@link flatNext}) and the
 * branches of routes run in the lane (see {@link laneRoute}) that `qid`
 * ends; `undefined` after the child's last step. Pure, static.
 */
export function laneNext(qid: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode | undefined {
  for (let n = nodes.get(qid); n; ) {
    const next = flatNext(n.qid, nodes);
    if (next) return next;
    let top: CompiledNode | undefined = n;
    while (top?.owner.kind === 'child') top = nodes.get(top.owner.qid);
    const route = top?.owner.kind === 'route' ? nodes.get(top.owner.qid) : undefined;
    if (!route || !laneRoute(route)) return undefined;
    n = route;
  }
  return undefined;
}

/**
 * Every step of a child's sequence from `head`, with the steps of every
 * branch of its routes run in the lane (see {@link laneRoute}) after the
 * route: whatever path a child takes, its steps are among these. Pure, static.
 */
export function laneNodes(head: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode[] {
  return laneSequence(head, nodes).flatMap((n) =>
    laneRoute(n) ? [n, ...routeBranchHeads(n).flatMap((h) => laneNodes(h, nodes))] : [n],
  );
}

/** The steps of a child's sequence from `head` that run in its lane as tasks (see {@link runsInLane}), with the joins of its forks that run in the lane (see {@link laneFork}). */
function laneTasks(head: string, nodes: ReadonlyMap<string, CompiledNode>): CompiledNode[] {
  return laneNodes(head, nodes).filter((n) => runsInLane(n) || laneFork(n));
}

/**
 * Whether a map or fork step runs its children in lanes (see
 * {@link CompiledNode.lanes}): a property of the step and its body alone,
 * wherever it sits in a flow. Pure.
 */
export function runsChildrenInLanes(step: StepNode): boolean {
  if (step.kind !== 'map' && step.kind !== 'fork') return false;
  let inLanes = stepLanes.get(step);
  if (inLanes === undefined) {
    const nodes = new Map<string, CompiledNode>();
    compileSeq([step], '', { kind: 'root' }, nodes);
    inLanes = nodes.get(step.id)?.lanes !== undefined;
    stepLanes.set(step, inLanes);
  }
  return inLanes;
}

/** {@link runsChildrenInLanes} per step (steps are immutable): the API and the reaper's pools describe flows often. */
const stepLanes = new WeakMap<StepNode, boolean>();

/** The task key of iteration `iter` of the loop whose key is `key`; with `''`, the prefix every iteration's key starts with. */
export const iterKey = (key: string, iter: number | ''): string => `${key}@${iter}`;

/** The iteration of a loop's task key (see {@link iterKey}): 0 for a key without one. */
export function iterOf(key: string): number {
  const at = key.lastIndexOf('@');
  const n = at < 0 ? Number.NaN : Number(key.slice(at + 1));
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** The loop's key of an iteration's task key (see {@link iterKey}). */
export const loopKeyOf = (key: string): string => key.slice(0, key.lastIndexOf('@'));

/** Fills the `[]` placeholders of a qid with map indices, outermost first. */
export function fillKey(qid: string, idx: readonly number[]): string {
  let i = 0;
  return qid.replace(/\[\]/g, () => `[${idx[i++] ?? ''}]`);
}

/**
 * The step and map indices of a task key (see {@link fillKey}; a loop's
 * iteration suffix, `@<iter>`, dropped), or `undefined` when the key names
 * no step of the flow.
 */
export function stepOfKey(
  nodes: ReadonlyMap<string, CompiledNode>,
  key: string,
): { readonly node: CompiledNode; readonly idx: readonly number[] } | undefined {
  const base = key.includes('@') ? loopKeyOf(key) : key;
  const idx = [...base.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]));
  const node = nodes.get(base.replace(/\[\d+\]/g, '[]'));
  return node && fillKey(node.qid, idx) === base ? { node, idx } : undefined;
}

/** The task definition that runs for a node's task key. */
export function taskOf(node: CompiledNode): TaskDef<unknown, unknown> {
  const s = node.step;
  switch (s.kind) {
    case 'task':
      return s.task;
    case 'fork':
      return s.join;
    case 'route':
      return s.keyTask;
    case 'loop':
      return s.body;
    case 'map':
      return s.items;
    default:
      throw new Error(`step '${node.qid}' (${s.kind}) runs no task`);
  }
}

/** Number of `[]` placeholders in a qid: how many map scopes enclose it. */
export function mapDepth(qid: string): number {
  return qid.split('[]').length - 1;
}
