import { Graph, layout } from '@dagrejs/dagre';
import type { BodyJson, FlowJson, StepJson, TaskJson } from '../../shared/engine/describe.ts';

/**
 * A workflow's DAG as boxes and arrows: `GET /v1/workflows/{name}`'s `dag`
 * turned into nodes (one per step, keyed by the step's qid, which is what a
 * run's task keys reduce to), clusters (child flows, map bodies, flow
 * branches) and edges, then laid out by dagre.
 */

export type NodeKind =
  | 'start'
  | 'end'
  | 'task'
  | 'fork'
  | 'join'
  | 'delay'
  | 'signal'
  | 'route'
  | 'merge'
  | 'loop'
  | 'map';

export interface DagNode {
  /** The step's qid (`charge`, `ship/label`, `resize[]`), or `fork:`/`merge:` + qid, `start`, `end`. */
  readonly id: string;
  readonly kind: NodeKind;
  readonly label: string;
  /** Pool, priority, retries, timeouts: what shapes how it runs. */
  readonly detail: string;
  readonly parent?: string;
}

export interface DagCluster {
  readonly id: string;
  readonly label: string;
  readonly parent?: string;
}

export interface DagEdge {
  readonly from: string;
  readonly to: string;
  readonly label?: string;
}

export interface DagModel {
  readonly nodes: readonly DagNode[];
  readonly clusters: readonly DagCluster[];
  readonly edges: readonly DagEdge[];
}

/** A duration in the largest unit that divides it: `2s`, `48h`, `150ms`. */
export function formatMs(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1_000, 's'],
  ];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return ms >= 1_000 ? `${(ms / 1_000).toFixed(1)}s` : `${ms}ms`;
}

function taskDetail(t: TaskJson): string {
  const parts = [`pool ${t.pool}`, `${t.priority} priority`];
  const attempts = (t.retry as { maxAttempts?: number } | undefined)?.maxAttempts;
  if (attempts !== undefined && attempts > 1) parts.push(`${attempts} attempts`);
  parts.push(`timeout ${formatMs(t.timeoutMs)}`);
  return parts.join(' · ');
}

