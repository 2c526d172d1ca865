import type { HistoryEntryView, InstanceView } from '../../shared/client/index.ts';
import type { BodyJson, FlowJson, StepJson } from '../../shared/engine/describe.ts';

/**
 * Each DAG node's state in one run, from the run's view (its frontier: tasks
 * dispatched, in backoff, failed, held; delays and signal waits) and its
 * history (completions, failures, skips, fired timers, received signals).
 */

export type NodeState =
  | 'pending'
  | 'running'
  | 'retrying'
  | 'held'
  | 'failed'
  | 'completed'
  | 'skipped'
  | 'waiting-timer'
  | 'waiting-signal'
  | 'in-lanes'
  | 'cancelled';

/** How a state reads: text first (never colour alone), with a glyph. */
export const STATE_TEXT: Readonly<Record<NodeState, string>> = {
  pending: '○ pending',
  running: '▶ running',
  retrying: '↻ retrying',
  held: '⏸ held (paused)',
  failed: '✕ failed',
  completed: '✓ completed',
  skipped: '⤼ skipped',
  'waiting-timer': '⏱ waiting on timer',
  'waiting-signal': '✉ waiting for signal',
  'in-lanes': '⇶ in lanes',
  cancelled: '⊘ cancelled',
};

/** One node of a run: its state, and what the history says of its keys. */
export interface NodeRun {
  readonly state: NodeState;
  /** Task keys seen for this node (more than one for map items and loop iterations). */
  readonly keys: readonly string[];
  /** Highest attempt seen. */
  readonly attempts: number;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** Keys per state, for nodes with several keys (`3 completed, 1 running`). */
  readonly counts: Readonly<Partial<Record<NodeState, number>>>;
  /** Why the node's dueAt matters: a backoff's end, a delay's end, a signal's timeout. */
  readonly dueAt?: string;
}

/** A task key's node: map indices back to `[]`, loop iterations dropped (`resize[3]/up@2` → `resize[]/up`). */
export const qidOf = (key: string): string => key.replace(/\[\d+\]/g, '[]').replace(/@\d+/g, '');

interface KeyRun {
  state: NodeState;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  dueAt?: string;
}

/** Worst first: a node shows the most urgent state among its keys. */
const PRECEDENCE: readonly NodeState[] = [
  'failed',
  'retrying',
  'running',
  'held',
  'waiting-signal',
  'waiting-timer',
  'in-lanes',
  'cancelled',
  'pending',
  'skipped',
  'completed',
];

/** A step of a flow's DAG JSON with its qid, named as `dag.ts` names its node. */
export interface DagStep {
  readonly step: StepJson;
  readonly qid: string;
}

/** The steps of a body: a task body's one task (as a step), or its flow's. */
function bodySteps(b: BodyJson, at: string): DagStep[] {
  if ('task' in b) return [{ step: { kind: 'task', id: b.task.id, task: b.task }, qid: `${at}${b.task.id}` }];
  return dagSteps(b.flow.steps, `${at}${b.id}/`);
}

/**
 * Every step of a flow's DAG JSON, nested ones included (fork branches,
 * route arms, child flows, map bodies), each before the steps nested in it,
 * with its qid as `dag.ts` names its node (a child flow's qid names its
 * cluster, not a node; a map's task body is `<map>[]`).
 */
export function dagSteps(steps: readonly StepJson[], prefix = ''): DagStep[] {
  return steps.flatMap((s): DagStep[] => {
    const qid = `${prefix}${s.id}`;
    const self = { step: s, qid };
    switch (s.kind) {
      case 'fork':
        return [self, ...s.branches.flatMap((b) => bodySteps(b, prefix))];
      case 'route':
        return [
          self,
          ...[...s.branches.map((b) => b.body), ...(s.fallback ? [s.fallback] : [])].flatMap((b) =>
            bodySteps(b, prefix),
          ),
        ];
      case 'child':
        return [self, ...dagSteps(s.flow.steps, `${qid}/`)];
      case 'map':
        return [self, ...mapBody(s, qid)];
      default:
        return [self];
    }
  });
}

/** The steps of a map's body, under `<map>[]`. */
function mapBody(s: Extract<StepJson, { kind: 'map' }>, qid: string): DagStep[] {
  if ('task' in s.body) return [{ step: { kind: 'task', id: `${s.id}[]`, task: s.body.task }, qid: `${qid}[]` }];
  return dagSteps(s.body.flow.steps, `${qid}[]/`);
}

/** The DAG nodes among steps (a child flow is a cluster). */
const nodeQids = (steps: readonly DagStep[]): string[] =>
  steps.flatMap((x) => (x.step.kind === 'child' ? [] : [x.qid]));

/**
 * The maps and forks of a flow whose children run in lanes (`lanes` in the
 * DAG JSON), by qid, each with the qids of the DAG nodes of its children's
 * bodies (named as `dag.ts` names them). Nested ones included.
 */
export function laneBodies(flow: FlowJson): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { step: s, qid } of dagSteps(flow.steps)) {
    if (s.kind === 'map' && s.lanes) out.set(qid, nodeQids(mapBody(s, qid)));
    if (s.kind === 'fork' && s.lanes) {
      const prefix = qid.slice(0, qid.length - s.id.length);
      out.set(qid, nodeQids(s.branches.flatMap((b) => bodySteps(b, prefix))));
    }
  }
  return out;
}

