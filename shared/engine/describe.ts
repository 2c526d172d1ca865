import { runsChildrenInLanes } from './compile.ts';
import type { AnyFlow, BodyNode, StepNode } from './definition.ts';
import { toMillis } from './duration.ts';
import { resolveRetry } from './retry.ts';
import type { TaskDef } from './task.ts';

/**
 * The JSON form of a flow: every id, kind and option that shapes execution,
 * no functions. The API serves it as the workflow's DAG. The definition hash
 * is not computed over it (see `hashSteps` in `definition-hash.ts`), so
 * fields can be added here without blocking any stored run from resuming.
 */
export interface TaskJson {
  readonly id: string;
  readonly retry: ReturnType<typeof resolveRetry>;
  readonly timeoutMs: number;
  readonly priority: string;
  readonly pool: string;
  readonly inputSchema: boolean;
  readonly outputSchema: boolean;
}

/** A branch or map body: a task, or a flow whose steps' keys start with `id/`. */
export type BodyJson = { readonly task: TaskJson } | { readonly id: string; readonly flow: FlowJson };

export type StepJson =
  | { readonly kind: 'task'; readonly id: string; readonly task: TaskJson }
  | {
      readonly kind: 'fork';
      readonly id: string;
      readonly branches: readonly BodyJson[];
      readonly join: TaskJson;
      /** Present when its branches run in lanes, outside the run's journal (and history). */
      readonly lanes?: true;
    }
  | { readonly kind: 'delay'; readonly id: string; readonly ms: number }
  | {
      readonly kind: 'signal';
      readonly id: string;
      readonly signal: string;
      readonly timeoutMs: number | null;
      readonly onTimeout: string;
    }
  | {
      readonly kind: 'route';
      readonly id: string;
      readonly keyTask: TaskJson;
      readonly keys: readonly string[];
      readonly branches: readonly { readonly key: string; readonly body: BodyJson }[];
      readonly fallback: BodyJson | null;
    }
  | {
      readonly kind: 'loop';
      readonly id: string;
      readonly body: TaskJson;
      readonly maxIterations: number;
      readonly onMax: string;
    }
  | { readonly kind: 'child'; readonly id: string; readonly flow: FlowJson }
  | {
      readonly kind: 'map';
      readonly id: string;
      readonly items: TaskJson;
      readonly body: BodyJson;
      readonly maxConcurrency: number;
      /** Present when its items run in lanes, outside the run's journal (and history). */
      readonly lanes?: true;
    };

export interface FlowJson {
  readonly name: string;
  readonly steps: readonly StepJson[];
}

/** Default task timeout. */
export const DEFAULT_TIMEOUT_MS = 300_000;
/** Default worker pool. */
export const DEFAULT_POOL = 'default';

/** A task's timeout in milliseconds, the default applied. */
export function taskTimeoutMs(t: TaskDef<unknown, unknown>): number {
  return t.options.timeout === undefined ? DEFAULT_TIMEOUT_MS : toMillis(t.options.timeout);
}

function taskJson(id: string, t: TaskDef<unknown, unknown>): TaskJson {
  const o = t.options;
  return {
    id,
    retry: resolveRetry(o.retry),
    timeoutMs: taskTimeoutMs(t),
    priority: o.priority ?? 'normal',
    pool: o.pool ?? DEFAULT_POOL,
    inputSchema: o.input !== undefined,
    outputSchema: o.output !== undefined,
  };
}

function bodyJson(b: BodyNode): BodyJson {
  return b.kind === 'task'
    ? { task: taskJson(b.id, b.task) }
    : { id: b.id, flow: describeSteps(b.flow.name, b.flow.steps) };
}

function stepJson(s: StepNode): StepJson {
  switch (s.kind) {
    case 'task':
      return { kind: 'task', id: s.id, task: taskJson(s.id, s.task) };
    case 'fork':
      return {
        kind: 'fork',
        id: s.id,
        branches: s.branches.map(bodyJson),
        join: taskJson(s.id, s.join),
        ...(runsChildrenInLanes(s) ? { lanes: true as const } : {}),
      };
    case 'delay':
      return { kind: 'delay', id: s.id, ms: s.ms };
    case 'signal':
      return { kind: 'signal', id: s.id, signal: s.signal, timeoutMs: s.timeoutMs ?? null, onTimeout: s.onTimeout };
    case 'route':
      return {
        kind: 'route',
        id: s.id,
        keyTask: taskJson(s.id, s.keyTask),
        keys: s.keys,
        branches: s.branches.map((b) => ({ key: b.key, body: bodyJson(b.body) })),
        fallback: s.fallback ? bodyJson(s.fallback) : null,
      };
    case 'loop':
      return { kind: 'loop', id: s.id, body: taskJson(s.id, s.body), maxIterations: s.maxIterations, onMax: s.onMax };
    case 'child':
      return { kind: 'child', id: s.id, flow: describeSteps(s.flow.name, s.flow.steps) };
    case 'map':
      return {
        kind: 'map',
        id: s.id,
        items: taskJson(s.id, s.items),
        body: bodyJson(s.body),
        maxConcurrency: s.maxConcurrency,
        ...(runsChildrenInLanes(s) ? { lanes: true as const } : {}),
      };
  }
}

export function describeSteps(name: string, steps: readonly StepNode[]): FlowJson {
  return { name, steps: steps.map(stepJson) };
}

/** The JSON form of a built flow. */
export function describeFlow(flow: AnyFlow): FlowJson {
  return describeSteps(flow.name, flow.steps);
}

/** Every worker pool a flow's tasks name (the default pool included when a task names none). */
export function poolsOf(flow: AnyFlow): string[] {
  const pools = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === 'object') {
      const o = value as Record<string, unknown>;
      if (typeof o.pool === 'string' && 'retry' in o) pools.add(o.pool);
      Object.values(o).forEach(visit);
    }
  };
  visit(describeFlow(flow));
  return [...pools].sort();
}