/** A node's detail as at most two lines of about `width` characters, cut at ' · '. */
export function detailLines(detail: string, width = 44): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of detail.split(' · ')) {
    const next = line ? `${line} · ${part}` : part;
    if (next.length > width && line) {
      lines.push(line);
      line = part;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines.length > 2 ? [lines[0] ?? '', lines.slice(1).join(' · ')] : lines;
}

/** Builds the boxes and arrows of a flow (not laid out). */
export function dagModel(flow: FlowJson): DagModel {
  const nodes: DagNode[] = [];
  const clusters: DagCluster[] = [];
  const edges: DagEdge[] = [];
  const add = (node: DagNode) => nodes.push(node);
  const link = (from: string, to: string, label?: string) =>
    edges.push(label === undefined ? { from, to } : { from, to, label });
  const within = (parent: string | undefined) => (parent === undefined ? {} : { parent });

  /** A body: its entry and exit node ids. */
  const body = (b: BodyJson, qid: string, parent: string | undefined, title: string): [string, string] => {
    if ('task' in b) {
      add({ id: qid, kind: 'task', label: b.task.id, detail: taskDetail(b.task), ...within(parent) });
      return [qid, qid];
    }
    const cluster = `cluster:${qid}`;
    clusters.push({ id: cluster, label: `${title} · flow ${b.flow.name}`, ...within(parent) });
    return seq(b.flow.steps, `${qid}/`, cluster);
  };

  const step = (s: StepJson, prefix: string, parent: string | undefined): [string, string] => {
    const qid = `${prefix}${s.id}`;
    const here = within(parent);
    switch (s.kind) {
      case 'task':
        add({ id: qid, kind: 'task', label: s.id, detail: taskDetail(s.task), ...here });
        return [qid, qid];
      case 'fork': {
        const split = `fork:${qid}`;
        const lanes = s.lanes ? ' · in lanes' : '';
        add({ id: split, kind: 'fork', label: 'fork', detail: `${s.branches.length} branches${lanes}`, ...here });
        add({ id: qid, kind: 'join', label: s.id, detail: `join · ${taskDetail(s.join)}`, ...here });
        for (const b of s.branches) {
          const id = 'task' in b ? b.task.id : b.id;
          const [first, last] = body(b, `${prefix}${id}`, parent, `branch ${id}`);
          link(split, first);
          link(last, qid);
        }
        return [split, qid];
      }
      case 'delay':
        add({ id: qid, kind: 'delay', label: s.id, detail: `delay ${formatMs(s.ms)}`, ...here });
        return [qid, qid];
      case 'signal': {
        const timeout = s.timeoutMs === null ? 'no timeout' : `timeout ${formatMs(s.timeoutMs)}, then ${s.onTimeout}`;
        add({ id: qid, kind: 'signal', label: s.id, detail: `waits for signal '${s.signal}' · ${timeout}`, ...here });
        return [qid, qid];
      }
      case 'route': {
        const merge = `merge:${qid}`;
        add({ id: qid, kind: 'route', label: s.id, detail: `route · ${taskDetail(s.keyTask)}`, ...here });
        add({ id: merge, kind: 'merge', label: 'end route', detail: '', ...here });
        const arm = (b: BodyJson, label: string) => {
          const id = 'task' in b ? b.task.id : b.id;
          const [first, last] = body(b, `${prefix}${id}`, parent, `route ${label}`);
          link(qid, first, label);
          link(last, merge);
        };
        for (const b of s.branches) arm(b.body, b.key);
        if (s.fallback) arm(s.fallback, 'otherwise');
        return [qid, merge];
      }
      case 'loop':
        add({
          id: qid,
          kind: 'loop',
          label: s.id,
          detail: `loop ≤ ${s.maxIterations}× (then ${s.onMax}) · ${taskDetail(s.body)}`,
          ...here,
        });
        link(qid, qid, 'again');
        return [qid, qid];
      case 'child': {
        const cluster = `cluster:${qid}`;
        clusters.push({ id: cluster, label: `child flow ${s.flow.name}`, ...here });
        return seq(s.flow.steps, `${qid}/`, cluster);
      }
      case 'map': {
        add({ id: qid, kind: 'map', label: s.id, detail: `map items · ${taskDetail(s.items)}`, ...here });
        const cluster = `cluster:${qid}[]`;
        const lanes = s.lanes ? ' · in lanes' : '';
        clusters.push({ id: cluster, label: `each item of ${s.id} · ≤ ${s.maxConcurrency} at once${lanes}`, ...here });
        const [first, last] =
          'task' in s.body
            ? body({ task: { ...s.body.task, id: `${s.id}[]` } }, `${qid}[]`, cluster, '')
            : seq(s.body.flow.steps, `${qid}[]/`, cluster);
        link(qid, first, 'for each');
        return [qid, last];
      }
    }
  };

  const seq = (steps: readonly StepJson[], prefix: string, parent: string | undefined): [string, string] => {
    let first: string | undefined;
    let last: string | undefined;
    for (const s of steps) {
      const [entry, exit] = step(s, prefix, parent);
      if (last !== undefined) link(last, entry);
      first ??= entry;
      last = exit;
    }
    if (first === undefined || last === undefined) throw new Error(`flow at '${prefix}' has no steps`);
    return [first, last];
  };

  add({ id: 'start', kind: 'start', label: 'start', detail: '' });
  const [first, last] = seq(flow.steps, '', undefined);
  add({ id: 'end', kind: 'end', label: 'end', detail: '' });
  link('start', first);
  link(last, 'end');
  return { nodes, clusters, edges };
}

export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface LaidOut {
  readonly width: number;
  readonly height: number;
  readonly nodes: readonly (DagNode & Box)[];
  readonly clusters: readonly (DagCluster & Box)[];
  readonly edges: readonly (DagEdge & { readonly points: readonly { x: number; y: number }[] })[];
}

/** Box size of a node kind (small markers for start, end, fork and merge). */
export function nodeSize(kind: NodeKind): { width: number; height: number } {
  if (kind === 'start' || kind === 'end') return { width: 64, height: 28 };
  if (kind === 'fork' || kind === 'merge') return { width: 90, height: 28 };
  return { width: 260, height: 80 };
}

/** A loop's self-edge: out of its node's right side and back in, below. */
function selfLoop(b: Box): { x: number; y: number }[] {
  const right = b.x + b.width;
  return [
    { x: right, y: b.y + b.height * 0.3 },
    { x: right + 36, y: b.y + b.height * 0.3 },
    { x: right + 36, y: b.y + b.height * 0.7 },
    { x: right, y: b.y + b.height * 0.7 },
  ];
}

/** Lays the model out top to bottom with dagre (a compound graph: clusters hold their nodes). */
export function layoutDag(model: DagModel): LaidOut {
  const g = new Graph({ compound: true, multigraph: true });
  // Wide right margin: a loop's self-edge is drawn beside its node, not by dagre.
  g.setGraph({ rankdir: 'TB', nodesep: 28, ranksep: 44, marginx: 70, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of model.clusters) g.setNode(c.id, { label: c.label, paddingTop: 24 });
  for (const n of model.nodes) g.setNode(n.id, { ...nodeSize(n.kind) });
  for (const c of model.clusters) if (c.parent) g.setParent(c.id, c.parent);
  for (const n of model.nodes) if (n.parent) g.setParent(n.id, n.parent);
  model.edges.forEach((e, i) => {
    if (e.from === e.to) return;
    g.setEdge(e.from, e.to, e.label ? { label: e.label, width: e.label.length * 7, height: 14 } : {}, String(i));
  });
  layout(g);
  const box = (id: string): Box => {
    const n = g.node(id) as unknown as Box;
    return { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height };
  };
  const graph = g.graph() as { width?: number; height?: number };
  return {
    width: Math.ceil(graph.width ?? 0),
    height: Math.ceil(graph.height ?? 0),
    nodes: model.nodes.map((n) => ({ ...n, ...box(n.id) })),
    clusters: model.clusters.map((c) => ({ ...c, ...box(c.id) })),
    edges: model.edges.map((e, i) => {
      if (e.from === e.to) return { ...e, points: selfLoop(box(e.from)) };
      const edge = g.edge({ v: e.from, w: e.to, name: String(i) }) as unknown as {
        points?: { x: number; y: number }[];
      };
      return { ...e, points: edge.points ?? [] };
    }),
  };
}
