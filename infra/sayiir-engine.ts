import path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { HttpApi, HttpRoute, ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import type { Alarm, Dashboard, IAlarmAction, Metric, MetricOptions } from 'aws-cdk-lib/aws-cloudwatch';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../functions/deps.ts';
import type { AnyFlow } from '../shared/engine/definition.ts';
import type { Priority } from '../shared/engine/task.ts';
import type { MetricName } from '../shared/observability/metrics.ts';
import { DEFAULT_MAX_RECEIVE_COUNT, PRIORITIES } from '../shared/resources/queues.ts';
import { SayiirAlarms } from './alarms.ts';
import { SayiirHttpApi } from './api.ts';
import { SayiirDashboard } from './dashboard.ts';
import {
  PACKAGE_ROOT,
  resolveProjectRoot,
  resolveWorkflowsEntry,
  SOURCE_EXTENSION,
  writeWrapperEntry,
} from './entries.ts';
import { engineFunction } from './functions.ts';
import { sayiirMetric } from './metrics.ts';
import { SayiirPayloads } from './payloads.ts';
import {
  type ClaimTimings,
  checkWorkflowPools,
  DEFAULT_POOLS,
  EngineConfigError,
  resolveWorkerPools,
  type WorkerPoolProps,
} from './pools.ts';
import { SayiirQueues } from './queues.ts';
import { SayiirTables } from './tables.ts';
import { uiAssetsDir } from './ui.ts';

export const API_MEMORY_MB = 512;
/**
 * The api function's timeout: API Gateway's HTTP API answers 503 after 30 s,
 * and `GET /v1/instances/{id}?wait=` holds a request up to 25 s (`MAX_WAIT_SECONDS`).
 */
export const API_TIMEOUT = Duration.seconds(29);
export const REAPER_MEMORY_MB = 512;
/**
 * The reaper loops until 10 s are left, so 70 s covers the minute until the
 * next scheduled run (an overlap is harmless: every write is conditional).
 */
export const REAPER_TIMEOUT = Duration.seconds(70);
export const REAPER_SCHEDULE = Schedule.rate(Duration.minutes(1));
export const AUTHORIZER_MEMORY_MB = 128;
/** The web UI's function serves static files only. */
export const UI_MEMORY_MB = 128;

/**
 * Props of {@link SayiirEngine}.
 *
 * @example
 * ```ts
 * import { workflows } from './src/workflows.ts';
 * new SayiirEngine(this, 'Engine', {
 *   workflowsEntry: 'src/workflows.ts',
 *   workflows,
 *   pools: [{ name: 'default' }, { name: 'payments', timeout: Duration.minutes(2) }],
 *   taskSecrets: { payments: ['stripe'] },
 *   alarmActions: [new SnsAction(topic)],
 * });
 * ```
 */
export interface SayiirEngineProps {
  /**
   * Path (absolute, or relative to the working directory) of a TypeScript or
   * JavaScript module that exports `workflows: readonly AnyFlow[]`; it is
   * bundled into every handler. The synth fails (EngineConfigError naming
   * `workflowsEntry`) when the file does not exist.
   */
  readonly workflowsEntry: string;
  /**
   * The workflows the entry exports, when the app can import them: the synth
   * then fails (EngineConfigError) if a task names a pool that is not among
   * `pools`. The construct cannot load `workflowsEntry` itself (a
   * constructor cannot `await import()`), so pass the same array here.
   * @default no check
   */
  readonly workflows?: readonly AnyFlow[];
  /**
   * Worker pools: one worker function and its queues each. Every pool a task
   * names (`pool` option; `'default'` when unset) must be here (checked at
   * synth time when `workflows` is given).
   * @default one pool named 'default' with the pool defaults
   */
  readonly pools?: readonly WorkerPoolProps[];
  /**
   * Receives of one message before SQS moves it to its pool's DLQ (1 to 1000).
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * Actions of every alarm (DLQ not empty, queue age).
   * @default no action (the alarms still show in CloudWatch)
   */
  readonly alarmActions?: readonly IAlarmAction[];
  /**
   * Throttling of the HTTP API's stage (requests per second and burst);
   * requests over it are answered 429 by API Gateway without invoking anything.
   * @default API_THROTTLE_DEFAULTS ({ rateLimit: 100, burstLimit: 200 })
   */
  readonly apiThrottle?: ThrottleSettings;
  /**
   * Prefix of the queue names (`<prefix>-<pool>-<priority>.fifo`) and of the
   * API key secret's name (`<prefix>/api-keys`), for who wants fixed names.
   * Without it CloudFormation names them (unique per stack and construct),
   * so any number of engines fit in one account and region; the functions
   * get the queue URLs and the secret's ARN through their environment either way.
   * @default names generated by CloudFormation
   */
  readonly queuePrefix?: string;
  /**
   * Per pool name: the Secrets Manager secrets (names or ISecrets) that the
   * tasks of that pool may read with `ctx.secret(name)`. A pool not listed
   * reads no secret.
   * @default no task secret
   */
  readonly taskSecrets?: Readonly<Record<string, readonly (string | ISecret)[]>>;
  /**
   * Customer-managed KMS key for both tables and the payload bucket.
   * @default the AWS-managed key `aws/dynamodb` for the tables, S3-managed keys for the bucket
   */
  readonly encryptionKey?: IKey;
  /**
   * Removal policy of what holds data: the tables, the payload bucket, the
   * dead-letter queues, the API key secret and the log groups (a bucket is
   * deleted only once empty). The priority queues hold hints only (DynamoDB
   * is the truth) and are always deleted with the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How long a finished run (its snapshot, journal, values and offloaded
   * payloads) is kept before the reaper purges it, counted from when it
   * finished; `'forever'` keeps every run. Stored on each run at its start,
   * so a change applies to runs started after it.
   * @default Duration.days(90) (`RETENTION_DEFAULT_MS`)
   */
  readonly retention?: Duration | 'forever';
  /**
   * Retention of the functions' and the API's logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * A priority queue alarms when its oldest message is older than this.
   * @default Duration.minutes(15)
   */
  readonly queueAgeAlarmThreshold?: Duration;
  /**
   * A CloudWatch dashboard of the engine (runs, tasks, latencies, queues, functions).
   * @default true
   */
  readonly dashboard?: boolean;
  /**
   * Level of the functions' log lines (each function's `LOG_LEVEL` and Lambda application log level).
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * OTLP/HTTP endpoint the api, worker and reaper functions export traces to
   * (e.g. an OpenTelemetry collector). Synth then installs the OpenTelemetry
   * SDK beside each bundle (it needs the registry).
   * @default no trace export
   */
  readonly otlpEndpoint?: string;
  /**
   * Bundling project root: the folder of the lock file (`package-lock.json`,
   * `pnpm-lock.yaml`, `yarn.lock`, `bun.lock`) whose `node_modules` holds
   * esbuild, `sayiir-aws` and the workflows' dependencies. The synth fails
   * (EngineConfigError naming `projectRoot`) when it holds no lock file.
   * @default the nearest folder at or above the workflows entry that holds a lock file
   */
  readonly projectRoot?: string;
  /**
   * Serve the web UI at `/ui` (a small function of its own, public routes
   * for the static shell; the page asks for an API key for every data call).
   * @default true
   */
  readonly webUi?: boolean;
}

/**
 * Sayiir, the durable workflow engine, as one construct: the two DynamoDB
 * tables, the payload bucket, FIFO queues per pool and priority with their
 * DLQs, the api, worker (one per pool), reaper and authorizer functions, the
 * reaper's one-minute schedule, the HTTP API with its API key secret,
 * least-privilege roles and alarms.
 *
 * Least privilege, function by function (asserted in test/infra), with the
 * grant helpers' action sets; each queue grant includes `sqs:GetQueueUrl` on
 * that queue (the functions get the URLs in `SAYIIR_QUEUE_URLS`, so they only
 * look a queue up by name when run with a prefix instead):
 * - api: read/write both tables (it revokes the claims of running tasks on
 *   cancel); read/write payload objects; send to every priority queue
 *   (start, signal, resume and redrive dispatch tasks of any pool); no DLQ
 *   (dead letters are read and redriven from the instances table); read the
 *   API key secret.
 * - worker of pool P: read/write both tables; read/write payload objects;
 *   send to every priority queue (a successor may belong to another pool);
 *   receive from P's three queues only; no DLQ (a task whose failure fails
 *   its run is recorded in the instances table); read the task secrets
 *   declared for P only.
 * - reaper: read/write both tables; send to every priority queue; consume
 *   (receive, delete) every pool's DLQ, never send to one: it drains what
 *   SQS moved there into dead-letter records; no payload (it reads
 *   snapshots, never values).
 * - authorizer: nothing (no secret, no table, no queue).
 * - a user's principal given `grantStartWorkflows` or `grantRead`: read the API key secret.
 * - all: write their own log group and X-Ray traces.
 *
 * @example
 * ```ts
 * const engine = new SayiirEngine(stack, 'Sayiir', { workflowsEntry: 'src/workflows.ts' });
 * new CfnOutput(stack, 'Url', { value: engine.apiUrl });
 * ```
 */
export class SayiirEngine extends Construct implements SayiirMetrics {
  /** Both tables, by role. */
  readonly tables: { readonly instances: Table; readonly claims: Table };
  /** Values over the inline threshold (see `infra/payloads.ts`). */
  readonly payloadBucket: Bucket;
  /** The priority queues, by pool name then priority. */
  readonly queues: Readonly<Record<string, Readonly<Record<Priority, Queue>>>>;
  /** The dead-letter queue of each pool, by pool name. */
  readonly deadLetterQueues: Readonly<Record<string, Queue>>;
  /** Serves the HTTP API. */
  readonly apiFunction: NodejsFunction;
  /** Runs the tasks of each pool, by pool name. */
  readonly workerFunctions: Readonly<Record<string, NodejsFunction>>;
  /** Fires timers and recovers lost work, once a minute. */
  readonly reaperFunction: NodejsFunction;
  /** The HTTP API's REQUEST authorizer (checks the key header is there). */
  readonly authorizerFunction: NodejsFunction;
  /** Serves the web UI's static shell at `/ui` (absent when `webUi` is false). */
  readonly uiFunction?: NodejsFunction;
  readonly httpApi: HttpApi;
  /** Base URL of the API (`https://<id>.execute-api.<region>.amazonaws.com/`). */
  readonly apiUrl: string;
  /**
   * The API keys. Generated as one random key (plain text, which the api reads
   * as one key); to hold several, store a JSON array of strings.
   */
  readonly apiKeySecret: Secret;
  /** The secrets each pool's tasks may read, by pool name. */
  readonly taskSecrets: Readonly<Record<string, readonly ISecret[]>>;
  /** The alarms: queues (DLQ, age), each function's errors and throttles, the reaper not running. */
  readonly alarms: readonly Alarm[];
  /** The engine's dashboard, unless `dashboard: false`. */
  readonly dashboard?: Dashboard;
  /** The queue name prefix, when one was given (else CloudFormation names the queues). */
  readonly queuePrefix?: string;
  /** The web UI's public routes (static shell only; empty when `webUi` is false). */
  readonly uiRoutes: readonly HttpRoute[];
  /** The customer-managed key of the tables and the payload bucket, when one was given. */
  readonly encryptionKey?: IKey;

  constructor(scope: Construct, id: string, props: SayiirEngineProps) {
    super(scope, id);
    // A JavaScript caller may pass nothing: say which prop is missing rather than fail on `undefined`.
    props ??= {} as SayiirEngineProps;
    const stack = Stack.of(this);
    const queuePrefix = props.queuePrefix;
    if (queuePrefix !== undefined) this.queuePrefix = queuePrefix;
    if (props.encryptionKey) this.encryptionKey = props.encryptionKey;
    const pools = resolveWorkerPools(props.pools ?? DEFAULT_POOLS, props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT);
    const poolNames = pools.map((p) => p.name);
    if (props.workflows) checkWorkflowPools(props.workflows, poolNames);
    for (const pool of Object.keys(props.taskSecrets ?? {})) {
      if (!poolNames.includes(pool)) {
        throw new EngineConfigError(`taskSecrets names pool '${pool}', which is not among the pools`);
      }
    }
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const workflowsEntry = resolveWorkflowsEntry(props.workflowsEntry);
    const projectRoot = resolveProjectRoot(props.projectRoot, workflowsEntry);

    const tables = new SayiirTables(this, 'Tables', {
      removalPolicy,
      ...(props.encryptionKey ? { encryptionKey: props.encryptionKey } : {}),
    });
    this.tables = { instances: tables.instances, claims: tables.claims };

    const payloads = new SayiirPayloads(this, 'Payloads', {
      removalPolicy,
      ...(props.encryptionKey ? { encryptionKey: props.encryptionKey } : {}),
    });
    this.payloadBucket = payloads.bucket;

    const queues = new SayiirQueues(this, 'Queues', { pools, ...(queuePrefix ? { prefix: queuePrefix } : {}) });
    this.queues = Object.fromEntries(Object.entries(queues.pools).map(([name, q]) => [name, q.byPriority]));
    this.deadLetterQueues = Object.fromEntries(
      Object.entries(queues.pools).map(([name, q]) => [name, q.deadLetterQueue]),
    );
    const priorityQueues = queues.allQueues();
    for (const dlq of Object.values(this.deadLetterQueues)) dlq.applyRemovalPolicy(removalPolicy);

    this.apiKeySecret = new Secret(this, 'ApiKeySecret', {
      ...(queuePrefix ? { secretName: `${queuePrefix}/api-keys` } : {}),
      description: 'Sayiir API keys: one key as plain text, or a JSON array of keys. Clients send one as x-api-key.',
      // Secrets Manager generates text or a JSON object field, not an array:
      // the api reads non-JSON text as one key. Mixed case and a digit are
      // required, so the text can never parse as JSON.
      generateSecretString: {
        passwordLength: 48,
        excludePunctuation: true,
        includeSpace: false,
        requireEachIncludedType: true,
      },
    });

    this.apiKeySecret.applyRemovalPolicy(removalPolicy);

    const baseEnvironment = {
      [ENV.instancesTable]: tables.instances.tableName,
      [ENV.claimsTable]: tables.claims.tableName,
      [ENV.queueUrls]: stack.toJsonString(
        Object.fromEntries(
          Object.entries(queues.pools).map(([name, q]) => [
            name,
            {
              ...Object.fromEntries(PRIORITIES.map((p) => [p, q.byPriority[p].queueUrl])),
              dlq: q.deadLetterQueue.queueUrl,
            },
          ]),
        ),
      ),
    };
    const common = {
      projectRoot,
      logRetention,
      logRemovalPolicy: removalPolicy,
      ...(props.logLevel ? { logLevel: props.logLevel } : {}),
      ...(props.otlpEndpoint ? { otlpEndpoint: props.otlpEndpoint } : {}),
    };

    // api
    this.apiFunction = engineFunction(this, 'Api', {
      ...common,
      entry: writeWrapperEntry(projectRoot, 'api', workflowsEntry),
      description: 'Sayiir HTTP API',
      memorySize: API_MEMORY_MB,
      timeout: API_TIMEOUT,
      environment: {
        ...baseEnvironment,
        [ENV.apiKeySecret]: this.apiKeySecret.secretArn,
        [ENV.payloadBucket]: payloads.bucket.bucketName,
        ...retentionEnvironment(props.retention),
      },
    });
    tables.instances.grantReadWriteData(this.apiFunction);
    tables.claims.grantReadWriteData(this.apiFunction);
    payloads.grantReadWrite(this.apiFunction);
    for (const queue of priorityQueues) queue.grantSendMessages(this.apiFunction);
    this.apiKeySecret.grantRead(this.apiFunction);

    // authorizer
    const { otlpEndpoint: _noTracing, ...untraced } = common;
    this.authorizerFunction = engineFunction(this, 'Authorizer', {
      ...untraced,
      entry: path.join(PACKAGE_ROOT, 'functions', 'authorizer', `handler${SOURCE_EXTENSION}`),
      description: 'Sayiir HTTP API authorizer (x-api-key present)',
      memorySize: AUTHORIZER_MEMORY_MB,
      timeout: Duration.seconds(3),
      environment: {},
    });

    // web UI: static files only, in a function of its own so the api's bundle never carries them
    if (props.webUi ?? true) {
      const files = uiAssetsDir(projectRoot);
      this.uiFunction = engineFunction(this, 'Ui', {
        ...common,
        entry: path.join(PACKAGE_ROOT, 'functions', 'ui', `handler${SOURCE_EXTENSION}`),
        description: 'Sayiir web UI (static shell at /ui)',
        memorySize: UI_MEMORY_MB,
        timeout: Duration.seconds(5),
        environment: {},
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_input: string, output: string) => [
            `mkdir -p "${output}/ui"`,
            `cp "${files}"/* "${output}/ui/"`,
          ],
        },
      });
    }

    // workers
    const workerEntry = writeWrapperEntry(projectRoot, 'worker', workflowsEntry);
    const workerFunctions: Record<string, NodejsFunction> = {};
    const taskSecrets: Record<string, ISecret[]> = {};
    for (const pool of pools) {
      const worker = engineFunction(this, `Worker${pool.name}`, {
        ...common,
        entry: workerEntry,
        description: `Sayiir worker of pool '${pool.name}'`,
        memorySize: pool.memorySize,
        timeout: pool.timeout,
        environment: {
          ...baseEnvironment,
          [ENV.pool]: pool.name,
          [ENV.payloadBucket]: payloads.bucket.bucketName,
          ...claimTimingsEnvironment(pool.claimTimings),
        },
      });
      tables.instances.grantReadWriteData(worker);
      tables.claims.grantReadWriteData(worker);
      payloads.grantReadWrite(worker);
      for (const queue of priorityQueues) queue.grantSendMessages(worker);
      const own = queues.pools[pool.name]!;
      for (const priority of PRIORITIES) {
        worker.addEventSource(
          new SqsEventSource(own.byPriority[priority], {
            batchSize: pool.batchSize,
            reportBatchItemFailures: true,
            maxConcurrency: pool.maxConcurrency[priority],
          }),
        );
      }
      taskSecrets[pool.name] = (props.taskSecrets?.[pool.name] ?? []).map((secret, i) =>
        typeof secret === 'string' ? Secret.fromSecretNameV2(this, `TaskSecret${pool.name}${i}`, secret) : secret,
      );
      for (const secret of taskSecrets[pool.name]!) secret.grantRead(worker);
      workerFunctions[pool.name] = worker;
    }
    this.workerFunctions = workerFunctions;
    this.taskSecrets = taskSecrets;

    // reaper
    this.reaperFunction = engineFunction(this, 'Reaper', {
      ...common,
      entry: writeWrapperEntry(projectRoot, 'reaper', workflowsEntry),
      description: 'Sayiir reaper: timers, expired claims, lost dispatches',
      memorySize: REAPER_MEMORY_MB,
      timeout: REAPER_TIMEOUT,
      environment: baseEnvironment,
    });
    tables.instances.grantReadWriteData(this.reaperFunction);
    tables.claims.grantReadWriteData(this.reaperFunction);
    for (const queue of priorityQueues) queue.grantSendMessages(this.reaperFunction);
    for (const dlq of Object.values(this.deadLetterQueues)) dlq.grantConsumeMessages(this.reaperFunction);
    new Rule(this, 'ReaperSchedule', {
      description: 'Wakes the Sayiir reaper',
      schedule: REAPER_SCHEDULE,
      targets: [new LambdaFunction(this.reaperFunction)],
    });

    const api = new SayiirHttpApi(this, 'Http', {
      handler: this.apiFunction,
      authorizer: this.authorizerFunction,
      ...(this.uiFunction ? { ui: this.uiFunction } : {}),
      logRetention,
      logRemovalPolicy: removalPolicy,
      ...(props.apiThrottle ? { throttle: props.apiThrottle } : {}),
    });
    this.httpApi = api.httpApi;
    this.apiUrl = api.url;
    this.uiRoutes = api.uiRoutes;

    const functions: Record<string, NodejsFunction> = {
      api: this.apiFunction,
      authorizer: this.authorizerFunction,
      reaper: this.reaperFunction,
      ...(this.uiFunction ? { ui: this.uiFunction } : {}),
      ...Object.fromEntries(Object.entries(workerFunctions).map(([pool, fn]) => [`worker-${pool}`, fn])),
    };
    this.alarms = new SayiirAlarms(this, 'Alarms', {
      pools: queues.pools,
      alarmActions: props.alarmActions ?? [],
      queueAgeThreshold: props.queueAgeAlarmThreshold ?? Duration.minutes(15),
      functions,
      reaper: this.reaperFunction,
    }).alarms;
    if (props.dashboard !== false) {
      this.dashboard = new SayiirDashboard(this, 'Dashboard', { pools: queues.pools, functions }).dashboard;
    }
  }

  /**
   * Lets a principal of the user's (a function, a role) start workflows
   * through the HTTP API: read access to the API key secret
   * (`secretsmanager:GetSecretValue`, `DescribeSecret`, and decrypt on its
   * key if customer-managed). Give the function `apiUrl` and
   * `apiKeySecret.secretArn` in its environment ({@link clientEnvironment}).
   *
   * The API has one kind of key, so today this grants what
   * {@link grantRead} grants: a key that can start can also read, signal and
   * cancel. Two methods, so that user code need not change when keys get scopes.
   *
   * @example
   * ```ts
   * engine.grantStartWorkflows(orders);
   * orders.addEnvironment('SAYIIR_URL', engine.apiUrl);
   * orders.addEnvironment('SAYIIR_API_KEY_SECRET', engine.apiKeySecret.secretArn);
   * ```
   */
  grantStartWorkflows(grantee: IGrantable): Grant {
    return this.apiKeySecret.grantRead(grantee);
  }

  /**
   * Lets a principal of the user's read runs (status, results, history,
   * listings) through the HTTP API: read access to the API key secret, as
   * {@link grantStartWorkflows} (see there why both grant the same today).
   */
  grantRead(grantee: IGrantable): Grant {
    return this.apiKeySecret.grantRead(grantee);
  }

  /**
   * The environment a user's function needs to build a `SayiirClient`:
   * `SAYIIR_URL` (the API's base URL) and `SAYIIR_API_KEY_SECRET` (the key
   * secret's ARN, to read with the Secrets Manager SDK).
   *
   * @example
   * ```ts
   * new NodejsFunction(this, 'Orders', { entry: 'src/orders.ts', environment: engine.clientEnvironment() });
   * ```
   */
  clientEnvironment(): Record<string, string> {
    return { SAYIIR_URL: this.apiUrl, SAYIIR_API_KEY_SECRET: this.apiKeySecret.secretArn };
  }

  /**
   * Age of the oldest message of a pool's priority queue (seconds, Maximum per minute).
   * @example
   * ```ts
   * engine.metricQueueAge('default', 'high').createAlarm(this, 'HighAge', { threshold: 60, evaluationPeriods: 1 });
   * ```
   */
  metricQueueAge(pool: string, priority: Priority, props: MetricOptions = {}): Metric {
    return this.queueOf(pool, priority).metricApproximateAgeOfOldestMessage({
      period: Duration.minutes(1),
      statistic: 'Maximum',
      ...props,
    });
  }

  /** Messages waiting in a pool's priority queue (visible messages, Maximum per minute). */
  metricQueueDepth(pool: string, priority: Priority, props: MetricOptions = {}): Metric {
    return this.queueOf(pool, priority).metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(1),
      statistic: 'Maximum',
      ...props,
    });
  }

  /** Messages in a pool's dead-letter queue (visible messages, Maximum per minute). */
  metricDeadLetters(pool: string, props: MetricOptions = {}): Metric {
    if (!this.deadLetterQueues[pool]) throw new EngineConfigError(`no pool '${pool}' in this engine`);
    return sayiirMetric('DeadLetters', { pool }, { period: Duration.minutes(1), statistic: 'Sum', ...props });
  }

  /**
   * Messages waiting in a pool's SQS DLQ (Maximum per minute): what SQS moved
   * there and the reaper has not drained into dead-letter records yet.
   */
  metricDeadLetterQueueDepth(pool: string, props: MetricOptions = {}): Metric {
    const dlq = this.deadLetterQueues[pool];
    if (!dlq) throw new EngineConfigError(`no pool '${pool}' in this engine`);
    return dlq.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(1),
      statistic: 'Maximum',
      ...props,
    });
  }

  /** Task attempts of a workflow, in a pool, that failed their run (EMF `TasksFailed`, Sum per minute). */
  metricTaskFailures(workflow: string, pool = 'default', props: MetricOptions = {}): Metric {
    return sayiirMetric('TasksFailed', { workflow, pool }, props);
  }

  /** Duration of a workflow's runs, start to end (EMF `RunDuration`, ms, p90 per minute). */
  metricRunDuration(workflow: string, props: MetricOptions = {}): Metric {
    return sayiirMetric('RunDuration', { workflow }, props);
  }

  /**
   * Any Sayiir EMF metric (namespace `Sayiir`), by name and dimensions.
   * @example
   * ```ts
   * engine.metricSayiir('QueueWait', { workflow: 'orders', pool: 'default' }, { statistic: 'p99' });
   * ```
   */
  metricSayiir(name: MetricName, dimensions: Readonly<Record<string, string>>, props: MetricOptions = {}): Metric {
    return sayiirMetric(name, dimensions, props);
  }

  private queueOf(pool: string, priority: Priority): Queue {
    const queue = this.queues[pool]?.[priority];
    if (!queue) throw new EngineConfigError(`no pool '${pool}' in this engine`);
    return queue;
  }
}

