import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IAlarmAction, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { PRIORITIES } from '../shared/resources/queues.ts';
import { sayiirMetric } from './metrics.ts';
import type { PoolQueues } from './queues.ts';

/** Props of {@link SayiirAlarms}. */
export interface SayiirAlarmsProps {
  /** The queues of each pool, by pool name. */
  readonly pools: Readonly<Record<string, PoolQueues>>;
  /** Where every alarm goes (SNS topics, ...). */
  readonly alarmActions: readonly IAlarmAction[];
  /** Age of the oldest message of a priority queue above which it alarms. */
  readonly queueAgeThreshold: Duration;
  /** The engine's functions, by a readable name (`api`, `worker-default`, …): each alarms on its errors and throttles. */
  readonly functions?: Readonly<Record<string, IFunction>>;
  /** The reaper: alarms when it has not run for {@link REAPER_SILENCE}. */
  readonly reaper?: IFunction;
}

/** The reaper runs every minute: five minutes without an invocation means timers and recovery have stopped. */
export const REAPER_SILENCE = Duration.minutes(5);

/**
 * CloudWatch alarms: a pool with a new dead letter (the `DeadLetters` EMF
 * metric: a task's retries ran out, or its queue gave up on it), a priority queue whose oldest message
 * is older than a threshold (workers are not keeping up, or are failing);
 * and on the functions: any error or throttle of each one, and the reaper
 * not running (if it stops, timers stop firing and lost work is never
 * recovered, silently).
 */
export class SayiirAlarms extends Construct {
  /** Every alarm, DLQ alarms first. */
  readonly alarms: readonly Alarm[];

  constructor(scope: Construct, id: string, props: SayiirAlarmsProps) {
    super(scope, id);
    const alarms: Alarm[] = [];
    for (const pool of Object.keys(props.pools)) {
      alarms.push(
        new Alarm(this, `${pool}DeadLetters`, {
          alarmDescription: `Sayiir pool '${pool}': a task was given up on (a dead-letter record was created)`,
          metric: sayiirMetric('DeadLetters', { pool }, { period: Duration.minutes(1), statistic: 'Sum' }),
          comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
          threshold: 0,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    for (const [pool, queues] of Object.entries(props.pools)) {
      for (const priority of PRIORITIES) {
        alarms.push(
          new Alarm(this, `${pool}${priority}Age`, {
            alarmDescription: `Sayiir pool '${pool}', ${priority} priority: oldest message older than ${props.queueAgeThreshold.toHumanString()}`,
            metric: queues.byPriority[priority].metricApproximateAgeOfOldestMessage({
              period: Duration.minutes(1),
              statistic: 'Maximum',
            }),
            comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
            threshold: props.queueAgeThreshold.toSeconds(),
            evaluationPeriods: 1,
            treatMissingData: TreatMissingData.NOT_BREACHING,
          }),
        );
      }
    }
    for (const [name, fn] of Object.entries(props.functions ?? {})) {
      const id = name.replace(/[^A-Za-z0-9]/g, '');
      alarms.push(
        new Alarm(this, `${id}Errors`, {
          alarmDescription: `Sayiir function '${name}': an invocation failed`,
          metric: fn.metricErrors({ period: Duration.minutes(1), statistic: 'Sum' }),
          comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
          threshold: 0,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
        new Alarm(this, `${id}Throttles`, {
          alarmDescription: `Sayiir function '${name}': an invocation was throttled (concurrency limit)`,
          metric: fn.metricThrottles({ period: Duration.minutes(1), statistic: 'Sum' }),
          comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
          threshold: 0,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    if (props.reaper) {
      alarms.push(
        new Alarm(this, 'ReaperNotRunning', {
          alarmDescription: `Sayiir reaper: no invocation for ${REAPER_SILENCE.toHumanString()}; timers and recovery have stopped`,
          metric: props.reaper.metricInvocations({ period: REAPER_SILENCE, statistic: 'Sum' }),
          comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
          threshold: 1,
          evaluationPeriods: 1,
          // No data at all is the failure this alarm exists for.
          treatMissingData: TreatMissingData.BREACHING,
        }),
      );
    }
    for (const alarm of alarms) alarm.addAlarmAction(...props.alarmActions);
    this.alarms = alarms;
  }
}
