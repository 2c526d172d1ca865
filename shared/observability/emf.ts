import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import { type Dimensions, dimensionsOf, METRICS, METRICS_NAMESPACE, type MetricName, type Metrics } from './metrics.ts';

/**
 * The {@link Metrics} port as CloudWatch Embedded Metric Format, through
 * Powertools Metrics: observations are buffered per dimension set and
 * {@link Metrics.flush} writes one EMF line per set to stdout (Lambda ships
 * it to CloudWatch Logs, which extracts the metrics). Namespace `Sayiir`; no
 * `service` dimension, only the metric's own (`workflow`, `pool`).
 *
 * @example
 * ```ts
 * const metrics = emfMetrics();
 * metrics.count('TasksCompleted', { workflow: 'orders', pool: 'default' });
 * metrics.flush(); // {"_aws":{"CloudWatchMetrics":[{"Namespace":"Sayiir","Dimensions":[["workflow","pool"]],…}]},"TasksCompleted":1,…}
 * ```
 */
export function emfMetrics(options: { readonly namespace?: string } = {}): Metrics {
  const emf = new PowertoolsMetrics({ namespace: options.namespace ?? METRICS_NAMESPACE });
  emf.clearDefaultDimensions(); // Powertools adds `service`; Sayiir's dimensions are its own.
  const buffer = new Map<string, { dims: Record<string, string>; points: [MetricName, number][] }>();
  const add = (name: MetricName, given: Dimensions, value: number) => {
    if (!Number.isFinite(value)) return;
    const dims = dimensionsOf(name, given);
    const key = JSON.stringify(dims);
    let set = buffer.get(key);
    if (!set) buffer.set(key, (set = { dims, points: [] }));
    // A counter is summed into one value per flush; histogram and gauge values are kept one by one.
    const summed = METRICS[name].kind === 'counter' ? set.points.find(([n]) => n === name) : undefined;
    if (summed) summed[1] += value;
    else set.points.push([name, value]);
  };
  return {
    count: (name, dims, value = 1) => add(name, dims, value),
    observe: (name, dims, value) => add(name, dims, value),
    gauge: (name, dims, value) => add(name, dims, value),
    flush() {
      for (const { dims, points } of buffer.values()) {
        if (Object.keys(dims).length > 0) emf.addDimensions(dims);
        for (const [name, value] of points) emf.addMetric(name, METRICS[name].unit, value);
        emf.publishStoredMetrics();
      }
      buffer.clear();
    },
  };
}
