/**
 * A real SQS wire-protocol server for the local stack and tests: fauxqs, in-process, on
 * 127.0.0.1 and a free port, with queues created from the same definitions
 * as the CDK stack (`shared/resources/queues.ts`). The same server speaks
 * S3's API on the same endpoint (path-style), for the payload bucket.
 */

import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { buildApp } from 'fauxqs';
import type { Priority } from '../shared/engine/task.ts';
import { dlqAttributes, dlqName, type PoolDefinition, queueAttributes, queueName } from '../shared/resources/queues.ts';

/**
 * Host named in fauxqs queue URLs. `.invalid` never resolves (RFC 2606), so a
 * test fails if anything sends to a queue URL instead of the client endpoint.
 */
export const UNRESOLVABLE_QUEUE_HOST = 'fauxqs.invalid';

/** URLs (and the DLQ ARN) of one pool's queues. */
export interface PoolQueueUrls extends Readonly<Record<Priority, string>> {
  readonly dlq: string;
  readonly dlqArn: string;
}

/** A running fauxqs server and an SDK client pointed at it. */
export interface Fauxqs {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** A client for the server: region us-east-1, dummy credentials, explicit endpoint. */
  readonly client: SQSClient;
  /** A new client like {@link client} (to add middleware to without touching the shared one). */
  newClient(): SQSClient;
  /**
   * A new S3 client for the server: like {@link client}, plus path-style
   * addressing (`<endpoint>/<bucket>/<key>`: no DNS for `<bucket>.127.0.0.1`).
   * Destroyed by {@link close}.
   */
  newS3Client(): S3Client;
  /** Creates a bucket (idempotent, as fauxqs's CreateBucket is). */
  createBucket(name: string): Promise<void>;
  /** Creates a pool's DLQ and its three priority queues; accepts a pool name or a full definition. */
  createPoolQueues(prefix: string, pool: string | PoolDefinition): Promise<PoolQueueUrls>;
  /** Stops the server (open connections included) and destroys the clients made here. */
  close(): Promise<void>;
}

/**
 * Starts fauxqs.
 *
 * @example
 * ```ts
 * const sqs = await startFauxqs();
 * const urls = await sqs.createPoolQueues('test', { name: 'default', functionTimeoutSeconds: 1, visibilityTimeoutSeconds: 1 });
 * // ...
 * await sqs.close();
 * ```
 */
export async function startFauxqs(): Promise<Fauxqs> {
  // `startFauxqs` from the package binds 0.0.0.0; build the app to bind loopback only.
  const app = buildApp({ logger: false, host: UNRESOLVABLE_QUEUE_HOST });
  const endpoint = await app.listen({ port: 0, host: '127.0.0.1' });
  return connectFauxqs(endpoint, () => app.close());
}

/**
 * Clients for a fauxqs server already listening at `endpoint` (in this
 * thread, or on the emulators' thread: see `emulator-thread.ts`). `close`
 * destroys the clients made here, then calls `closeServer`.
 */
export function connectFauxqs(endpoint: string, closeServer: () => Promise<void>): Fauxqs {
  const clients: { destroy(): void }[] = [];
  const clientConfig = {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  const newClient = (): SQSClient => {
    const client = new SQSClient(clientConfig);
    clients.push(client);
    return client;
  };
  const newS3Client = (): S3Client => {
    const client = new S3Client({ ...clientConfig, forcePathStyle: true });
    clients.push(client);
    return client;
  };
  const client = newClient();
  let s3: S3Client | undefined;

  const createQueue = async (name: string, attributes: Record<string, string>): Promise<string> => {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!QueueUrl) throw new Error(`CreateQueue '${name}' returned no URL`);
    return QueueUrl;
  };

  return {
    endpoint,
    client,
    newClient,
    newS3Client,
    async createBucket(name) {
      s3 ??= newS3Client();
      await s3.send(new CreateBucketCommand({ Bucket: name }));
    },
    async createPoolQueues(prefix, pool) {
      const definition = typeof pool === 'string' ? { name: pool } : pool;
      const dlq = await createQueue(dlqName(prefix, definition.name), dlqAttributes());
      const { Attributes } = await client.send(
        new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] }),
      );
      const dlqArn = Attributes?.QueueArn;
      if (!dlqArn) throw new Error(`no ARN for queue ${dlq}`);
      const attributes = queueAttributes(definition, dlqArn);
      const [high, normal, low] = await Promise.all(
        (['high', 'normal', 'low'] as const).map((p) => createQueue(queueName(prefix, definition.name, p), attributes)),
      );
      return { high: high as string, normal: normal as string, low: low as string, dlq, dlqArn };
    },
    async close() {
      for (const c of clients) c.destroy();
      await closeServer();
    },
  };
}
