import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { handler as authorize, MAX_API_KEY_LENGTH } from '../../functions/authorizer/handler.ts';
import { ENV, retentionEnv } from '../../functions/deps.ts';
import {
  EXAMPLE_WORKFLOWS_ENTRY as DEFAULT_WORKFLOWS_ENTRY,
  PACKAGE_ROOT as REPO_ROOT,
  resolveProjectRoot,
  wrapperSource,
  writeWrapperEntry,
} from '../../infra/entries.ts';
import { lockFileOf } from '../../infra/functions.ts';
import { checkWorkflowPools, EngineConfigError, resolveWorkerPools } from '../../infra/pools.ts';
import { queuePropsFromAttributes } from '../../infra/queues.ts';
import {
  claimTimingsEnvironment,
  retentionEnvironment,
  SayiirEngine,
  type SayiirEngineProps,
} from '../../infra/sayiir-engine.ts';
import { flow, task } from '../../shared/index.ts';
import { QueueDefinitionError, queueAttributes } from '../../shared/resources/queues.ts';

/** Construct-time rules and the pieces around the construct; no bundling here. */

/** A workflow whose one task runs on the 'gpu' pool. */
const train = flow<{ epochs: number }>('train')
  .then(task('fit', async (input: { epochs: number }) => input.epochs, { pool: 'gpu' }))
  .build();

describe('worker pools', () => {
  it('default to 1024 MB, 15 minutes, batches of 10 and concurrency 10/5/2, with the shared queue rules', () => {
    const [pool] = resolveWorkerPools([{ name: 'default' }], 5);
    expect(pool).toMatchObject({
      name: 'default',
      memorySize: 1024,
      batchSize: 10,
      maxConcurrency: { high: 10, normal: 5, low: 2 },
      claimTimings: {},
      // 6 x 900 s, under SQS's 12-hour cap.
      queues: { functionTimeoutSeconds: 900, visibilityTimeoutSeconds: 5400, maxReceiveCount: 5 },
    });
    expect(pool?.timeout.toSeconds()).toBe(900);
  });

  it('hide a received message for 6x the worker timeout (the shared rule; 15 minutes is under the 12-hour cap)', () => {
    const [pool] = resolveWorkerPools([{ name: 'p', timeout: Duration.minutes(15) }], 5);
    expect(pool?.queues.visibilityTimeoutSeconds).toBe(5400);
    const [short] = resolveWorkerPools([{ name: 'p', timeout: Duration.seconds(45) }], 5);
    expect(short?.queues.visibilityTimeoutSeconds).toBe(270);
  });

  it('carry the claim timings they set, in milliseconds, and only those', () => {
    const [pool] = resolveWorkerPools(
      [{ name: 'p', reserveTtl: Duration.seconds(5), lease: Duration.minutes(2), heartbeat: Duration.millis(20_500) }],
      5,
    );
    expect(pool?.claimTimings).toEqual({ reserveTtlMs: 5000, leaseMs: 120_000, heartbeatMs: 20_500 });
    const [leaseOnly] = resolveWorkerPools([{ name: 'p', lease: Duration.seconds(30) }], 5);
    expect(leaseOnly?.claimTimings).toEqual({ leaseMs: 30_000 });
    expect(claimTimingsEnvironment(pool!.claimTimings)).toEqual({
      [ENV.reserveTtlMs]: '5000',
      [ENV.leaseMs]: '120000',
      [ENV.heartbeatMs]: '20500',
    });
    expect(claimTimingsEnvironment(leaseOnly!.claimTimings)).toEqual({ [ENV.leaseMs]: '30000' });
    expect(claimTimingsEnvironment({})).toEqual({});
  });

  it('refuse a heartbeat that is not shorter than the lease, the default lease (60 s) included', () => {
    const one = (props: Parameters<typeof resolveWorkerPools>[0][number]) => () => resolveWorkerPools([props], 5);
    expect(one({ name: 'p', lease: Duration.seconds(30), heartbeat: Duration.seconds(30) })).toThrow(
      /pool 'p' heartbeat \(30000 ms\) must be shorter than its lease \(30000 ms\)/,
    );
    expect(one({ name: 'p', lease: Duration.seconds(30), heartbeat: Duration.seconds(31) })).toThrow(EngineConfigError);
    expect(one({ name: 'p', heartbeat: Duration.seconds(60) })).toThrow(/lease \(60000 ms, the default\)/);
    expect(one({ name: 'p', heartbeat: Duration.seconds(59) })).not.toThrow();
    expect(one({ name: 'p', lease: Duration.seconds(30), heartbeat: Duration.seconds(29) })).not.toThrow();
  });

  it('accept a lease longer than the function timeout', () => {
    const [pool] = resolveWorkerPools([{ name: 'p', timeout: Duration.minutes(1), lease: Duration.minutes(20) }], 5);
    expect(pool?.claimTimings.leaseMs).toBe(1_200_000);
  });

  it('refuse claim timings that are not a whole number of milliseconds, at least 1', () => {
    const one = (props: Parameters<typeof resolveWorkerPools>[0][number]) => () => resolveWorkerPools([props], 5);
    expect(one({ name: 'p', reserveTtl: Duration.millis(0) })).toThrow(/reserveTtl must be a whole number/);
    expect(one({ name: 'p', lease: Duration.millis(1.5) })).toThrow(/lease must be a whole number/);
    expect(one({ name: 'p', heartbeat: Duration.millis(0.5) })).toThrow(/heartbeat must be a whole number/);
  });

  it('refuse what AWS would refuse at deploy time', () => {
    const one = (props: Parameters<typeof resolveWorkerPools>[0][number]) => () => resolveWorkerPools([props], 5);
    expect(one({ name: 'p', maxConcurrency: { low: 1 } })).toThrow(/maxConcurrency.low.*2 to 1000/);
    expect(one({ name: 'p', batchSize: 11 })).toThrow(EngineConfigError);
    expect(one({ name: 'p', timeout: Duration.minutes(16) })).toThrow(/timeout/);
    expect(one({ name: 'p', memorySize: 64 })).toThrow(/memorySize/);
    expect(one({ name: 'my pool' })).toThrow(QueueDefinitionError);
    expect(() => resolveWorkerPools([{ name: 'a' }, { name: 'a' }], 5)).toThrow(/declared twice/);
    expect(() => resolveWorkerPools([], 5)).toThrow(/at least one/);
    expect(() => resolveWorkerPools([{ name: 'a' }], 0)).toThrow(QueueDefinitionError);
  });
});

