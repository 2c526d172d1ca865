import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { App, Aspects, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks, NagSuppressions } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/deps.ts';
import { addSayiirNagSuppressions } from '../../infra/nag.ts';
import { SayiirEngine } from '../../infra/sayiir-engine.ts';
import { dlqName, PRIORITIES, queueName } from '../../shared/resources/queues.ts';
import { workflows } from './fixtures/workflows.ts';
import { allows, allowsOn, bundleOf, logicalIdOf, resourcesOf, roleStatements, type Statement } from './support/cdk.ts';

/**
 * An engine embedded in a user's stack, with two pools: 'default', and
 * 'payments' (shorter timeout, its own concurrency and claim timings, a task
 * secret), the user's own workflows entry (and its workflows, so their pools
 * are checked), a customer-managed table key, alarm actions, a history
 * retention and an explicit queue prefix. One synthesis for the file.
 */

const PREFIX = 'shop';
const RECEIVES = 3;
let stack: Stack;
let engine: SayiirEngine;
let template: Template;
let assembly: CloudAssembly;
let topic: Topic;
let key: Key;
let ledger: Secret;

beforeAll(() => {
  // `cdk synth` checks the template against the CloudFormation schemas; here it would only cost seconds.
  process.env.CDK_VALIDATION = 'false';
  const app = new App();
  stack = new Stack(app, 'ShopStack');
  topic = new Topic(stack, 'Pager', { enforceSSL: true });
  key = new Key(stack, 'TablesKey', { enableKeyRotation: true });
  ledger = new Secret(stack, 'Ledger');
  // The user's secret, not the engine's: its rotation is the user's business.
  NagSuppressions.addResourceSuppressions(ledger, [
    { id: 'AwsSolutions-SMG4', reason: 'Test fixture standing for a secret the user owns and rotates.' },
  ]);
  engine = new SayiirEngine(stack, 'Engine', {
    workflowsEntry: fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url)),
    workflows,
    queuePrefix: PREFIX,
    maxReceiveCount: RECEIVES,
    pools: [
      { name: 'default' },
      {
        name: 'payments',
        timeout: Duration.minutes(2),
        memorySize: 2048,
        batchSize: 1,
        maxConcurrency: { high: 50, normal: 20, low: 3 },
        reserveTtl: Duration.seconds(5),
        lease: Duration.seconds(90),
        heartbeat: Duration.seconds(20),
      },
    ],
    taskSecrets: { payments: ['stripe', ledger] },
    encryptionKey: key,
    alarmActions: [new SnsAction(topic)],
  });
  Aspects.of(stack).add(new AwsSolutionsChecks());
  addSayiirNagSuppressions(engine);
  assembly = app.synth();
  template = Template.fromStack(stack);
});

const statementsOfPool = (pool: string): Statement[] =>
  roleStatements(template, logicalIdOf(engine.workerFunctions[pool]!.role as never));
const statementsOfFn = (fn: { role?: unknown }): Statement[] => roleStatements(template, logicalIdOf(fn.role as never));
const envOf = (fn: Parameters<typeof logicalIdOf>[0]): Record<string, unknown> =>
  template.toJSON().Resources[logicalIdOf(fn)].Properties.Environment.Variables;
const POOLS = ['default', 'payments'] as const;

