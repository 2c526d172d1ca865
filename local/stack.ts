import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { makeRequestHandler as makeApiRequestHandler } from '../functions/api/handler.ts';
import { makeHandler as makeWorkerHandler, type WorkerHandlerDeps } from '../functions/worker/handler.ts';
import { DynamoClaimStore } from '../shared/adapters/dynamodb/claim-store.ts';
import { DynamoDeadLetterStore } from '../shared/adapters/dynamodb/dead-letter-store.ts';
import { DynamoInstanceStore } from '../shared/adapters/dynamodb/instance-store.ts';
import { lockDataDir } from '../shared/adapters/fs/data-dir-lock.ts';
import { FolderObjectStore } from '../shared/adapters/fs/object-store.ts';
import { InProcessTaskQueue } from '../shared/adapters/in-process/task-queue.ts';
import { systemClock } from '../shared/adapters/memory/clock.ts';
import { S3ObjectStore } from '../shared/adapters/s3/object-store.ts';
import { FileSecrets, readSecretsFile } from '../shared/adapters/secrets/file.ts';
import {
  type Durability,
  openSqliteDatabase,
  SqliteClaimStore,
  type SqliteDatabase,
  SqliteDeadLetterStore,
  SqliteInstanceStore,
} from '../shared/adapters/sqlite/index.ts';
import { DeadLetters } from '../shared/adapters/sqs/dead-letters.ts';
import { QueueUrlCache } from '../shared/adapters/sqs/queue-urls.ts';
import { SqsTaskQueue } from '../shared/adapters/sqs/task-queue.ts';
import { DEFAULT_API_KEY_SECRET } from '../shared/api/auth.ts';
import type { AnyFlow } from '../shared/engine/definition.ts';
import { poolsOf } from '../shared/engine/describe.ts';
import {
  observedDeadLetters,
  observedStore,
  reaperObserver,
  type Telemetry,
} from '../shared/observability/observer.ts';
import { tracedQueue } from '../shared/observability/tracing.ts';
import type { ClaimStore } from '../shared/ports/claim-store.ts';
import type { DeadLetterStore } from '../shared/ports/dead-letter-store.ts';
import type { InstanceStore } from '../shared/ports/instance-store.ts';
import type { ObjectStore } from '../shared/ports/object-store.ts';
import type { TaskQueue } from '../shared/ports/task-queue.ts';
import type { TimerIndex } from '../shared/ports/timers.ts';
import { storeRedriveTarget } from '../shared/runtime/dead-letters.ts';
import type { Retention } from '../shared/runtime/defaults.ts';
import { type ReaperDeps, reapOnce } from '../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../shared/runtime/registry.ts';
import type { TaskReport, WorkerDeps } from '../shared/runtime/worker.ts';
import { workflows as exampleWorkflows } from '../workflows/index.ts';
import { startEmbeddedPoller } from './embedded-poller.ts';
import type { EventSource, SqsEventHandler } from './event-source.ts';
import { startHttpGateway } from './http-gateway.ts';
import { localTelemetry, serveMetrics } from './observability.ts';
import { startSqsPoller } from './sqs-poller.ts';
import { withUi } from './ui-route.ts';

/**
 * The whole system on one machine, with the same handler code that runs in
 * Lambda (the api function's core, served by its `makeRequestHandler`
 * without the Lambda event adapter; `makeHandler` of the worker; the
 * reaper's `reapOnce`), on one of two back ends behind the same ports:
 *
 * - **embedded** (the default): one SQLite database in the process
 *   (`<dataDir>/sayiir.sqlite`: instances, journals, claims, dead letters;
 *   see `Durability`), payloads in `<dataDir>/payloads`, and an in-process
 *   queue per pool and priority with SQS FIFO's semantics. Fast: no HTTP,
 *   no signing, no emulator between the engine and its data.
 * - **AWS emulation** (`emulateAws: true`): the real wire protocols.
 *   dynalite (data under `<dataDir>/dynamodb`), fauxqs with the queues of
 *   every pool and, on its S3 API, the payload bucket
 *   {@link LOCAL_PAYLOAD_BUCKET}. For the integration and fault-injection
 *   suites, and to see what AWS will be sent.
 *
 * Both have an HTTP server playing API Gateway in front of `functions/api`,
 * one event source per pool playing SQS's for `functions/worker` (strict
 * priority, partial batch failures, the function timeout), and a timer
 * invoking the reaper every `reaperIntervalMs`. Queue messages live in
 * memory only on both: they are hints, and after a restart the reaper
 * re-dispatches whatever was queued or in flight.
 */