describe('engine props', () => {
  const engineIn = (props: Partial<SayiirEngineProps>) => () =>
    new SayiirEngine(new Stack(new App(), 'S'), 'E', { workflowsEntry: DEFAULT_WORKFLOWS_ENTRY, ...props });

  it('refuse task secrets for a pool that does not exist', () => {
    expect(engineIn({ taskSecrets: { gpu: ['x'] } })).toThrow(/taskSecrets names pool 'gpu'/);
  });

  it('refuse a workflows entry that is missing or not a module, naming the prop', () => {
    expect(engineIn({ workflowsEntry: undefined as unknown as string })).toThrow(/needs workflowsEntry/);
    expect(() => new SayiirEngine(new Stack(new App(), 'S'), 'E', undefined as never)).toThrow(/needs workflowsEntry/);
    expect(engineIn({ workflowsEntry: 'nope/workflows.ts' })).toThrow(/workflowsEntry .*nope.* does not exist/);
    expect(engineIn({ workflowsEntry: 'package.json' })).toThrow(/TypeScript or JavaScript/);
  });

  it('refuse workflows that run tasks on a pool that is not deployed, naming the workflow and the pools', () => {
    const error = (() => {
      try {
        engineIn({ workflows: [train] })();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(EngineConfigError);
    expect((error as Error).message).toBe(
      "workflow 'train' runs tasks on pool 'gpu', which is not deployed (deployed pools: 'default'): " +
        "add the pool to the engine's pools, or move the tasks to a deployed pool",
    );
  });

  it('accept workflows whose pools are all deployed', () => {
    // No bundling: only the construct's checks matter here.
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const engine = new SayiirEngine(new Stack(app, 'S'), 'E', {
      workflowsEntry: DEFAULT_WORKFLOWS_ENTRY,
      workflows: [train],
      pools: [{ name: 'default' }, { name: 'gpu' }],
    });
    expect(Object.keys(engine.workerFunctions).sort()).toEqual(['default', 'gpu']);
  });

  it('refuse a project root without a lock file, naming the prop', () => {
    const bare = mkdtempSync(path.join(tmpdir(), 'sayiir-no-lock-'));
    expect(engineIn({ projectRoot: bare })).toThrow(/projectRoot .* holds no lock file/);
    expect(engineIn({ projectRoot: path.join(bare, 'missing') })).toThrow(/projectRoot .* does not exist/);
  });

  it('find the project root at or above the workflows entry, and say to set projectRoot when there is none', () => {
    expect(resolveProjectRoot(undefined, DEFAULT_WORKFLOWS_ENTRY)).toBe(path.resolve(REPO_ROOT));
    const bare = mkdtempSync(path.join(tmpdir(), 'sayiir-no-lock-'));
    writeFileSync(path.join(bare, 'workflows.ts'), 'export const workflows = [];\n');
    expect(() => resolveProjectRoot(undefined, path.join(bare, 'workflows.ts'))).toThrow(
      /no lock file .* set the projectRoot prop/,
    );
  });

  it('refuse a queue prefix that makes a queue name too long for SQS', () => {
    expect(engineIn({ queuePrefix: 'p'.repeat(70) })).toThrow(/longer than 80/);
  });
});

describe('run retention', () => {
  it('reaches the api as SAYIIR_RETENTION, and reads back as the construct set it', () => {
    expect(retentionEnvironment(undefined)).toEqual({});
    expect(retentionEnv(retentionEnvironment(undefined))).toBeUndefined();
    const days = retentionEnvironment(Duration.days(30));
    expect(days).toEqual({ [ENV.retention]: String(30 * 24 * 3_600_000) });
    expect(retentionEnv(days)).toBe(30 * 24 * 3_600_000);
    expect(retentionEnv(retentionEnvironment('forever'))).toBe('forever');
  });

  it('refuses a retention under one minute, and an api environment that is not a number or forever', () => {
    expect(() => retentionEnvironment(Duration.seconds(59))).toThrow(EngineConfigError);
    expect(() => retentionEnv({ [ENV.retention]: 'soon' })).toThrow(/SAYIIR_RETENTION/);
  });
});

describe('workflow pools check', () => {
  const hello = flow<string>('hello')
    .then(task('greet', async (name: string) => `hi ${name}`))
    .build();
  const mixed = flow<string>('mixed')
    .then(task('a', async (s: string) => s, { pool: 'gpu' }))
    .then(task('b', async (s: string) => s, { pool: 'big' }))
    .build();

  it("passes when every task's pool is deployed (an unset pool is 'default')", () => {
    expect(() => checkWorkflowPools([hello, train], ['default', 'gpu'])).not.toThrow();
    expect(() => checkWorkflowPools([], ['default'])).not.toThrow();
  });

  it('names every workflow with a missing pool, and each missing pool', () => {
    expect(() => checkWorkflowPools([hello], ['gpu'])).toThrow(
      /^workflow 'hello' runs tasks on pool 'default', which is not deployed \(deployed pools: 'gpu'\)/,
    );
    expect(() => checkWorkflowPools([hello, mixed, train], ['default', 'gpu'])).toThrow(
      /^workflow 'mixed' runs tasks on pool 'big', which is not deployed \(deployed pools: 'default', 'gpu'\)/,
    );
    expect(() => checkWorkflowPools([mixed, train], ['default'])).toThrow(
      "workflow 'mixed' runs tasks on pools 'big', 'gpu', which are not deployed; " +
        "workflow 'train' runs tasks on pool 'gpu', which is not deployed (deployed pools: 'default')",
    );
  });
});

describe('queue props from the shared attributes', () => {
  it('map every attribute of a priority queue, the redrive included', () => {
    const stack = new Stack();
    const dlq = new Queue(stack, 'Dlq', { fifo: true });
    const props = queuePropsFromAttributes(
      queueAttributes({ name: 'p', functionTimeoutSeconds: 60, maxReceiveCount: 7 }, 'ignored'),
      dlq,
    );
    expect(props).toMatchObject({
      fifo: true,
      contentBasedDeduplication: false,
      deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      encryption: QueueEncryption.SQS_MANAGED,
      deadLetterQueue: { queue: dlq, maxReceiveCount: 7 },
    });
    expect(props.visibilityTimeout?.toSeconds()).toBe(360);
    expect(props.retentionPeriod?.toDays()).toBe(14);
  });

  it('fail on an attribute they do not know, so a new shared attribute cannot be dropped', () => {
    expect(() => queuePropsFromAttributes({ KmsMasterKeyId: 'alias/x' })).toThrow(/KmsMasterKeyId has no CDK mapping/);
    expect(() => queuePropsFromAttributes({ RedrivePolicy: '{"maxReceiveCount":1}' })).toThrow(/dead-letter queue/);
  });
});

describe('generated handler entries', () => {
  it('import the user workflows and build the handler lazily over the default deps', () => {
    const source = wrapperSource('worker', '/app/src/workflows.ts');
    expect(source).toContain(`import { workflows } from "/app/src/workflows.ts";`);
    expect(source).toContain('export const handler = lazyHandler(() => makeHandler(defaultWorkerDeps(workflows)));');
    expect(wrapperSource('api', '/w.ts')).toContain('makeHandler(defaultApiDeps(workflows))');
    expect(wrapperSource('reaper', '/w.ts')).toContain('makeHandler(defaultReaperDeps(workflows))');
  });

  it('import only files that exist (functions/deps.ts, functions/middy.ts, the handlers)', () => {
    for (const handler of ['api', 'worker', 'reaper'] as const) {
      const imported = [...wrapperSource(handler, DEFAULT_WORKFLOWS_ENTRY).matchAll(/from "([^"]+)"/g)].map(
        (m) => m[1],
      );
      expect(imported).toHaveLength(4);
      for (const file of imported) expect(existsSync(file!), file).toBe(true);
    }
  });

  it('are written once per content inside the project root', () => {
    const first = writeWrapperEntry(REPO_ROOT, 'reaper', DEFAULT_WORKFLOWS_ENTRY);
    expect(path.relative(REPO_ROOT, first)).toMatch(/^node_modules[\\/]\.cache[\\/]sayiir[\\/]entries[\\/]/);
    expect(writeWrapperEntry(REPO_ROOT, 'reaper', DEFAULT_WORKFLOWS_ENTRY)).toBe(first);
    expect(readFileSync(first, 'utf8')).toBe(wrapperSource('reaper', DEFAULT_WORKFLOWS_ENTRY));
    expect(writeWrapperEntry(REPO_ROOT, 'reaper', path.join(REPO_ROOT, 'workflows', 'hello.ts'))).not.toBe(first);
  });

  it('need a lock file in the bundling project root', () => {
    expect(lockFileOf(REPO_ROOT)).toBe(path.join(REPO_ROOT, 'package-lock.json'));
    expect(() => lockFileOf(mkdtempSync(path.join(tmpdir(), 'sayiir-no-lock-')))).toThrow(EngineConfigError);
  });
});

describe('authorizer', () => {
  const event = (headers: Record<string, string>) => ({ headers }) as unknown as APIGatewayRequestAuthorizerEventV2;

  it('lets a request with an x-api-key through to the api function, which compares it', async () => {
    expect(await authorize(event({ 'x-api-key': 'k3y' }))).toEqual({ isAuthorized: true });
  });

  it('refuses a missing, blank or oversized key', async () => {
    expect(await authorize(event({}))).toEqual({ isAuthorized: false });
    expect(await authorize(event({ 'x-api-key': '  ' }))).toEqual({ isAuthorized: false });
    expect(await authorize(event({ 'x-api-key': 'k'.repeat(MAX_API_KEY_LENGTH + 1) }))).toEqual({
      isAuthorized: false,
    });
    expect(await authorize(event({ authorization: 'k3y' }))).toEqual({ isAuthorized: false });
  });
});