describe('per-pool resources', () => {
  it('declares three FIFO queues and one DLQ per pool, named with the prefix', () => {
    const names = resourcesOf(template, 'AWS::SQS::Queue').map(([, r]) => r.Properties.QueueName);
    const expected = ['default', 'payments'].flatMap((pool) => [
      ...PRIORITIES.map((p) => queueName(PREFIX, pool, p)),
      dlqName(PREFIX, pool),
    ]);
    expect(names.sort()).toEqual(expected.sort());
    expect(Object.keys(engine.queues).sort()).toEqual(['default', 'payments']);
    expect(Object.keys(engine.deadLetterQueues).sort()).toEqual(['default', 'payments']);
  });

  it("redrives each pool's queues to that pool's DLQ with the configured maxReceiveCount", () => {
    for (const pool of ['default', 'payments']) {
      const dlq = logicalIdOf(engine.deadLetterQueues[pool]!);
      for (const priority of PRIORITIES) {
        const props = template.toJSON().Resources[logicalIdOf(engine.queues[pool]![priority])].Properties;
        expect(props.RedrivePolicy, `${pool} ${priority}`).toEqual({
          deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] },
          maxReceiveCount: RECEIVES,
        });
      }
    }
  });

  it("sets each pool's visibility timeout to 6x its worker timeout (15 minutes by default)", () => {
    const visibility = (pool: string) =>
      template.toJSON().Resources[logicalIdOf(engine.queues[pool]!.normal)].Properties.VisibilityTimeout;
    expect(template.toJSON().Resources[logicalIdOf(engine.workerFunctions.default!)].Properties.Timeout).toBe(900);
    expect(visibility('default')).toBe(5400);
    expect(visibility('payments')).toBe(720);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: 120,
      MemorySize: 2048,
      Environment: { Variables: Match.objectLike({ [ENV.pool]: 'payments', [ENV.queueUrls]: Match.anyValue() }) },
    });
  });

  it('gives each worker its own event sources with its concurrency per priority', () => {
    const expected = {
      default: { high: 10, normal: 5, low: 2, batch: 10 },
      payments: { high: 50, normal: 20, low: 3, batch: 1 },
    } as const;
    expect(resourcesOf(template, 'AWS::Lambda::EventSourceMapping')).toHaveLength(6);
    for (const [pool, caps] of Object.entries(expected)) {
      for (const priority of PRIORITIES) {
        template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
          FunctionName: { Ref: logicalIdOf(engine.workerFunctions[pool]!) },
          EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(engine.queues[pool]![priority]), 'Arn'] },
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          ScalingConfig: { MaximumConcurrency: caps[priority] },
          BatchSize: caps.batch,
        });
      }
    }
  });

  it("passes a pool's claim timings to its worker in ms, and none the pool does not set", () => {
    expect(envOf(engine.workerFunctions.payments!)).toMatchObject({
      [ENV.reserveTtlMs]: '5000',
      [ENV.leaseMs]: '90000',
      [ENV.heartbeatMs]: '20000',
    });
    const timings = [ENV.reserveTtlMs, ENV.leaseMs, ENV.heartbeatMs];
    for (const fn of [engine.workerFunctions.default!, engine.apiFunction, engine.reaperFunction]) {
      for (const name of timings) expect(envOf(fn), name).not.toHaveProperty(name);
    }
  });

  it('bundles the user workflows entry into the workers', () => {
    for (const pool of ['default', 'payments']) {
      const bundle = bundleOf(assembly, stack, template, logicalIdOf(engine.workerFunctions[pool]!));
      expect(readFileSync(bundle, 'utf8')).toContain('infra-fixture-payment');
    }
  });

  it('encrypts both tables with the customer-managed key', () => {
    const keyRef = { 'Fn::GetAtt': [logicalIdOf(key), 'Arn'] };
    for (const table of [engine.tables.instances, engine.tables.claims]) {
      const props = template.toJSON().Resources[logicalIdOf(table)].Properties;
      expect(props.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyRef });
    }
  });

  it('sends every alarm (2 DLQs, 6 queue ages, errors and throttles of 6 functions, the UI included, the reaper silent) to the alarm actions', () => {
    const alarms = resourcesOf(template, 'AWS::CloudWatch::Alarm');
    expect(alarms).toHaveLength(8 + 2 * 6 + 1);
    for (const [id, alarm] of alarms) {
      expect(alarm.Properties.AlarmActions, id).toEqual([{ Ref: logicalIdOf(topic) }]);
    }
  });
});