export interface LocalStackOptions {
  /**
   * `true`: DynamoDB, SQS and S3 over their wire protocols (dynalite,
   * fauxqs); otherwise the embedded back end.
   * @default false
   */
  readonly emulateAws?: boolean;
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
  /** How long a backlog in its queue explains a dispatch no worker took (see `ReaperDeps.maxQueueWaitMs`). @default REAPER_DEFAULTS.maxQueueWaitMs */
  readonly maxQueueWaitMs?: number;
  /** How long a finished run is kept before the reaper purges it (ms, or `'forever'`). @default RETENTION_DEFAULT_MS (90 days) */
  readonly retention?: Retention;
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
  /** AWS emulation only: called with the SDK clients before anything runs (tests add middleware here). */
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
   * (AWS emulation only) sends them to fauxqs's S3 API over the wire (kept
   * in memory: lost when the stack stops), for tests of the S3 path.
   * @default 'folder'
   */
  readonly payloads?: 'folder' | 's3';
  /** Embedded only: how hard a commit is pressed to disk (see `Durability`). @default 'normal' */
  readonly durability?: Durability;
  /**
   * AWS emulation only: where dynalite's and fauxqs's servers run. `thread`:
   * on a thread of their own, beside the engine, as the AWS services run
   * beside a Lambda (see `emulator-thread.ts`); `inline`: in the engine's
   * thread. The wire between them is the same either way.
   * @default 'thread'
   */
  readonly emulators?: 'thread' | 'inline';
}

/** What both back ends offer. */
interface LocalStackBase {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  /** A valid development API key (header `x-api-key`). */
  readonly apiKey: string;
  readonly dataDir: string;
  readonly pools: readonly string[];
  /** The payload object store (see {@link LocalStackOptions.payloads}). */
  readonly objects: ObjectStore;
  readonly store: InstanceStore & TimerIndex;
  readonly claims: ClaimStore;
  /** The dead-letter store. */
  readonly deadLetters: DeadLetterStore;
  /** The OpenMetrics endpoint, on 127.0.0.1 only (no API key: see `local/observability.ts`). */
  readonly metricsUrl: string;
  /** Runs one reaper pass now. */
  reap(): ReturnType<typeof reapOnce>;
  /** Stops everything; the data folder stays. */
  stop(): Promise<void>;
}

/** The local stack on the embedded back end. */
export interface EmbeddedLocalStack extends LocalStackBase {
  readonly backend: 'embedded';
  /** The database file. */
  readonly databasePath: string;
  readonly store: SqliteInstanceStore;
  readonly claims: SqliteClaimStore;
  readonly deadLetters: SqliteDeadLetterStore;
  readonly queue: InProcessTaskQueue;
}

/** The local stack over the AWS wire protocols. */
export interface EmulatedLocalStack extends LocalStackBase {
  readonly backend: 'aws-emulation';
  readonly dynamo: DynamoDBClient;
  readonly sqs: SQSClient;
  /** An S3 client for fauxqs (path-style). */
  readonly s3: S3Client;
  readonly store: DynamoInstanceStore;
  readonly claims: DynamoClaimStore;
  /** The dead-letter store (the reaper drains the pools' SQS DLQs into it). */
  readonly deadLetters: DynamoDeadLetterStore;
}

export type LocalStack = EmbeddedLocalStack | EmulatedLocalStack;

/** The name of a back end as the start-up banner prints it. */
export const BACKEND_NAMES: Readonly<Record<LocalStack['backend'], string>> = {
  embedded: 'embedded (SQLite in process, in-process queues)',
  'aws-emulation': 'AWS emulation (DynamoDB on dynalite, SQS and S3 on fauxqs, over the wire)',
};