/**
 * The `metric*()` helpers of {@link SayiirEngine}, for alarms and dashboards
 * of one's own. EMF metrics (namespace `Sayiir`) exist per the dimensions
 * they are published with: `workflow` and `pool` for task metrics,
 * `workflow` for run metrics.
 */
export interface SayiirMetrics {
  /** Age of the oldest message of a pool's priority queue (s; SQS). */
  metricQueueAge(pool: string, priority: Priority, props?: MetricOptions): Metric;
  /** Messages waiting in a pool's priority queue (SQS, visible messages). */
  metricQueueDepth(pool: string, priority: Priority, props?: MetricOptions): Metric;
  /** Messages in a pool's dead-letter queue (SQS, visible messages). */
  metricDeadLetters(pool: string, props?: MetricOptions): Metric;
  /** Messages waiting in a pool's SQS DLQ, not drained into records yet (Maximum). */
  metricDeadLetterQueueDepth(pool: string, props?: MetricOptions): Metric;
  /** Task attempts of a workflow in a pool that failed their run (EMF `TasksFailed`, Sum). */
  metricTaskFailures(workflow: string, pool?: string, props?: MetricOptions): Metric;
  /** Duration of a workflow's runs (EMF `RunDuration`, ms, p90 by default). */
  metricRunDuration(workflow: string, props?: MetricOptions): Metric;
  /** Any Sayiir EMF metric, by name and dimensions. */
  metricSayiir(name: MetricName, dimensions: Readonly<Record<string, string>>, props?: MetricOptions): Metric;
}

