/**
 * The `Metrics` port and the catalogue of Sayiir's metrics. Adapters: EMF on
 * Lambda (`emf.ts`, CloudWatch namespace {@link METRICS_NAMESPACE}) and
 * OpenMetrics for the local stack (`openmetrics.ts`).
 *
 * Dimensions are low-cardinality only: `workflow` and `pool` (and the
 * queue's `priority` for the local queue depth). Never an instance id or a
 * task key: each distinct value is a new CloudWatch metric, billed.
 */

/** CloudWatch namespace of every Sayiir metric. */
export const METRICS_NAMESPACE = 'Sayiir';

export type MetricKind = 'counter' | 'histogram' | 'gauge';
export type MetricUnit = 'Count' | 'Milliseconds' | 'Percent';
export type DimensionName = 'workflow' | 'pool' | 'priority';

export interface MetricDef {
  readonly kind: MetricKind;
  readonly unit: MetricUnit;
  readonly dimensions: readonly DimensionName[];
  readonly help: string;
}

const counter = (dimensions: readonly DimensionName[], help: string): MetricDef => ({
  kind: 'counter',
  unit: 'Count',
  dimensions,
  help,
});
const histogram = (dimensions: readonly DimensionName[], help: string): MetricDef => ({
  kind: 'histogram',
  unit: 'Milliseconds',
  dimensions,
  help,
});

const WP = ['workflow', 'pool'] as const;

/** Every metric Sayiir emits, by its CloudWatch name. */
export const METRICS = {
  RunsStarted: counter(['workflow'], 'Runs started.'),
  RunsCompleted: counter(['workflow'], 'Runs that completed.'),
  RunsFailed: counter(['workflow'], 'Runs that failed.'),
  RunsCancelled: counter(['workflow'], 'Runs cancelled.'),
  TasksCompleted: counter(WP, 'Task attempts that completed.'),
  TasksFailed: counter(WP, 'Task attempts that failed and failed their run (retries exhausted, or terminal).'),
  TasksRetried: counter(WP, 'Task attempts that failed and will be retried.'),
  TasksSkipped: counter(WP, 'Dispatches not run: stale, duplicate, claimed elsewhere, run paused or over.'),
  DeadLetters: counter(
    ['pool'],
    'Tasks given up on: dead-letter records created, per pool (an alarm per pool needs no workflow).',
  ),
  JournalConflicts: counter([], 'Journal appends lost to another writer (the writer reloads and re-applies).'),
  ReaperRedispatches: counter([], 'Tasks the reaper dispatched again (worker died, message lost).'),
  ReaperTimersFired: counter([], 'Delays and signal timeouts the reaper fired.'),
  RunsPurged: counter([], 'Finished runs the reaper purged, their retention over.'),
  TaskDuration: histogram(WP, 'Time the task function ran, per attempt.'),
  QueueWait: histogram(WP, 'Time from a dispatch being sent to its task starting (queued dispatches only).'),
  StepLatency: histogram(WP, 'Time from a task starting to its completion committed and its successors sent.'),
  RunDuration: histogram(['workflow'], 'Time from a run start to its end (completed, failed or cancelled).'),
  QueueDepth: { kind: 'gauge', unit: 'Count', dimensions: ['pool', 'priority'], help: 'Messages waiting in a queue.' },
  TasksInFlight: { kind: 'gauge', unit: 'Count', dimensions: ['pool'], help: 'Tasks running now in this worker.' },
  WorkerUtilization: {
    kind: 'gauge',
    unit: 'Percent',
    dimensions: ['pool'],
    help: 'Share of a worker invocation spent running task code.',
  },
} as const satisfies Record<string, MetricDef>;

export type MetricName = keyof typeof METRICS;
export type Dimensions = Partial<Readonly<Record<DimensionName, string>>>;

/**
 * Where metrics go. Calls never throw and never wait: an adapter buffers and
 * publishes on {@link Metrics.flush} (EMF) or when scraped (OpenMetrics).
 */
export interface Metrics {
  /** Adds `value` (default 1) to a counter. */
  count(name: MetricName, dimensions: Dimensions, value?: number): void;
  /** Records one observation of a histogram (a duration in ms). */
  observe(name: MetricName, dimensions: Dimensions, value: number): void;
  /** Sets a gauge. */
  gauge(name: MetricName, dimensions: Dimensions, value: number): void;
  /** Publishes what is buffered (EMF: one line per dimension set). */
  flush(): void;
}

/** Metrics that go nowhere. */
export const noMetrics: Metrics = {
  count: () => undefined,
  observe: () => undefined,
  gauge: () => undefined,
  flush: () => undefined,
};

/** Only the dimensions a metric declares, so no caller can add an instance id by mistake. */
export function dimensionsOf(name: MetricName, given: Dimensions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of METRICS[name].dimensions) out[d] = given[d] ?? 'none';
  return out;
}