const QUEUE_PREFIX = 'sayiir-local';

/** The payload bucket of the local stack, on fauxqs's S3 API (created at start). */
export const LOCAL_PAYLOAD_BUCKET = 'sayiir-local-payloads';

/**
 * The payload object store of the local stack, over an S3 client for its
 * fauxqs (`Fauxqs.newS3Client()`, or {@link EmulatedLocalStack.s3}).
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

/** A back end opened: its adapters, an event source per pool, and what stopping it takes. */
interface Backend<S extends LocalStack> {
  /** The fields of the stack that are this back end's own. */
  readonly own: Omit<S, keyof LocalStackBase | 'backend'> & Pick<S, 'store' | 'claims' | 'deadLetters' | 'objects'>;
  /** The queue handlers send to. */
  readonly queue: TaskQueue;
  /** Starts the event source of a pool. */
  readonly startPoller: (pool: string, handler: SqsEventHandler) => EventSource;
  /** The pools' SQS DLQs the reaper drains into the dead-letter store (emulation only: the embedded queue puts there at once). */
  readonly deadLetterQueue?: ReaperDeps['deadLetterQueue'];
}

type Stoppers = (() => Promise<void>)[];

interface Common {
  readonly options: LocalStackOptions;
  readonly dataDir: string;
  readonly pools: readonly string[];
  readonly timeoutSeconds: number;
  readonly log: (line: string) => void;
  readonly stoppers: Stoppers;
  readonly telemetry: Telemetry;
}

/** The embedded back end: SQLite, the folder object store, the in-process queue. */
async function openEmbedded(c: Common): Promise<Backend<EmbeddedLocalStack>> {
  const database: SqliteDatabase = openSqliteDatabase({
    dataDir: c.dataDir,
    ...(c.options.durability ? { durability: c.options.durability } : {}),
  });
  c.stoppers.push(async () => database.close());
  // Options that only the wire has fail loudly rather than being ignored.
  if (c.options.payloads === 's3') throw new Error("payloads: 's3' needs emulateAws: true");
  if (c.options.instrument) throw new Error('instrument (SDK clients) needs emulateAws: true');
  const objects = new FolderObjectStore({ directory: join(c.dataDir, 'payloads') });
  const store = new SqliteInstanceStore({ db: database.db, objects });
  const claims = new SqliteClaimStore({ db: database.db });
  const deadLetters = new SqliteDeadLetterStore({ db: database.db });
  const queue = new InProcessTaskQueue({
    deadLetters: storeRedriveTarget(deadLetters, () => systemClock.now(), store),
    visibilityTimeoutSeconds: c.timeoutSeconds,
  });
  return {
    own: { databasePath: database.path, store, claims, deadLetters, queue, objects },
    queue: tracedQueue<TaskQueue>(queue, () => systemClock.now()),
    startPoller: (pool, handler) =>
      startEmbeddedPoller({
        queue,
        pool,
        queuePrefix: QUEUE_PREFIX,
        handler,
        batchSize: c.options.batchSize ?? 10,
        timeoutSeconds: c.timeoutSeconds,
        visibilityTimeoutSeconds: c.timeoutSeconds,
        concurrency: c.options.pollerConcurrency ?? 4,
        functionName: `sayiir-worker-${pool}`,
        onError: (e, phase) => c.telemetry.log.error('worker error', { pool, phase, error: String(e) }),
      }),
  };
}

