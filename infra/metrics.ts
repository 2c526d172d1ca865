import { Duration } from 'aws-cdk-lib';
import { Metric, type MetricOptions } from 'aws-cdk-lib/aws-cloudwatch';
import { METRICS, METRICS_NAMESPACE, type MetricName } from '../shared/observability/metrics.ts';

/** A Sayiir EMF metric (see `shared/observability/metrics.ts` for names, units and dimensions). */
export function sayiirMetric(
  name: MetricName,
  dimensions: Readonly<Record<string, string>>,
  props: MetricOptions = {},
): Metric {
  const def = METRICS[name];
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: { ...dimensions },
    period: Duration.minutes(1),
    statistic: def.kind === 'histogram' ? 'p90' : def.kind === 'counter' ? 'Sum' : 'Maximum',
    ...props,
  });
}
