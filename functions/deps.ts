import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoClaimStore } from '../shared/adapters/dynamodb/claim-store.ts';
import { DynamoInstanceStore } from '../shared/adapters/dynamodb/instance-store.ts';
import { systemClock } from '../shared/adapters/memory/clock.ts';
import { SecretsManagerSecrets } from '../shared/adapters/secrets/secrets-manager.ts';
import { DeadLetters } from '../shared/adapters/sqs/dead-letters.ts';
import { QueueUrlCache } from '../shared/adapters/sqs/queue-urls.ts';
import { SqsTaskQueue } from '../shared/adapters/sqs/task-queue.ts';
import type { ApiDeps } from '../shared/api/api.ts';
import type { AnyFlow } from '../shared/engine/definition.ts';
import type { ReaperDeps } from '../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../shared/runtime/registry.ts';
import type { WorkerDeps } from '../shared/runtime/worker.ts';
import { workflows as exampleWorkflows } from '../workflows/index.ts';

/**
 * The handlers' default dependencies on AWS, from environment variables set
 * by the CDK construct. Each variable is read once, when a handler is first
 * invoked; a missing one fails that invocation with its name.
 */
export const ENV = {
  /** Name of the instances table. */
  instancesTable: 'SAYIIR_INSTANCES_TABLE',
  /** Name of the claims table. */
  claimsTable: 'SAYIIR_CLAIMS_TABLE',
  /** Prefix of the queue names (`<prefix>-<pool>-<priority>.fifo`). */
  queuePrefix: 'SAYIIR_QUEUE_PREFIX',
  /** The worker's pool. */
  pool: 'SAYIIR_POOL',
  /** Name or ARN of the secret holding the API keys. */
  apiKeySecret: 'SAYIIR_API_KEY_SECRET',
  /** Worker: reservation TTL in ms (optional). */
  reserveTtlMs: 'SAYIIR_RESERVE_TTL_MS',
  /** Worker: executing lease in ms (optional). */
  leaseMs: 'SAYIIR_LEASE_MS',
  /** Worker: heartbeat period in ms (optional). */
  heartbeatMs: 'SAYIIR_HEARTBEAT_MS',
  /** History retention in days (optional). */
  historyRetentionDays: 'SAYIIR_HISTORY_RETENTION_DAYS',
} as const;

/** An optional positive integer variable. */
export function optionalIntEnv(name: string, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`environment variable ${name} must be a positive integer, got '${raw}'`);
  return n;
}

/** A required environment variable was not set. */
export class MissingEnvironmentError extends Error {
  override readonly name = 'MissingEnvironmentError';
  constructor(readonly variable: string) {
    super(`environment variable ${variable} is not set`);
  }
}

export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === '') throw new MissingEnvironmentError(name);
  return value;
}

let clients: { dynamo: DynamoDBClient; sqs: SQSClient; secrets: SecretsManagerClient } | undefined;

/** One set of SDK clients per container (connections are reused across invocations). */
function awsClients() {
  clients ??= { dynamo: new DynamoDBClient({}), sqs: new SQSClient({}), secrets: new SecretsManagerClient({}) };
  return clients;
}

function common(workflows: readonly AnyFlow[], env: NodeJS.ProcessEnv) {
  const { dynamo, sqs } = awsClients();
  const retentionDays = optionalIntEnv(ENV.historyRetentionDays, env);
  const store = new DynamoInstanceStore({
    client: dynamo,
    tableName: requireEnv(ENV.instancesTable, env),
    ...(retentionDays === undefined ? {} : { historyRetentionMs: retentionDays * 86_400_000 }),
  });
  const claims = new DynamoClaimStore({ client: dynamo, tableName: requireEnv(ENV.claimsTable, env) });
  const urls = new QueueUrlCache(sqs, requireEnv(ENV.queuePrefix, env));
  const queue = new SqsTaskQueue(sqs, urls.queueUrl);
  const deadLetters = new DeadLetters(sqs, urls.dlqUrl);
  return { store, claims, queue, deadLetters, registry: new WorkflowRegistry(workflows), clock: systemClock };
}

export function defaultApiDeps(workflows: readonly AnyFlow[] = exampleWorkflows, env = process.env): ApiDeps {
  const { store, claims, queue, deadLetters, registry, clock } = common(workflows, env);
  return {
    store,
    claims,
    queue,
    deadLetters,
    registry,
    clock,
    secrets: new SecretsManagerSecrets(awsClients().secrets),
    apiKeySecretName: requireEnv(ENV.apiKeySecret, env),
  };
}

export function defaultWorkerDeps(workflows: readonly AnyFlow[] = exampleWorkflows, env = process.env): WorkerDeps {
  const c = common(workflows, env);
  return {
    ...c,
    secrets: new SecretsManagerSecrets(awsClients().secrets),
    pool: requireEnv(ENV.pool, env),
    workerId: `${env.AWS_LAMBDA_LOG_STREAM_NAME ?? 'worker'}:${randomUUID().slice(0, 8)}`,
    ...withOptional('reserveTtlMs', optionalIntEnv(ENV.reserveTtlMs, env)),
    ...withOptional('leaseMs', optionalIntEnv(ENV.leaseMs, env)),
    ...withOptional('heartbeatMs', optionalIntEnv(ENV.heartbeatMs, env)),
  };
}

export function defaultReaperDeps(workflows: readonly AnyFlow[] = exampleWorkflows, env = process.env): ReaperDeps {
  const { deadLetters: _unused, ...c } = common(workflows, env);
  return { ...c, timers: c.store };
}

function withOptional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}