/** dynalite (data under `dynamoPath`) and fauxqs, with clients for both; the caller closes both. */
async function startEmulators(dynamoPath: string, where: 'thread' | 'inline') {
  // Loaded here only: dynalite and fauxqs are this repository's devDependencies, so
  // the installed package's embedded back end never needs them.
  const [dynaliteModule, fauxqsModule, threadModule] = await Promise.all([
    import('./dynalite.ts'),
    import('./fauxqs.ts'),
    import('./emulator-thread.ts'),
  ]);
  if (where === 'inline') {
    const db = await dynaliteModule.startDynalite({ path: dynamoPath });
    try {
      return { db, sqs: await fauxqsModule.startFauxqs() };
    } catch (err) {
      await db.close();
      throw err;
    }
  }
  const servers = await threadModule.startEmulatorThread({
    dynamoPath,
    queueHost: fauxqsModule.UNRESOLVABLE_QUEUE_HOST,
  });
  // The thread closes once, after both clients are gone.
  let open = 2;
  const closeOne = async () => {
    if (--open === 0) await servers.close();
  };
  const sqs = fauxqsModule.connectFauxqs(servers.fauxqs, closeOne);
  const db = await dynaliteModule.connectDynalite(servers.dynamo, { closeServer: closeOne }).catch(async (err) => {
    await sqs.close();
    await closeOne();
    throw err;
  });
  return { db, sqs };
}

/** The AWS emulation: dynalite, fauxqs's SQS and S3, over the wire. */
async function openEmulated(c: Common): Promise<Backend<EmulatedLocalStack>> {
  const lock = lockDataDir(c.dataDir);
  c.stoppers.push(async () => lock.release());
  const { db, sqs } = await startEmulators(join(c.dataDir, 'dynamodb'), c.options.emulators ?? 'thread');
  c.stoppers.push(() => db.close());
  c.stoppers.push(() => sqs.close());
  await sqs.createBucket(LOCAL_PAYLOAD_BUCKET);
  const s3 = sqs.newS3Client();
  const objects: ObjectStore =
    c.options.payloads === 's3'
      ? localObjectStore(s3)
      : new FolderObjectStore({ directory: join(c.dataDir, 'payloads') });
  c.options.instrument?.({ dynamo: db.client, sqs: sqs.client });

  const poolUrls = new Map<string, Awaited<ReturnType<typeof sqs.createPoolQueues>>>();
  for (const pool of c.pools) {
    poolUrls.set(
      pool,
      await sqs.createPoolQueues(QUEUE_PREFIX, {
        name: pool,
        functionTimeoutSeconds: c.timeoutSeconds,
        // Locally the reaper recovers lost work within seconds; a failed
        // batch need not wait six function timeouts to come back.
        visibilityTimeoutSeconds: c.timeoutSeconds,
      }),
    );
  }
  const store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances, objects });
  const claims = new DynamoClaimStore({ client: db.client, tableName: db.tables.claims });
  const urls = new QueueUrlCache(sqs.client, QUEUE_PREFIX);
  const sqsQueue = new SqsTaskQueue(sqs.client, urls.queueUrl);
  const pollers = new Map<string, EventSource>();
  // Sent messages wake their pool's idle pollers at once (Lambda's event source long-polls).
  const queue = tracedQueue<TaskQueue>(
    {
      send: async (dispatches) => {
        await sqsQueue.send(dispatches);
        const perPool = new Map<string, number>();
        for (const d of dispatches) perPool.set(d.pool, (perPool.get(d.pool) ?? 0) + 1);
        for (const [pool, n] of perPool) pollers.get(pool)?.nudge(n);
      },
      waiting: (pool, priority) => sqsQueue.waiting(pool, priority),
    },
    () => systemClock.now(),
  );
  const deadLetters = new DynamoDeadLetterStore({ client: db.client, tableName: db.tables.instances });
  return {
    own: { dynamo: db.client, sqs: sqs.client, s3, objects, store, claims, deadLetters },
    queue,
    deadLetterQueue: new DeadLetters(sqs.client, urls.dlqUrl),
    startPoller: (pool, handler) => {
      const queueUrls = poolUrls.get(pool);
      if (!queueUrls) throw new Error(`no queues for pool '${pool}'`);
      const poller = startSqsPoller({
        sqs: sqs.client,
        queueUrls: { high: queueUrls.high, normal: queueUrls.normal, low: queueUrls.low },
        handler,
        batchSize: c.options.batchSize ?? 10,
        timeoutSeconds: c.timeoutSeconds,
        concurrency: c.options.pollerConcurrency ?? 4,
        functionName: `sayiir-worker-${pool}`,
        onError: (e, phase) => c.telemetry.log.error('worker error', { pool, phase, error: String(e) }),
      });
      pollers.set(pool, poller);
      return poller;
    },
  };
}

