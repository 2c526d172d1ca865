import { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { ENV, queueUrlsFromEnv } from '../../../functions/deps.ts';
import { QueueNotFoundError } from '../../../shared/adapters/sqs/errors.ts';
import { QueueUrlCache } from '../../../shared/adapters/sqs/queue-urls.ts';

const sqs = new SQSClient({ region: 'eu-west-1' });
const urls = {
  default: { high: 'https://q/h.fifo', normal: 'https://q/n.fifo', low: 'https://q/l.fifo', dlq: 'https://q/d.fifo' },
};

describe('queue URLs from the environment', () => {
  it('resolves every priority and the DLQ from SAYIIR_QUEUE_URLS without a look-up', async () => {
    const r = queueUrlsFromEnv(sqs, { [ENV.queueUrls]: JSON.stringify(urls) });
    expect(await r.queueUrl('default', 'normal')).toBe('https://q/n.fifo');
    expect(await r.dlqUrl('default')).toBe('https://q/d.fifo');
    expect(r).not.toBeInstanceOf(QueueUrlCache);
  });

  it('answers a pool that is not in the map with QueueNotFoundError naming it', async () => {
    const r = queueUrlsFromEnv(sqs, { [ENV.queueUrls]: JSON.stringify(urls) });
    await expect(r.queueUrl('gpu', 'high')).rejects.toBeInstanceOf(QueueNotFoundError);
    await expect(r.dlqUrl('gpu')).rejects.toThrow(/gpu\/dlq/);
  });

  it('looks queues up by name under SAYIIR_QUEUE_PREFIX when no URLs are given (the local stack)', () => {
    expect(queueUrlsFromEnv(sqs, { [ENV.queuePrefix]: 'p' })).toBeInstanceOf(QueueUrlCache);
  });

  it('names both variables when neither is set, and refuses malformed JSON', () => {
    expect(() => queueUrlsFromEnv(sqs, {})).toThrow(/SAYIIR_QUEUE_URLS.*SAYIIR_QUEUE_PREFIX/);
    expect(() => queueUrlsFromEnv(sqs, { [ENV.queueUrls]: '{' })).toThrow(/SAYIIR_QUEUE_URLS is not JSON/);
  });
});
