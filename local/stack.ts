import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { makeHandler as makeApiHandler } from '../functions/api/handler.ts';
import type { WorkerHandlerDeps } from '../functions/worker/handler.ts';
import { makeHandler as makeWorkerHandler } from '../functions/worker/handler.ts';
import { DynamoClaimStore } from '../shared/adapters/dynamodb/claim-store.ts';
import { DynamoDeadLetterStore } from '../shared/adapters/dynamodb/dead-letter-store.ts';
import { DynamoInstanceStore } from '../shared/adapters/dynamodb/instance-store.ts';
import { FolderObjectStore } from '../shared/adapters/fs/object-store.ts';
import { systemClock } from '../shared/adapters/memory/clock.ts';
import { S3ObjectStore } from '../shared/adapters/s3/object-store.ts';
import { FileSecrets, readSecretsFile } from '../shared/adapters/secrets/file.ts';
import { DeadLetters } from '../shared/adapters/sqs/dead-letters.ts';
import { QueueUrlCache } from '../shared/adapters/sqs/queue-urls.ts';
import { SqsTaskQueue } from '../shared/adapters/sqs/task-queue.ts';
import { DEFAULT_API_KEY_SECRET } from '../shared/api/auth.ts';
import type { AnyFlow } from '../shared/engine/definition.ts';
import { poolsOf } from '../shared/engine/describe.ts';
import { observedDeadLetters, observedStore, reaperObserver } from '../shared/observability/observer.ts';
import { tracedQueue } from '../shared/observability/tracing.ts';
import type { ObjectStore } from '../shared/ports/object-store.ts';
import type { TaskQueue } from '../shared/ports/task-queue.ts';
import { reapOnce } from '../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../shared/runtime/registry.ts';
import type { TaskReport, WorkerDeps } from '../shared/runtime/worker.ts';
import { workflows as exampleWorkflows } from '../workflows/index.ts';
import { startDynalite } from './dynalite.ts';
import { startFauxqs } from './fauxqs.ts';
import { startHttpGateway } from './http-gateway.ts';
import { localTelemetry, serveMetrics } from './observability.ts';
import { type SqsPoller, startSqsPoller } from './sqs-poller.ts';
import { withUi } from './ui-route.ts';

/**
 * The whole system on one machine, with the same handler code that runs in
 * Lambda, over the real DynamoDB and SQS wire protocols:
 *
 * - dynalite (data under `<dataDir>/dynamodb`, so a restart resumes runs);
 * - fauxqs, with the queues of every pool the workflows use and, on its S3
 *   API, the payload bucket {@link LOCAL_PAYLOAD_BUCKET};
 * - an HTTP server playing API Gateway in front of `functions/api`;
 * - one poller per pool playing the SQS event source of `functions/worker`;
 * - a timer invoking the reaper every `reaperIntervalMs`.
 *
 * Queue messages live in memory only: they are hints, and after a restart the
 * reaper re-dispatches whatever was in flight.
 */
export interface LocalStackOptions {
  /** Where data and the development API key live. @default '.sayiir' */
  readonly dataDir?: string;
  /** HTTP port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default the example workflows */
  readonly workflows?: readonly AnyFlow[];
  /** @default 1_000 */
  readonly reaperIntervalMs?: number;
  /** How long a dispatched task may stay unclaimed before the reaper sends it again. @default 3_000 */
  readonly redispatchAfterMs?: number;
  /** Worker claim timings. @default { reserveTtlMs: 5_000, leaseMs: 15_000, heartbeatMs: 3_000 } */
  readonly claims?: { readonly reserveTtlMs?: number; readonly leaseMs?: number; readonly heartbeatMs?: number };
  /** Batches in flight per pool. @default 4 */
  readonly pollerConcurrency?: number;
  /**
   * Worker function timeout (s), as Lambda's: a task runs inline only if its
   * own timeout fits in what is left. Also the queues' visibility timeout.
   * @default 900
   */
  readonly workerTimeoutSeconds?: number;
  /** Messages per worker invocation. @default 10 */
  readonly batchSize?: number;
  /** Run same-pool successors inline. @default true */
  readonly inline?: boolean;
  /** Called with the SDK clients before anything runs (tests add middleware here). */
  readonly instrument?: (clients: { readonly dynamo: DynamoDBClient; readonly sqs: SQSClient }) => void;
  /** Each task's outcome. */
  readonly onTask?: (report: TaskReport) => void;
  /** Fault injection in the workers (see `WorkerDeps.faults`). */
  readonly workerFaults?: WorkerDeps['faults'];
  /** Log lines: the functions' structured lines (see {@link LocalStackOptions.logFormat}) and the stack's own. @default nothing */
  readonly log?: (line: string) => void;
  /** `pretty` for a person at a terminal. @default 'json' */
  readonly logFormat?: 'json' | 'pretty';
  /** Port of the local-only OpenMetrics endpoint (`http://127.0.0.1:<port>/metrics`); 0 picks a free one. @default 0 */
  readonly metricsPort?: number;
  /**
   * Where values over the offload threshold go: `folder` keeps them under
   * `<dataDir>/payloads` (they survive a restart, like the tables); `s3`
   * sends them to fauxqs's S3 API over the wire (kept in memory: lost when
   * the stack stops), for tests of the S3 path.
   * @default 'folder'
   */
  readonly payloads?: 'folder' | 's3';
}