/** Signal waits by qid, nested flows included. */
export function signalNodes(flow: FlowJson): Map<string, string> {
  return new Map(dagSteps(flow.steps).flatMap(({ step: s, qid }) => (s.kind === 'signal' ? [[qid, s.signal]] : [])));
}

/**
 * The state of every node a run has touched, by qid (nodes absent are
 * pending). `signalNodes` maps a signal wait's qid to its signal name, so a
 * received signal that no wait holds any more marks that wait completed.
 * `lanes` (see {@link laneBodies}) names the nodes of children run in lanes:
 * those the journal says nothing of are `in-lanes` once their map or fork
 * started (it is under way, or its own node is done).
 */
export function runState(
  view: InstanceView,
  history: readonly HistoryEntryView[],
  signalNodes: ReadonlyMap<string, string> = new Map(),
  lanes: ReadonlyMap<string, readonly string[]> = new Map(),
): Map<string, NodeRun> {
  const keys = new Map<string, KeyRun>();
  const at = (key: string): KeyRun => {
    let k = keys.get(key);
    if (!k) keys.set(key, (k = { state: 'pending', attempts: 0 }));
    return k;
  };
  const received = new Set<string>();
  for (const e of history) {
    if (e.type === 'signal-received' && e.detail) received.add(e.detail);
    if (!e.key) continue;
    const k = at(e.key);
    if (e.attempt !== undefined) k.attempts = Math.max(k.attempts, e.attempt);
    if (e.startedAt && (!k.startedAt || e.startedAt < k.startedAt)) k.startedAt = e.startedAt;
    if (e.type === 'task-completed' || e.type === 'timer-fired') {
      k.state = 'completed';
      k.finishedAt = e.at;
    } else if (e.type === 'task-skipped') {
      k.state = 'skipped';
      k.finishedAt = e.at;
    } else if (e.type === 'task-failed' || e.type === 'run-failed') {
      k.state = 'failed';
      k.finishedAt = e.at;
    }
  }
  for (const t of view.tasks) {
    const k = at(t.key);
    k.attempts = Math.max(k.attempts, t.attempt);
    k.finishedAt = undefined;
    k.state =
      t.state === 'dispatched'
        ? 'running'
        : t.state === 'backoff'
          ? 'retrying'
          : t.state === 'ready'
            ? 'held'
            : 'failed';
    if (t.dueAt) k.dueAt = t.dueAt;
  }
  const waiting = new Set<string>();
  for (const w of view.waits) {
    const k = at(w.key);
    waiting.add(qidOf(w.key));
    k.state = w.kind === 'delay' ? 'waiting-timer' : 'waiting-signal';
    if (w.dueAt) k.dueAt = w.dueAt;
  }
  for (const [qid, signal] of signalNodes) {
    if (received.has(signal) && !waiting.has(qid) && !keys.has(qid)) at(qid).state = 'completed';
  }
  if (view.status === 'CANCELLED') {
    for (const k of keys.values()) if (k.state !== 'completed' && k.state !== 'skipped') k.state = 'cancelled';
  }

  const nodes = new Map<string, { keys: string[]; runs: KeyRun[] }>();
  for (const [key, run] of keys) {
    const qid = qidOf(key);
    const n = nodes.get(qid) ?? { keys: [], runs: [] };
    n.keys.push(key);
    n.runs.push(run);
    nodes.set(qid, n);
  }
  // Children in lanes: their steps write no journal entry, so no key says what they do.
  const underWay = new Set((view.parallel ?? []).filter((p) => p.lanes).map((p) => qidOf(p.key)));
  for (const [group, body] of lanes) {
    const own = nodes.get(group)?.runs ?? [];
    const started = underWay.has(group) || own.some((r) => r.state === 'completed' || r.state === 'running');
    if (!started) continue;
    for (const qid of body)
      if (!nodes.has(qid)) nodes.set(qid, { keys: [], runs: [{ state: 'in-lanes', attempts: 0 }] });
  }
  const out = new Map<string, NodeRun>();
  for (const [qid, { keys: ks, runs }] of nodes) {
    const counts: Partial<Record<NodeState, number>> = {};
    for (const r of runs) counts[r.state] = (counts[r.state] ?? 0) + 1;
    const state = PRECEDENCE.find((s) => counts[s]) ?? 'pending';
    const starts = runs.flatMap((r) => (r.startedAt ? [r.startedAt] : [])).sort();
    const ends = runs.flatMap((r) => (r.finishedAt ? [r.finishedAt] : [])).sort();
    const due = runs.flatMap((r) => (r.dueAt ? [r.dueAt] : [])).sort();
    out.set(qid, {
      state,
      keys: ks.sort(),
      attempts: Math.max(0, ...runs.map((r) => r.attempts)),
      counts,
      ...(starts[0] ? { startedAt: starts[0] } : {}),
      ...(ends.length > 0 && runs.every((r) => r.finishedAt) ? { finishedAt: ends[ends.length - 1] } : {}),
      ...(due[0] ? { dueAt: due[0] } : {}),
    });
  }
  return out;
}

/** Task keys the run failed on and could retry: failed tasks in its frontier. */
export const failedKeys = (view: InstanceView): string[] =>
  view.tasks.filter((t) => t.state === 'failed').map((t) => t.key);
