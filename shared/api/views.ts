import type { AnyFlow } from '../engine/definition.ts';
import { type BodyJson, describeFlow, type FlowJson } from '../engine/describe.ts';
import { MAX_MESSAGE_CHARS, truncateText } from '../engine/errors.ts';
import type { HistoryEntry } from '../engine/history.ts';
import { laneGroups, laneWaitOf, NO_TIMEOUT_DUE } from '../engine/lanes.ts';
import type { Ref } from '../engine/refs.ts';
import { FINAL_STATUSES, type RunError, type RunStatus, type Snapshot, type TaskActivity } from '../engine/snapshot.ts';
import type { InstanceSummary, LaneTimer } from '../ports/instance-store.ts';

/**
 * The JSON bodies the API returns. Times are ISO 8601 strings (UTC); the
 * engine's internal ids (value ids, compiled node ids) stay inside.
 */

/** A registered workflow. */
export interface WorkflowView {
  readonly name: string;
  readonly description?: string;
  /** Hash of the flow's structure; instances started under another hash cannot be driven by this one. */
  readonly definitionHash: string;
  /** Whether starting an instance validates its input. */
  readonly inputSchema: boolean;
  /** Names of the signals the flow waits for anywhere (sorted). */
  readonly signals: readonly string[];
  /** The DAG, as {@link describeFlow} gives it. */
  readonly dag: FlowJson;
  /** How long its finished runs are kept before they are purged: milliseconds, or `'forever'` (its own, else the deployment's). */
  readonly retention: number | 'forever';
}

/** A task in an instance's frontier. */
export interface TaskView {
  readonly key: string;
  readonly attempt: number;
  readonly state: TaskActivity['state'];
  /** End of a retry backoff. */
  readonly dueAt?: string;
}

/** A delay or signal wait in an instance's frontier. */
export interface WaitView {
  readonly key: string;
  readonly kind: 'delay' | 'signal';
  readonly signal?: string;
  /** Delay end, or signal timeout. */
  readonly dueAt?: string;
}