export interface LocalStack {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  /** A valid development API key (header `x-api-key`). */
  readonly apiKey: string;
  readonly dataDir: string;
  readonly pools: readonly string[];
  readonly dynamo: DynamoDBClient;
  readonly sqs: SQSClient;
  /** An S3 client for fauxqs (path-style). */
  readonly s3: S3Client;
  /** The payload object store (see {@link LocalStackOptions.payloads}). */
  readonly objects: ObjectStore;
  readonly store: DynamoInstanceStore;
  readonly claims: DynamoClaimStore;
  /** The dead-letter store (the reaper drains the pools' DLQs into it). */
  readonly deadLetters: DynamoDeadLetterStore;
  /** The OpenMetrics endpoint, on 127.0.0.1 only (no API key: see `local/observability.ts`). */
  readonly metricsUrl: string;
  /** Runs one reaper pass now. */
  reap(): ReturnType<typeof reapOnce>;
  /** Stops everything; the data folder stays. */
  stop(): Promise<void>;
}

const QUEUE_PREFIX = 'sayiir-local';

/** The payload bucket of the local stack, on fauxqs's S3 API (created at start). */
export const LOCAL_PAYLOAD_BUCKET = 'sayiir-local-payloads';

/**
 * The payload object store of the local stack, over an S3 client for its
 * fauxqs (`Fauxqs.newS3Client()`, or {@link LocalStack.s3}).
 *
 * @example
 * ```ts
 * const sqs = await startFauxqs();
 * await sqs.createBucket(LOCAL_PAYLOAD_BUCKET);
 * const objects = localObjectStore(sqs.newS3Client());
 * ```
 */