/**
 * Starts the local stack on the embedded back end, or over the AWS wire
 * protocols with `emulateAws: true`.
 *
 * @throws {DataDirLockedError} another live process has the data folder.
 * @throws {SchemaVersionError} (embedded) the database was written by another schema version.
 * @example
 * ```ts
 * const stack = await startLocalStack({ dataDir: '.sayiir', port: 8787 });
 * console.log(stack.url, stack.apiKey);
 * await stack.stop();
 * ```
 */
export function startLocalStack(
  options: LocalStackOptions & { readonly emulateAws: true },
): Promise<EmulatedLocalStack>;
export function startLocalStack(
  options?: LocalStackOptions & { readonly emulateAws?: false },
): Promise<EmbeddedLocalStack>;
export function startLocalStack(options?: LocalStackOptions): Promise<LocalStack>;
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const log = options.log ?? (() => undefined);
  const dataDir = resolve(options.dataDir ?? '.sayiir');
  await mkdir(dataDir, { recursive: true });
  const workflows = options.workflows ?? exampleWorkflows;
  const registry = new WorkflowRegistry(workflows);
  const pools = [...new Set(['default', ...workflows.flatMap(poolsOf)])].sort();
  const timeoutSeconds = options.workerTimeoutSeconds ?? 900;

  const stoppers: Stoppers = [];
  const stop = async () => {
    for (const s of stoppers.splice(0).reverse()) await s().catch((e) => log(`stop: ${String(e)}`));
  };
  let queue: TaskQueue | undefined;
  const telemetry = localTelemetry({
    ...(options.log ? { write: options.log } : {}),
    format: options.logFormat ?? 'json',
    pools,
    queue: () => queue,
  });
  try {
    const common: Common = { options, dataDir, pools, timeoutSeconds, log, stoppers, telemetry };
    const backend: Backend<LocalStack> = options.emulateAws ? await openEmulated(common) : await openEmbedded(common);
    // After the lock: a second process on the folder is refused before it touches anything.
    const apiKey = await ensureApiKey(join(dataDir, 'secrets.json'));
    const metricsServer = await serveMetrics(telemetry.metrics, options.metricsPort ?? 0);
    stoppers.push(() => metricsServer.close());
    const store = observedStore(backend.own.store, telemetry);
    const { claims } = backend.own;
    const deadLetters = observedDeadLetters(backend.own.deadLetters, telemetry);
    queue = backend.queue;
    const secrets = new FileSecrets(join(dataDir, 'secrets.json'));
    const clock = systemClock;

    const api = makeApiRequestHandler({
      store,
      queue,
      registry,
      secrets,
      clock,
      apiKeySecretName: DEFAULT_API_KEY_SECRET,
      claims,
      deadLetters,
      redispatchAfterMs: options.redispatchAfterMs ?? 3_000,
      ...(options.retention === undefined ? {} : { retention: options.retention }),
      telemetry,
    });
    const gateway = await startHttpGateway({ handler: withUi(api), port: options.port ?? 0 });
    stoppers.push(() => gateway.close());

    for (const pool of pools) {
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
      const poller = backend.startPoller(pool, makeWorkerHandler(deps));
      stoppers.push(() => poller.stop());
    }

    const reaperDeps: ReaperDeps = {
      store,
      timers: store,
      claims,
      queue,
      registry,
      clock,
      deadLetters,
      ...(backend.deadLetterQueue ? { deadLetterQueue: backend.deadLetterQueue } : {}),
      ...(options.maxQueueWaitMs === undefined ? {} : { maxQueueWaitMs: options.maxQueueWaitMs }),
    };
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
      backend: options.emulateAws ? 'aws-emulation' : 'embedded',
      url: gateway.url,
      apiKey,
      dataDir,
      pools,
      ...backend.own,
      store,
      deadLetters,
      metricsUrl: metricsServer.url,
      reap,
      stop,
    } as unknown as LocalStack; // `own` holds the fields of the back end `backend` names
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
