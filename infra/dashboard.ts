import { Duration } from 'aws-cdk-lib';
import { Dashboard, GraphWidget, type IMetric, MathExpression, TextWidget } from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, type MetricName } from '../shared/observability/metrics.ts';
import { PRIORITIES } from '../shared/resources/queues.ts';
import type { PoolQueues } from './queues.ts';

/** Props of {@link SayiirDashboard}. */
export interface SayiirDashboardProps {
  readonly dashboardName?: string;
  /** The queues of each pool, by pool name. */
  readonly pools: Readonly<Record<string, PoolQueues>>;
  /** The engine's functions, by a readable name. */
  readonly functions: Readonly<Record<string, IFunction>>;
}

const PERIOD = Duration.minutes(1);

/**
 * Every series of a Sayiir EMF metric, whatever its workflows and pools: a
 * CloudWatch SEARCH over the namespace, so the dashboard needs no list of
 * workflows at synth time.
 */
export function searchSayiir(
  name: MetricName,
  dimensions: readonly string[],
  statistic: string,
  label: string,
): IMetric {
  const schema = [METRICS_NAMESPACE, ...dimensions].join(',');
  return new MathExpression({
    expression: `SEARCH('{${schema}} MetricName="${name}"', '${statistic}', ${PERIOD.toSeconds()})`,
    usingMetrics: {},
    label,
    period: PERIOD,
  });
}

/**
 * The engine's CloudWatch dashboard: runs and tasks (EMF, by workflow and
 * pool), latencies, queues (depth and age per pool and priority, DLQs), and
 * the functions (errors, throttles, duration).
 */
export class SayiirDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: SayiirDashboardProps) {
    super(scope, id);
    const wp = ['workflow', 'pool'];
    const queueMetrics = (pick: (q: PoolQueues, p: (typeof PRIORITIES)[number]) => IMetric) =>
      Object.entries(props.pools).flatMap(([, q]) => PRIORITIES.map((p) => pick(q, p)));
    const fns = Object.entries(props.functions);
    this.dashboard = new Dashboard(this, 'Dashboard', {
      ...(props.dashboardName ? { dashboardName: props.dashboardName } : {}),
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new TextWidget({
            markdown:
              '# Sayiir\nRuns and tasks by workflow and pool (EMF, namespace `Sayiir`), queues per pool and priority, functions.',
            width: 24,
            height: 2,
          }),
        ],
        [
          new GraphWidget({
            title: 'Runs',
            width: 8,
            left: [
              searchSayiir('RunsStarted', ['workflow'], 'Sum', 'started'),
              searchSayiir('RunsCompleted', ['workflow'], 'Sum', 'completed'),
              searchSayiir('RunsFailed', ['workflow'], 'Sum', 'failed'),
              searchSayiir('RunsCancelled', ['workflow'], 'Sum', 'cancelled'),
            ],
          }),
          new GraphWidget({
            title: 'Tasks',
            width: 8,
            left: [
              searchSayiir('TasksCompleted', wp, 'Sum', 'completed'),
              searchSayiir('TasksRetried', wp, 'Sum', 'retried'),
              searchSayiir('TasksFailed', wp, 'Sum', 'failed'),
              searchSayiir('DeadLetters', wp, 'Sum', 'dead letters'),
            ],
          }),
          new GraphWidget({
            title: 'Reaper and journal',
            width: 8,
            left: [
              searchSayiir('ReaperRedispatches', [], 'Sum', 're-dispatches'),
              searchSayiir('ReaperTimersFired', [], 'Sum', 'timers fired'),
              searchSayiir('JournalConflicts', [], 'Sum', 'journal conflicts'),
            ],
          }),
        ],
        [
          new GraphWidget({
            title: 'Task duration p50 / p99 (ms)',
            width: 8,
            left: [searchSayiir('TaskDuration', wp, 'p50', 'p50'), searchSayiir('TaskDuration', wp, 'p99', 'p99')],
          }),
          new GraphWidget({
            title: 'Queue wait p99, step latency p99 (ms)',
            width: 8,
            left: [
              searchSayiir('QueueWait', wp, 'p99', 'queue wait'),
              searchSayiir('StepLatency', wp, 'p99', 'step latency'),
            ],
          }),
          new GraphWidget({
            title: 'Run duration p50 / p90 (ms)',
            width: 8,
            left: [
              searchSayiir('RunDuration', ['workflow'], 'p50', 'p50'),
              searchSayiir('RunDuration', ['workflow'], 'p90', 'p90'),
            ],
          }),
        ],
        [
          new GraphWidget({
            title: 'Queue depth (visible messages)',
            width: 8,
            left: queueMetrics((q, p) =>
              q.byPriority[p].metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
            ),
          }),
          new GraphWidget({
            title: 'Oldest message age (s)',
            width: 8,
            left: queueMetrics((q, p) =>
              q.byPriority[p].metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' }),
            ),
          }),
          new GraphWidget({
            title: 'Dead letters per pool; worker utilization (%)',
            width: 8,
            left: [searchSayiir('DeadLetters', ['pool'], 'Sum', 'dead letters')],
            right: [searchSayiir('WorkerUtilization', ['pool'], 'Average', 'utilization')],
          }),
        ],
        [
          new GraphWidget({
            title: 'Function errors and throttles',
            width: 12,
            left: fns.flatMap(([name, fn]) => [
              fn.metricErrors({ period: PERIOD, statistic: 'Sum', label: `${name} errors` }),
              fn.metricThrottles({ period: PERIOD, statistic: 'Sum', label: `${name} throttles` }),
            ]),
          }),
          new GraphWidget({
            title: 'Function duration p99 (ms)',
            width: 12,
            left: fns.map(([name, fn]) => fn.metricDuration({ period: PERIOD, statistic: 'p99', label: name })),
          }),
        ],
      ],
    });
  }
}
