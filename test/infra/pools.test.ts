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
import { SayiirEngine } from '../../infra/sayiir-engine.ts';
import { dlqName, PRIORITIES, queueName } from '../../shared/resources/queues.ts';
import { allows, allowsOn, bundleOf, logicalIdOf, resourcesOf, roleStatements, type Statement } from './support/cdk.ts';

/**
 * An engine embedded in a user's stack, with two pools: 'default', and
 * 'payments' (longer timeout, its own concurrency, a task secret), the
 * user's own workflows entry, a customer-managed table key, alarm actions
 * and an explicit queue prefix. One synthesis for the file.
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
      },
    ],
    taskSecrets: { payments: ['stripe', ledger] },
    encryptionKey: key,
    alarmActions: [new SnsAction(topic)],
  });
  Aspects.of(stack).add(new AwsSolutionsChecks());
  assembly = app.synth();
  template = Template.fromStack(stack);
});

const statementsOfPool = (pool: string): Statement[] =>
  roleStatements(template, logicalIdOf(engine.workerFunctions[pool]!.role as never));

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

  it("sets each pool's visibility timeout to 6x its worker timeout", () => {
    const visibility = (pool: string) =>
      template.toJSON().Resources[logicalIdOf(engine.queues[pool]!.normal)].Properties.VisibilityTimeout;
    expect(visibility('default')).toBe(180);
    expect(visibility('payments')).toBe(720);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: 120,
      MemorySize: 2048,
      Environment: { Variables: Match.objectLike({ [ENV.pool]: 'payments', [ENV.queuePrefix]: PREFIX }) },
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

  it('sends every alarm (2 DLQs, 6 queue ages) to the alarm actions', () => {
    const alarms = resourcesOf(template, 'AWS::CloudWatch::Alarm');
    expect(alarms).toHaveLength(8);
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
