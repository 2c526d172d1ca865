import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { type Dimensions, dimensionsOf, METRICS, type MetricDef, type MetricName, type Metrics } from './metrics.ts';

/** Histogram buckets, in seconds: 5 ms to 5 min. */
const BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Prometheus name of a metric: `sayiir_` and snake case, with the unit suffix Prometheus expects. */
export function promName(name: MetricName): string {
  const def: MetricDef = METRICS[name];
  const snake = name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
  if (def.kind === 'counter') return `sayiir_${snake}_total`;
  if (def.kind === 'histogram') return `sayiir_${snake}_seconds`;
  if (def.unit === 'Percent') return `sayiir_${snake}_ratio`;
  return `sayiir_${snake}`;
}

/** What the local stack samples at each scrape. */
export interface OpenMetricsOptions {
  /** Messages waiting per pool and priority, read when scraped. */
  readonly queueDepth?: () => Promise<readonly { pool: string; priority: string; value: number }[]>;
}

/** The {@link Metrics} port as a Prometheus registry that the local stack serves at `GET /metrics`. */
export interface OpenMetrics extends Metrics {
  /** The exposition, in the OpenMetrics text format. */
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * The {@link Metrics} port on prom-client, exposed in the OpenMetrics text
 * format. Durations are observed in ms (like EMF) and exposed in seconds,
 * Prometheus' base unit; a percentage is exposed as a ratio.
 *
 * @example
 * ```ts
 * const metrics = openMetrics({ queueDepth: async () => [{ pool: 'default', priority: 'normal', value: 3 }] });
 * metrics.observe('TaskDuration', { workflow: 'orders', pool: 'default' }, 120);
 * await metrics.render(); // '# HELP sayiir_task_duration_seconds …'
 * ```
 */
export function openMetrics(options: OpenMetricsOptions = {}): OpenMetrics {
  const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const made = new Map<MetricName, Counter | Histogram | Gauge>();
  for (const [name, def] of Object.entries(METRICS) as [MetricName, MetricDef][]) {
    const common = { name: promName(name), help: def.help, labelNames: [...def.dimensions], registers: [registry] };
    if (def.kind === 'counter') made.set(name, new Counter(common));
    else if (def.kind === 'histogram') made.set(name, new Histogram({ ...common, buckets: BUCKETS_SECONDS }));
    else if (name === 'QueueDepth' && options.queueDepth) {
      const read = options.queueDepth;
      made.set(
        name,
        new Gauge({
          ...common,
          async collect() {
            this.reset();
            for (const q of await read()) this.set({ pool: q.pool, priority: q.priority }, q.value);
          },
        }),
      );
    } else made.set(name, new Gauge(common));
  }
  const metric = (name: MetricName) => made.get(name) as Counter & Histogram & Gauge;
  return {
    count: (name, dims: Dimensions, value = 1) => metric(name).inc(dimensionsOf(name, dims), value),
    observe: (name, dims, value) => metric(name).observe(dimensionsOf(name, dims), value / 1000),
    gauge: (name, dims, value) =>
      metric(name).set(dimensionsOf(name, dims), METRICS[name].unit === 'Percent' ? value / 100 : value),
    flush: () => undefined,
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