/** A pool's claim timings as the worker's environment: only those the pool sets. */
export function claimTimingsEnvironment(timings: ClaimTimings): Record<string, string> {
  const environment: Record<string, string> = {};
  if (timings.reserveTtlMs !== undefined) environment[ENV.reserveTtlMs] = String(timings.reserveTtlMs);
  if (timings.leaseMs !== undefined) environment[ENV.leaseMs] = String(timings.leaseMs);
  if (timings.heartbeatMs !== undefined) environment[ENV.heartbeatMs] = String(timings.heartbeatMs);
  return environment;
}

/**
 * The api's environment for a run retention: none for the default, else
 * `SAYIIR_RETENTION` in milliseconds or `forever`.
 *
 * @throws {EngineConfigError} a retention under one minute (a run must stay
 *   readable long enough for its caller to collect its result).
 */
export function retentionEnvironment(retention: Duration | 'forever' | undefined): Record<string, string> {
  if (retention === undefined) return {};
  if (retention === 'forever') return { [ENV.retention]: 'forever' };
  const ms = retention.toMilliseconds();
  if (!(ms >= 60_000)) {
    throw new EngineConfigError(
      `retention: must be at least one minute, or 'forever'; got ${retention.toHumanString()}`,
    );
  }
  return { [ENV.retention]: String(ms) };
}

export { sayiirMetric } from './metrics.ts';