/** One instance, in full. */
export interface InstanceView {
  readonly instanceId: string;
  readonly workflow: string;
  readonly status: RunStatus;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Task completions and skips committed so far (the snapshot's `steps`). */
  readonly stepsDone: number;
  readonly tasks: readonly TaskView[];
  readonly waits: readonly WaitView[];
  /**
   * Present when the run is RUNNING but can go no further until a signal
   * arrives: the signals it waits for (sorted). See {@link awaitedSignals}.
   */
  readonly waitingFor?: readonly string[];
  /** Present when COMPLETED (`null` for a flow whose result is `undefined`), unless {@link outputOmitted}. */
  readonly output?: unknown;
  /**
   * Present instead of `output` when the output is made of more stored
   * values than the view reads ({@link MAX_VIEW_OUTPUT_VALUES}: a map's
   * result has one per item).
   */
  readonly outputOmitted?: { readonly values: number; readonly limit: number };
  /** Why the run failed or was cancelled; a message over {@link MAX_MESSAGE_CHARS} is cut, with a marker. */
  readonly error?: RunError;
  /** Present when the run is finished and has a retention: when the reaper purges its records (then it is a 404). */
  readonly purgeAt?: string;
  /** The maps and forks under way, with how many of their children are done (a map's items, a fork's branches). */
  readonly parallel?: readonly ParallelView[];
}

/** A map or fork under way: its children done so far, of how many. */
export interface ParallelView {
  /** The map's or fork's key. */
  readonly key: string;
  readonly kind: 'map' | 'fork';
  readonly done: number;
  readonly count: number;
  /** Whether its children run in lanes (outside the run's journal; `done` is then read from their counter). */
  readonly lanes: boolean;
}

/**
 * The maps and forks of a run under way, sorted by key. For those whose
 * children run in lanes, `done` comes from `counted` (their counters, read
 * by the caller: the snapshot does not hold them); a counter not read
 * shows 0.
 */
export function parallelViews(s: Snapshot, counted: ReadonlyMap<string, number> = new Map()): ParallelView[] {
  const maps = Object.entries(s.maps).map(
    ([key, m]): ParallelView => ({
      key,
      kind: 'map',
      done: m.lanes ? Math.min(m.count, counted.get(key) ?? 0) : m.done,
      count: m.count,
      lanes: m.lanes !== undefined,
    }),
  );
  const forks = Object.entries(s.forks).map(([key, f]): ParallelView => {
    const count = f.results.length;
    return {
      key,
      kind: 'fork',
      done: f.lanes ? Math.min(count, counted.get(key) ?? 0) : count - f.remaining,
      count,
      lanes: f.lanes !== undefined,
    };
  });
  return [...maps, ...forks].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** One line of an instance listing. */
export interface InstanceSummaryView {
  readonly instanceId: string;
  readonly workflow: string;
  readonly status: RunStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * Most stored values the instance view reads to build a COMPLETED run's
 * output. A map's result is one value per item: a map over 100,000 items
 * would otherwise be 100,000 reads (and a response over Lambda's 6 MB)
 * behind one `GET`.
 */
export const MAX_VIEW_OUTPUT_VALUES = 1_000;

/** An error as views show it: the message truncated (see {@link MAX_MESSAGE_CHARS}). */
export function errorView<E extends { readonly message: string }>(error: E): E {
  return error.message.length <= MAX_MESSAGE_CHARS ? error : { ...error, message: truncateText(error.message) };
}

/**
 * How many stored values a ref reads, counted without listing them (a map's
 * result says only how many items it has).
 */
export function refValueCount(ref: Ref): number {
  if ('v' in ref) return 1;
  if ('all' in ref) return ref.all.reduce((n, r) => n + refValueCount(r), 0);
  if ('each' in ref) {
    const except = Object.entries(ref.except ?? {}).filter(([i]) => Number(i) < ref.n);
    return ref.n - except.length + except.reduce((n, [, r]) => n + refValueCount(r), 0);
  }
  return 0;
}

/** Epoch milliseconds as an ISO 8601 string, as the API shows every time. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** Names of every signal a flow waits for, nested flows included. */
export function signalNames(flow: AnyFlow): Set<string> {
  const names = new Set<string>();
  const body = (b: BodyJson | null): void => {
    if (b && 'flow' in b) walk(b.flow);
  };
  const walk = (f: FlowJson): void => {
    for (const s of f.steps) {
      switch (s.kind) {
        case 'signal':
          names.add(s.signal);
          break;
        case 'fork':
          s.branches.forEach(body);
          break;
        case 'route':
          for (const b of s.branches) body(b.body);
          body(s.fallback);
          break;
        case 'child':
          walk(s.flow);
          break;
        case 'map':
          body(s.body);
          break;
        default:
          break;
      }
    }
  };
  walk(describeFlow(flow));
  return names;
}

/** The view of a registered workflow. */
export function workflowView(flow: AnyFlow, retention: number | 'forever'): WorkflowView {
  return {
    name: flow.name,
    ...(flow.options.description === undefined ? {} : { description: flow.options.description }),
    definitionHash: flow.hash,
    inputSchema: flow.options.input !== undefined,
    signals: [...signalNames(flow)].sort(),
    dag: describeFlow(flow),
    retention,
  };
}

/**
 * The signals a RUNNING run waits for when nothing else can move it: no task
 * ready, dispatched or in backoff, no map or fork running children in lanes,
 * no delay pending, and at least one signal wait (a signal timeout may still
 * end such a wait). `undefined` otherwise.
 *
 * @example
 * ```ts
 * awaitedSignals(snapshot); // ['manager-approval'] while only that signal can move the run
 * ```
 */
export function awaitedSignals(s: Snapshot): readonly string[] | undefined {
  if (s.status !== 'RUNNING') return undefined;
  // A `failed` task moves nothing by itself; every other state is work under way.
  if (Object.values(s.tasks).some((t) => t.state !== 'failed')) return undefined;
  // Children running in lanes are work under way too, though not in the frontier.
  if (laneGroups(s).length > 0) return undefined;
  const waits = Object.values(s.waits);
  if (waits.length === 0 || waits.some((w) => w.kind !== 'signal')) return undefined;
  return [...new Set(waits.flatMap((w) => (w.signal === undefined ? [] : [w.signal])))].sort();
}

/**
 * The view of an instance. `output` is the materialized run output, or the
 * reason it was not read; pass it when the run is COMPLETED.
 */
export function instanceView(
  s: Snapshot,
  output?: { readonly value: unknown } | { readonly omitted: { readonly values: number; readonly limit: number } },
  counted?: ReadonlyMap<string, number>,
): InstanceView {
  const parallel = parallelViews(s, counted);
  const tasks = Object.entries(s.tasks)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(
      ([key, t]): TaskView => ({
        key,
        attempt: t.attempt,
        state: t.state,
        ...(t.state === 'backoff' && t.dueAt !== undefined ? { dueAt: iso(t.dueAt) } : {}),
      }),
    );
  const waits = Object.entries(s.waits)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(
      ([key, w]): WaitView => ({
        key,
        kind: w.kind,
        ...(w.signal === undefined ? {} : { signal: w.signal }),
        ...(w.dueAt === undefined ? {} : { dueAt: iso(w.dueAt) }),
      }),
    );
  const waitingFor = awaitedSignals(s);
  return {
    instanceId: s.instanceId,
    workflow: s.workflow,
    status: s.status,
    version: s.version,
    createdAt: iso(s.createdAt),
    updatedAt: iso(s.updatedAt),
    // Instances stored before the snapshot counted steps have none.
    stepsDone: s.steps ?? 0,
    tasks,
    waits,
    ...(waitingFor === undefined ? {} : { waitingFor }),
    ...(output && 'value' in output ? { output: output.value ?? null } : {}),
    ...(output && 'omitted' in output ? { outputOmitted: output.omitted } : {}),
    ...(s.error ? { error: errorView(s.error) } : {}),
    ...(FINAL_STATUSES.has(s.status) && s.retentionMs !== undefined
      ? { purgeAt: iso(s.updatedAt + s.retentionMs) }
      : {}),
    ...(parallel.length > 0 ? { parallel } : {}),
  };
}

/** The view of a listing line. */
export function summaryView(s: InstanceSummary): InstanceSummaryView {
  return {
    instanceId: s.instanceId,
    workflow: s.workflow,
    status: s.status,
    createdAt: iso(s.createdAt),
    updatedAt: iso(s.updatedAt),
  };
}

/**
 * A lane timer as the API shows it: a child of a map or fork run in lanes
 * (`parent`, `child`: the item's or branch's index) that waits, or waited,
 * outside the run's journal, on a delay (`kind: 'delay'`, the delay's key
 * as `id`) or on a retry's backoff (`kind: 'retry'`, with the failure that
 * caused it and the attempt it starts; `lapse` when no attempt failed, the
 * same one being sent again after its worker's reservation lapsed), or on
 * a fork that runs in its lane (`kind: 'look'`: the reaper's look number
 * `n` at that fork's branches, `look.fork` its key, while the child waits
 * for its join), or on a signal (`kind: 'signal'`, the wait's key as
 * `id`, `signal.name` the signal; `dueAt`, its timeout, absent for a wait
 * with none; fired when it was given one, or timed out). `firedAt` is
 * absent while it waits.
 */
export interface LaneTimerView {
  readonly id: string;
  readonly parent: string;
  readonly child: number;
  readonly kind: 'delay' | 'retry' | 'look' | 'signal';
  /** Absent for a signal wait with no timeout. */
  readonly dueAt?: string;
  readonly firedAt?: string;
  readonly retry?: {
    readonly task: string;
    readonly attempt: number;
    readonly failedAt: string;
    readonly worker?: string;
    readonly error: { readonly name: string; readonly message: string };
    readonly lapse?: true;
  };
  readonly look?: { readonly fork: string; readonly n: number };
  readonly signal?: { readonly name: string };
}

/** See {@link LaneTimerView}. */
export function laneTimerView(flow: AnyFlow, t: LaneTimer): LaneTimerView {
  const r = t.retry;
  const wait = laneWaitOf(flow, t.id);
  return {
    id: t.id,
    parent: t.parent,
    child: t.item,
    kind: r ? 'retry' : t.look ? 'look' : wait ? 'signal' : 'delay',
    ...(t.dueAt === NO_TIMEOUT_DUE ? {} : { dueAt: iso(t.dueAt) }),
    ...(wait ? { signal: { name: wait.signal } } : {}),
    ...(t.firedAt === undefined ? {} : { firedAt: iso(t.firedAt) }),
    ...(r
      ? {
          retry: {
            task: r.task,
            attempt: r.attempt,
            failedAt: iso(r.failedAt),
            ...(r.worker === undefined ? {} : { worker: r.worker }),
            error: errorView(r.error),
            ...(r.lapse ? { lapse: true as const } : {}),
          },
        }
      : {}),
    ...(t.look ? { look: { fork: t.look.group, n: t.look.n } } : {}),
  };
}

/** A history entry as the API shows it: times as ISO strings, long texts truncated. */
export type HistoryEntryView = ReturnType<typeof historyEntryView>;

/** See {@link HistoryEntryView}. */
export function historyEntryView(e: HistoryEntry) {
  return {
    ...e,
    at: iso(e.at),
    startedAt: e.startedAt === undefined ? undefined : iso(e.startedAt),
    retryAt: e.retryAt === undefined ? undefined : iso(e.retryAt),
    ...(e.error ? { error: errorView(e.error) } : {}),
    ...(e.detail === undefined ? {} : { detail: truncateText(e.detail) }),
  };
}
