/** Finding the URLs of a pool's queues. */

import { GetQueueUrlCommand, QueueDoesNotExist, type SQSClient } from '@aws-sdk/client-sqs';
import type { Priority } from '../../engine/task.ts';
import { dlqName, queueName } from '../../resources/queues.ts';
import { QueueNotFoundError } from './errors.ts';

/** URL of a pool's queue for one priority. */
export type QueueUrlResolver = (pool: string, priority: Priority) => Promise<string>;

/** URL of a pool's dead-letter queue. */
export type DlqUrlResolver = (pool: string) => Promise<string>;

/**
 * Looks queue URLs up by name with `GetQueueUrl`, once per queue: the answer
 * is cached for the life of the process (a failed look-up is not, so the next
 * call tries again).
 *
 * URLs are only ever passed back to the SDK as `QueueUrl`: with an explicit
 * `endpoint` on the client (the local stack), the SDK sends to that endpoint
 * whatever host the URL names.
 *
 * @example
 * ```ts
 * const urls = new QueueUrlCache(sqs, 'sayiir');
 * const queue = new SqsTaskQueue(sqs, urls.queueUrl);
 * const deadLetters = new DeadLetters(sqs, urls.dlqUrl);
 * ```
 */
export class QueueUrlCache {
  private readonly cache = new Map<string, Promise<string>>();

  constructor(
    private readonly sqs: SQSClient,
    private readonly prefix: string,
  ) {}

  /** {@link QueueUrlResolver} of this cache (bound, so it can be passed around). */
  readonly queueUrl: QueueUrlResolver = (pool, priority) => this.byName(queueName(this.prefix, pool, priority));

  /** {@link DlqUrlResolver} of this cache (bound). */
  readonly dlqUrl: DlqUrlResolver = (pool) => this.byName(dlqName(this.prefix, pool));

  /**
   * URL of a queue by name.
   *
   * @throws QueueNotFoundError when no queue has that name.
   */
  byName(name: string): Promise<string> {
    let url = this.cache.get(name);
    if (!url) {
      url = this.lookUp(name);
      this.cache.set(name, url);
      url.catch(() => this.cache.delete(name));
    }
    return url;
  }

  private async lookUp(name: string): Promise<string> {
    try {
      const { QueueUrl } = await this.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      if (!QueueUrl) throw new QueueNotFoundError(name);
      return QueueUrl;
    } catch (error) {
      if (error instanceof QueueDoesNotExist) throw new QueueNotFoundError(name, { cause: error });
      throw error;
    }
  }
}

/** The URLs of one pool's queues, as the construct passes them to the functions. */
export type PoolQueueUrlMap = Readonly<Record<Priority | 'dlq', string>>;

/**
 * Resolvers over URLs known in advance (the construct passes every pool's
 * queue URLs in `SAYIIR_QUEUE_URLS`, so the queues need no fixed name and no
 * look-up). A pool or queue that is not in the map is a `QueueNotFoundError`
 * naming it.
 *
 * @example
 * ```ts
 * const urls = staticQueueUrls({ default: { high: 'https://…', normal: 'https://…', low: 'https://…', dlq: 'https://…' } });
 * const queue = new SqsTaskQueue(sqs, urls.queueUrl);
 * ```
 */
export function staticQueueUrls(map: Readonly<Record<string, PoolQueueUrlMap>>): {
  readonly queueUrl: QueueUrlResolver;
  readonly dlqUrl: DlqUrlResolver;
} {
  const find = (pool: string, which: Priority | 'dlq'): Promise<string> => {
    const url = map[pool]?.[which];
    return url ? Promise.resolve(url) : Promise.reject(new QueueNotFoundError(`${pool}/${which}`));
  };
  return { queueUrl: (pool, priority) => find(pool, priority), dlqUrl: (pool) => find(pool, 'dlq') };
}
