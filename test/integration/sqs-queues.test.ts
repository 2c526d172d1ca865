import { GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dlqAttributes,
  dlqName,
  PRIORITIES,
  QueueDefinitionError,
  queueAttributes,
  queueName,
  resolvePool,
} from '../../shared/resources/queues.ts';
import { type Fauxqs, startFauxqs } from '../support/fauxqs.ts';

describe('queue definitions', () => {
  it('orders priorities high, normal, low', () => {
    expect(PRIORITIES).toEqual(['high', 'normal', 'low']);
  });

  it('names three FIFO queues and a FIFO DLQ per pool', () => {
    expect(PRIORITIES.map((p) => queueName('sayiir', 'default', p))).toEqual([
      'sayiir-default-high.fifo',
      'sayiir-default-normal.fifo',
      'sayiir-default-low.fifo',
    ]);
    expect(dlqName('sayiir', 'gpu')).toBe('sayiir-gpu-dlq.fifo');
  });

  it('rejects names SQS would reject', () => {
    expect(() => queueName('sayiir', 'my pool', 'high')).toThrow(QueueDefinitionError);
    expect(() => dlqName('say.iir', 'default')).toThrow(QueueDefinitionError);
    expect(() => queueName('p'.repeat(60), 'q'.repeat(10), 'normal')).toThrow(/longer than 80/);
  });

  it('derives the visibility timeout as 6x the function timeout unless set, never below it', () => {
    expect(resolvePool({ name: 'default' })).toMatchObject({
      functionTimeoutSeconds: 900,
      visibilityTimeoutSeconds: 5400,
      maxReceiveCount: 5,
      messageRetentionSeconds: 1_209_600,
    });
    expect(resolvePool({ name: 'quick', functionTimeoutSeconds: 30 }).visibilityTimeoutSeconds).toBe(180);
    expect(
      resolvePool({ name: 'x', functionTimeoutSeconds: 30, visibilityTimeoutSeconds: 45 }).visibilityTimeoutSeconds,
    ).toBe(45);
    expect(() => resolvePool({ name: 'x', functionTimeoutSeconds: 60, visibilityTimeoutSeconds: 30 })).toThrow(
      QueueDefinitionError,
    );
    expect(() => resolvePool({ name: 'x', maxReceiveCount: 0 })).toThrow(QueueDefinitionError);
  });

  it('gives priority queues high-throughput FIFO attributes and a redrive policy to the DLQ', () => {
    const arn = 'arn:aws:sqs:us-east-1:123456789012:sayiir-default-dlq.fifo';
    const attributes = queueAttributes({ name: 'default', maxReceiveCount: 3 }, arn);
    expect(attributes).toMatchObject({
      FifoQueue: 'true',
      ContentBasedDeduplication: 'false',
      DeduplicationScope: 'messageGroup',
      FifoThroughputLimit: 'perMessageGroupId',
      VisibilityTimeout: '5400',
      MessageRetentionPeriod: '1209600',
      SqsManagedSseEnabled: 'true',
    });
    expect(JSON.parse(attributes.RedrivePolicy ?? '{}')).toEqual({ deadLetterTargetArn: arn, maxReceiveCount: 3 });
    expect(dlqAttributes()).not.toHaveProperty('RedrivePolicy');
    expect(dlqAttributes().FifoQueue).toBe('true');
  });
});

describe('queues created on fauxqs from the definitions', () => {
  let sqs: Fauxqs;
  beforeAll(async () => {
    sqs = await startFauxqs();
  });
  afterAll(async () => {
    await sqs?.close();
  });

  it('carry the defined attributes, the redrive policy pointing at the pool DLQ', async () => {
    const urls = await sqs.createPoolQueues('defs', {
      name: 'default',
      functionTimeoutSeconds: 30,
      visibilityTimeoutSeconds: 40,
    });
    const { Attributes = {} } = await sqs.client.send(
      new GetQueueAttributesCommand({ QueueUrl: urls.high, AttributeNames: ['All'] }),
    );
    expect(Attributes).toMatchObject({
      FifoQueue: 'true',
      ContentBasedDeduplication: 'false',
      DeduplicationScope: 'messageGroup',
      FifoThroughputLimit: 'perMessageGroupId',
      VisibilityTimeout: '40',
      MessageRetentionPeriod: '1209600',
      QueueArn: 'arn:aws:sqs:us-east-1:000000000000:defs-default-high.fifo',
    });
    expect(JSON.parse(Attributes.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:defs-default-dlq.fifo',
      maxReceiveCount: 5,
    });
    expect(urls.dlqArn).toBe('arn:aws:sqs:us-east-1:000000000000:defs-default-dlq.fifo');
  });

  it('can be created twice with the same definitions (idempotent, as on every local start)', async () => {
    const first = await sqs.createPoolQueues('again', 'default');
    const second = await sqs.createPoolQueues('again', 'default');
    expect(second).toEqual(first);
  });
});

describe('startFauxqs', () => {
  it('listens on loopback, and close() really stops it, even with a long poll in flight', async () => {
    const sqs = await startFauxqs();
    expect(new URL(sqs.endpoint).hostname).toBe('127.0.0.1');
    expect((await fetch(`${sqs.endpoint}/health`)).ok).toBe(true);
    const urls = await sqs.createPoolQueues('close', 'default');
    const poll = sqs.client
      .send(new ReceiveMessageCommand({ QueueUrl: urls.normal, WaitTimeSeconds: 10 }))
      .catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const before = Date.now();
    await sqs.close();
    expect(Date.now() - before).toBeLessThan(2000);
    await poll;
    await expect(fetch(`${sqs.endpoint}/health`)).rejects.toThrow();
  });
});
