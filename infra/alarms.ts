import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IAlarmAction, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { PRIORITIES } from '../shared/resources/queues.ts';
import type { PoolQueues } from './queues.ts';

/** Props of {@link SayiirAlarms}. */
export interface SayiirAlarmsProps {
  /** The queues of each pool, by pool name. */
  readonly pools: Readonly<Record<string, PoolQueues>>;
  /** Where every alarm goes (SNS topics, ...). */
  readonly alarmActions: readonly IAlarmAction[];
  /** Age of the oldest message of a priority queue above which it alarms. */
  readonly queueAgeThreshold: Duration;
}

/**
 * CloudWatch alarms on the queues: a dead-letter queue holding any message
 * (a task exhausted its receives), and a priority queue whose oldest message
 * is older than a threshold (workers are not keeping up, or are failing).
 */
export class SayiirAlarms extends Construct {
  /** Every alarm, DLQ alarms first. */
  readonly alarms: readonly Alarm[];

  constructor(scope: Construct, id: string, props: SayiirAlarmsProps) {
    super(scope, id);
    const alarms: Alarm[] = [];
    for (const [pool, queues] of Object.entries(props.pools)) {
      alarms.push(
        new Alarm(this, `${pool}DlqNotEmpty`, {
          alarmDescription: `Sayiir pool '${pool}': a dispatch exhausted its receives and is in the dead-letter queue`,
          metric: queues.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: Duration.minutes(1),
            statistic: 'Maximum',
          }),
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
    for (const alarm of alarms) alarm.addAlarmAction(...props.alarmActions);
    this.alarms = alarms;
  }
}