describe('least privilege across pools', () => {
  it("lets a worker receive from its own pool's queues and never from another pool's", () => {
    for (const [own, other] of [
      ['default', 'payments'],
      ['payments', 'default'],
    ] as const) {
      const statements = statementsOfPool(own);
      for (const priority of PRIORITIES) {
        const mine = logicalIdOf(engine.queues[own]![priority]);
        const theirs = logicalIdOf(engine.queues[other]![priority]);
        expect(allows(statements, 'sqs:ReceiveMessage', mine), `${own} on ${own}`).toBe(true);
        expect(allows(statements, 'sqs:ReceiveMessage', theirs), `${own} on ${other}`).toBe(false);
        expect(allows(statements, 'sqs:DeleteMessage', theirs), `${own} on ${other}`).toBe(false);
        expect(allows(statements, 'sqs:ChangeMessageVisibility', theirs), `${own} on ${other}`).toBe(false);
        // A successor task may belong to the other pool.
        expect(allows(statements, 'sqs:SendMessage', theirs), `${own} sends to ${other}`).toBe(true);
      }
    }
  });

  it('lets no worker touch a DLQ: a dead letter is a record in the instances table', () => {
    for (const own of POOLS) {
      const statements = statementsOfPool(own);
      for (const pool of POOLS) {
        const dlq = logicalIdOf(engine.deadLetterQueues[pool]!);
        for (const action of [
          'sqs:SendMessage',
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueUrl',
        ]) {
          expect(allows(statements, action, dlq), `${own} ${action} on ${pool}'s DLQ`).toBe(false);
        }
      }
    }
  });

  it("lets the reaper drain every pool's DLQ (receive, delete), and neither the api nor the reaper send to one", () => {
    const reaper = statementsOfFn(engine.reaperFunction);
    const api = statementsOfFn(engine.apiFunction);
    for (const pool of POOLS) {
      const dlq = logicalIdOf(engine.deadLetterQueues[pool]!);
      // DeleteMessageBatch is authorized as DeleteMessage.
      for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueUrl']) {
        expect(allows(reaper, action, dlq), `reaper ${pool} ${action}`).toBe(true);
        expect(allows(api, action, dlq), `api ${pool} ${action}`).toBe(false);
      }
      expect(allows(reaper, 'sqs:SendMessage', dlq), pool).toBe(false);
      expect(allows(api, 'sqs:SendMessage', dlq), pool).toBe(false);
    }
  });

  it('grants sqs:GetQueueUrl on exactly the queues each function uses, by ARN', () => {
    const priorityQueues = POOLS.flatMap((pool) => PRIORITIES.map((p) => logicalIdOf(engine.queues[pool]![p])));
    const dlqs = Object.fromEntries(POOLS.map((pool) => [pool, logicalIdOf(engine.deadLetterQueues[pool]!)]));
    const expectations: [string, Statement[], string[]][] = [
      ['api', statementsOfFn(engine.apiFunction), priorityQueues],
      ['reaper', statementsOfFn(engine.reaperFunction), [...priorityQueues, dlqs.default!, dlqs.payments!]],
      ['worker default', statementsOfPool('default'), priorityQueues],
      ['worker payments', statementsOfPool('payments'), priorityQueues],
      ['authorizer', statementsOfFn(engine.authorizerFunction), []],
    ];
    for (const [who, statements, queues] of expectations) {
      for (const queue of [...priorityQueues, ...Object.values(dlqs)]) {
        expect(allows(statements, 'sqs:GetQueueUrl', queue), `${who} on ${queue}`).toBe(queues.includes(queue));
      }
      for (const s of statements.filter((x) => x.actions.some((a) => a.startsWith('sqs:')))) {
        for (const resource of s.resources)
          expect(JSON.stringify(resource), who).toMatch(/"Fn::GetAtt":\[".+","Arn"\]/);
      }
    }
  });

  it('lets only the payments worker read the payments task secrets', () => {
    const payments = statementsOfPool('payments');
    expect(allowsOn(payments, 'secretsmanager:GetSecretValue', ':secret:stripe-??????')).toBe(true);
    expect(allows(payments, 'secretsmanager:GetSecretValue', logicalIdOf(ledger))).toBe(true);
    const others = [
      statementsOfPool('default'),
      roleStatements(template, logicalIdOf(engine.apiFunction.role as never)),
      roleStatements(template, logicalIdOf(engine.reaperFunction.role as never)),
      roleStatements(template, logicalIdOf(engine.authorizerFunction.role as never)),
    ];
    for (const statements of others) {
      expect(allowsOn(statements, 'secretsmanager:GetSecretValue', ':secret:stripe')).toBe(false);
      expect(allows(statements, 'secretsmanager:GetSecretValue', logicalIdOf(ledger))).toBe(false);
    }
    // A pool without taskSecrets reads no secret at all.
    expect(statementsOfPool('default').flatMap((s) => s.actions)).not.toContainEqual(
      expect.stringMatching(/^secretsmanager:/),
    );
    expect(engine.taskSecrets.default).toEqual([]);
    expect(engine.taskSecrets.payments).toHaveLength(2);
  });

  it('lets the functions that use the tables use the key, and the authorizer not', () => {
    for (const fn of [engine.apiFunction, engine.reaperFunction, ...Object.values(engine.workerFunctions)]) {
      const statements = roleStatements(template, logicalIdOf(fn.role as never));
      expect(allows(statements, 'kms:Decrypt', logicalIdOf(key))).toBe(true);
    }
    const authorizer = roleStatements(template, logicalIdOf(engine.authorizerFunction.role as never));
    expect(allows(authorizer, 'kms:Decrypt', logicalIdOf(key))).toBe(false);
  });

  it('passes cdk-nag AwsSolutions with the customer-managed key and two pools', () => {
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${String(e.entry.data).split('\n')[0]}`)).toEqual([]);
  });
});