export function localObjectStore(client: S3Client): S3ObjectStore {
  return new S3ObjectStore({ client, bucket: LOCAL_PAYLOAD_BUCKET });
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const log = options.log ?? (() => undefined);
  const dataDir = resolve(options.dataDir ?? '.sayiir');
  await mkdir(dataDir, { recursive: true });
  const apiKey = await ensureApiKey(join(dataDir, 'secrets.json'));
  const workflows = options.workflows ?? exampleWorkflows;
  const registry = new WorkflowRegistry(workflows);
  const pools = [...new Set(['default', ...workflows.flatMap(poolsOf)])].sort();
  let queue: TaskQueue | undefined;
  const telemetry = localTelemetry({
    ...(options.log ? { write: options.log } : {}),
    format: options.logFormat ?? 'json',
    pools,
    queue: () => queue,
  });

  const stoppers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stoppers.splice(0).reverse()) await s().catch((e) => log(`stop: ${String(e)}`));
  };
  try {
    const db = await startDynalite({ path: join(dataDir, 'dynamodb') });
    stoppers.push(() => db.close());
    const sqs = await startFauxqs();
    stoppers.push(() => sqs.close());
    await sqs.createBucket(LOCAL_PAYLOAD_BUCKET);
    const s3 = sqs.newS3Client();
    const objects: ObjectStore =
      options.payloads === 's3'
        ? localObjectStore(s3)
        : new FolderObjectStore({ directory: join(dataDir, 'payloads') });
    options.instrument?.({ dynamo: db.client, sqs: sqs.client });

    const timeoutSeconds = options.workerTimeoutSeconds ?? 900;
    const poolUrls = new Map<string, Awaited<ReturnType<typeof sqs.createPoolQueues>>>();
    for (const pool of pools) {
      poolUrls.set(
        pool,
        await sqs.createPoolQueues(QUEUE_PREFIX, {
          name: pool,
          functionTimeoutSeconds: timeoutSeconds,
          // Locally the reaper recovers lost work within seconds; a failed
          // batch need not wait six function timeouts to come back.
          visibilityTimeoutSeconds: timeoutSeconds,
        }),
      );
    }

    const metricsServer = await serveMetrics(telemetry.metrics, options.metricsPort ?? 0);
    stoppers.push(() => metricsServer.close());
    const store = observedStore(
      new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances, objects }),
      telemetry,
    );
    const claims = new DynamoClaimStore({ client: db.client, tableName: db.tables.claims });
    const urls = new QueueUrlCache(sqs.client, QUEUE_PREFIX);
    const sqsQueue = new SqsTaskQueue(sqs.client, urls.queueUrl);
    const pollers = new Map<string, SqsPoller>();
    // Sent messages wake their pool's idle pollers at once (Lambda's event source long-polls).
    queue = tracedQueue<TaskQueue>(
      {
        send: async (dispatches) => {
          await sqsQueue.send(dispatches);
          for (const pool of new Set(dispatches.map((d) => d.pool))) pollers.get(pool)?.nudge();
        },
        waiting: (pool, priority) => sqsQueue.waiting(pool, priority),
      },
      () => systemClock.now(),
    );
    const deadLetters = observedDeadLetters(
      new DynamoDeadLetterStore({ client: db.client, tableName: db.tables.instances }),
      telemetry,
    );
    const deadLetterQueue = new DeadLetters(sqs.client, urls.dlqUrl);
    const secrets = new FileSecrets(join(dataDir, 'secrets.json'));
    const clock = systemClock;

    const api = makeApiHandler({
      store,
      queue,
      registry,
      secrets,
      clock,
      apiKeySecretName: DEFAULT_API_KEY_SECRET,
      claims,
      deadLetters,
      redispatchAfterMs: options.redispatchAfterMs ?? 3_000,
      telemetry,
    });
    const gateway = await startHttpGateway({ handler: withUi(api), port: options.port ?? 0 });
    stoppers.push(() => gateway.close());

    for (const pool of pools) {
      const urls = poolUrls.get(pool);
      if (!urls) continue;
      const deps: WorkerHandlerDeps = {
        telemetry,
        store,
        claims,
        queue,
        registry,
        clock,
        secrets,
        pool,
        workerId: `local-${pool}-${randomUUID().slice(0, 8)}`,
        reserveTtlMs: options.claims?.reserveTtlMs ?? 5_000,
        leaseMs: options.claims?.leaseMs ?? 15_000,
        heartbeatMs: options.claims?.heartbeatMs ?? 3_000,
        inline: options.inline ?? true,
        deadLetters,
        ...(options.onTask ? { onTask: options.onTask } : {}),
        ...(options.workerFaults ? { faults: options.workerFaults } : {}),
      };
      const poller: SqsPoller = startSqsPoller({
        sqs: sqs.client,
        queueUrls: { high: urls.high, normal: urls.normal, low: urls.low },
        handler: makeWorkerHandler(deps),
        batchSize: options.batchSize ?? 10,
        timeoutSeconds,
        concurrency: options.pollerConcurrency ?? 4,
        functionName: `sayiir-worker-${pool}`,
        onError: (e, phase) => telemetry.log.error('worker error', { pool, phase, error: String(e) }),
      });
      pollers.set(pool, poller);
      stoppers.push(() => poller.stop());
    }

    const reaperDeps = { store, timers: store, claims, queue, registry, clock, deadLetters, deadLetterQueue };
    const observePass = reaperObserver(telemetry);
    // One pass at a time, like one reaper invocation looping: the next starts
    // `reaperIntervalMs` after the previous one ended.
    let reaping: Promise<unknown> = Promise.resolve();
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const reap = () => {
      const pass = reaping.then(() => reapOnce(reaperDeps));
      reaping = pass.catch(() => undefined);
      return pass;
    };
    const loop = () => {
      timer = setTimeout(() => {
        reap().then(
          (s) => observePass(s),
          (e) => telemetry.log.error('reaper pass failed', { error: String(e) }),
        );
        void reaping.then(() => {
          if (!stopped) loop();
        });
      }, options.reaperIntervalMs ?? 1_000);
    };
    loop();
    stoppers.push(async () => {
      stopped = true;
      clearTimeout(timer);
      await reaping;
    });

    return {
      url: gateway.url,
      apiKey,
      dataDir,
      pools,
      dynamo: db.client,
      sqs: sqs.client,
      s3,
      objects,
      store,
      claims,
      deadLetters,
      metricsUrl: metricsServer.url,
      reap,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Reads the development API key from the secrets file, creating the file on
 * first start. A file that exists but cannot be read is never rewritten.
 *
 * @throws {SecretsFileUnreadableError} naming the file and what is wrong with it.
 */
async function ensureApiKey(path: string): Promise<string> {
  const values = (await readSecretsFile(path)) ?? {};
  const existing = Object.hasOwn(values, DEFAULT_API_KEY_SECRET) ? values[DEFAULT_API_KEY_SECRET] : undefined;
  const keys = Array.isArray(existing) ? existing.filter((k): k is string => typeof k === 'string') : [];
  if (keys[0]) return keys[0];
  const key = `sk_local_${randomBytes(18).toString('base64url')}`;
  values[DEFAULT_API_KEY_SECRET] = [key];
  await writeFile(path, `${JSON.stringify(values, null, 2)}\n`, { mode: 0o600 });
  return key;
}
