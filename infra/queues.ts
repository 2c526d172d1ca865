import { Duration } from 'aws-cdk-lib';
import {
  type DeadLetterQueue,
  type DeduplicationScope,
  type FifoThroughputLimit,
  Queue,
  QueueEncryption,
  type QueueProps,
} from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Priority } from '../shared/engine/task.ts';
import { dlqAttributes, dlqName, PRIORITIES, queueAttributes, queueName } from '../shared/resources/queues.ts';
import { EngineConfigError, type ResolvedWorkerPool } from './pools.ts';

/**
 * Converts SQS `CreateQueue` attributes (what the shared queue definitions
 * produce for the local stack) into CDK queue props, so the cloud queues are
 * built from the same source. An attribute without a mapping fails the synth:
 * a new attribute in `shared/resources/queues.ts` cannot be silently dropped.
 *
 * @param deadLetterQueue the queue a `RedrivePolicy` points at (its ARN in the attributes is ignored).
 * @example
 * ```ts
 * new Queue(this, 'Dlq', { queueName: dlqName('sayiir', 'default'), ...queuePropsFromAttributes(dlqAttributes()) });
 * ```
 */
export function queuePropsFromAttributes(attributes: Record<string, string>, deadLetterQueue?: Queue): QueueProps {
  const props: { -readonly [K in keyof QueueProps]: QueueProps[K] } = {};
  const flag = (name: string, value: string): boolean => {
    if (value !== 'true' && value !== 'false') throw new EngineConfigError(`SQS attribute ${name}: '${value}'`);
    return value === 'true';
  };
  for (const [name, value] of Object.entries(attributes)) {
    switch (name) {
      case 'FifoQueue':
        props.fifo = flag(name, value);
        break;
      case 'ContentBasedDeduplication':
        props.contentBasedDeduplication = flag(name, value);
        break;
      case 'DeduplicationScope':
        props.deduplicationScope = value as DeduplicationScope;
        break;
      case 'FifoThroughputLimit':
        props.fifoThroughputLimit = value as FifoThroughputLimit;
        break;
      case 'MessageRetentionPeriod':
        props.retentionPeriod = Duration.seconds(Number(value));
        break;
      case 'VisibilityTimeout':
        props.visibilityTimeout = Duration.seconds(Number(value));
        break;
      case 'SqsManagedSseEnabled':
        if (flag(name, value)) props.encryption = QueueEncryption.SQS_MANAGED;
        break;
      case 'RedrivePolicy': {
        const { maxReceiveCount } = JSON.parse(value) as { maxReceiveCount: number };
        if (!deadLetterQueue) throw new EngineConfigError('a RedrivePolicy needs the dead-letter queue');
        props.deadLetterQueue = { queue: deadLetterQueue, maxReceiveCount } satisfies DeadLetterQueue;
        break;
      }
      default:
        throw new EngineConfigError(`SQS attribute ${name} has no CDK mapping in infra/queues.ts`);
    }
  }
  return props;
}

/** The queues of one worker pool. */
export interface PoolQueues {
  /** One FIFO queue per priority. */
  readonly byPriority: Readonly<Record<Priority, Queue>>;
  /** The FIFO dead-letter queue the three redrive to. */
  readonly deadLetterQueue: Queue;
}

/** Props of {@link SayiirQueues}. */
export interface SayiirQueuesProps {
  /** Prefix of every queue name: `<prefix>-<pool>-<priority>.fifo`. */
  readonly prefix: string;
  /** The pools, resolved (visibility timeout and redrive count included). */
  readonly pools: readonly ResolvedWorkerPool[];
}

/**
 * Per pool: FIFO queues `high`, `normal`, `low` redriving to one FIFO DLQ,
 * named and configured by `shared/resources/queues.ts` (high-throughput FIFO,
 * SQS-managed encryption, 14-day retention, visibility 6 × the worker
 * timeout). Every queue refuses non-TLS requests.
 */
export class SayiirQueues extends Construct {
  /** The queues of each pool, by pool name. */
  readonly pools: Readonly<Record<string, PoolQueues>>;

  constructor(scope: Construct, id: string, props: SayiirQueuesProps) {
    super(scope, id);
    const pools: Record<string, PoolQueues> = {};
    for (const pool of props.pools) {
      const scopeOfPool = new Construct(this, pool.name);
      const deadLetterQueue = new Queue(scopeOfPool, 'Dlq', {
        queueName: dlqName(props.prefix, pool.name),
        enforceSSL: true,
        ...queuePropsFromAttributes(dlqAttributes()),
      });
      const queue = (priority: Priority) =>
        new Queue(scopeOfPool, priority, {
          queueName: queueName(props.prefix, pool.name, priority),
          enforceSSL: true,
          ...queuePropsFromAttributes(queueAttributes(pool.definition, deadLetterQueue.queueArn), deadLetterQueue),
        });
      pools[pool.name] = {
        byPriority: Object.fromEntries(PRIORITIES.map((p) => [p, queue(p)])) as Record<Priority, Queue>,
        deadLetterQueue,
      };
    }
    this.pools = pools;
  }

  /** Every priority queue of every pool (not the DLQs). */
  allQueues(): Queue[] {
    return Object.values(this.pools).flatMap((p) => PRIORITIES.map((priority) => p.byPriority[priority]));
  }
}
