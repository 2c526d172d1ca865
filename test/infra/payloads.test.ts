import { App, Aspects, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/deps.ts';
import { EXAMPLE_WORKFLOWS_ENTRY } from '../../infra/entries.ts';
import { addSayiirNagSuppressions } from '../../infra/nag.ts';
import { SayiirPayloads, type SayiirPayloadsProps } from '../../infra/payloads.ts';
import { SayiirEngine } from '../../infra/sayiir-engine.ts';
import { logicalIdOf, resourcesOf, roleStatements, type Statement } from './support/cdk.ts';

/**
 * The payload bucket: the construct on its own (cheap, no bundling), then
 * inside an engine with a customer-managed key and a 7-day retention, with
 * cdk-nag applied (one synthesis; the default engine's bucket is covered by
 * sayiir-stack.test.ts's nag run).
 */

function payloadsIn(props: SayiirPayloadsProps): { template: Template; payloads: SayiirPayloads } {
  const stack = new Stack(new App(), 'Bucket');
  const payloads = new SayiirPayloads(stack, 'Payloads', props);
  return { template: Template.fromStack(stack), payloads };
}

const bucketOf = (template: Template) => {
  const buckets = resourcesOf(template, 'AWS::S3::Bucket');
  expect(buckets).toHaveLength(1);
  return buckets[0]![1];
};

describe('SayiirPayloads', () => {
  it('blocks all public access, disables ACLs and encrypts with S3-managed keys by default', () => {
    const { template } = payloadsIn({ expiration: Duration.days(30) });
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
    });
    expect(bucketOf(template).Properties.VersioningConfiguration).toBeUndefined();
  });

  it('encrypts with a customer-managed key through an S3 Bucket Key when one is given', () => {
    const stack = new Stack(new App(), 'Kms');
    const key = new Key(stack, 'Key', { enableKeyRotation: true });
    new SayiirPayloads(stack, 'Payloads', { expiration: Duration.days(30), encryptionKey: key });
    Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [logicalIdOf(key), 'Arn'] },
            },
            BucketKeyEnabled: true,
          },
        ],
      },
    });
  });

  it('refuses requests without TLS, or with TLS older than 1.2', () => {
    const { template, payloads } = payloadsIn({ expiration: Duration.days(30) });
    const bucket = logicalIdOf(payloads.bucket);
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
          }),
        ]),
      },
    });
  });

  it('expires objects after the retention, in whole days rounded up, and aborts stale multipart uploads', () => {
    const rules = (expiration: Duration) =>
      (bucketOf(payloadsIn({ expiration }).template).Properties.LifecycleConfiguration as { Rules: unknown[] }).Rules;
    expect(rules(Duration.days(30))).toEqual([
      {
        Id: 'ExpirePayloads',
        Status: 'Enabled',
        ExpirationInDays: 30,
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      },
    ]);
    expect(rules(Duration.hours(36))).toMatchObject([{ ExpirationInDays: 2 }]);
    expect(rules(Duration.days(1))).toMatchObject([{ ExpirationInDays: 1 }]);
  });

  it('follows the removal policy, retaining by default', () => {
    const retained = payloadsIn({ expiration: Duration.days(1) });
    expect(retained.template.toJSON().Resources[logicalIdOf(retained.payloads.bucket)]).toMatchObject({
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    const { template, payloads } = payloadsIn({ expiration: Duration.days(1), removalPolicy: RemovalPolicy.DESTROY });
    expect(template.toJSON().Resources[logicalIdOf(payloads.bucket)]).toMatchObject({
      DeletionPolicy: 'Delete',
      UpdateReplacePolicy: 'Delete',
    });
    // No custom resource emptying the bucket: that would be a fifth, CDK-owned function.
    template.resourceCountIs('AWS::Lambda::Function', 0);
  });

  it('grants read/write as object actions on <bucket>/* and ListBucket on the bucket, nothing wider', () => {
    const stack = new Stack(new App(), 'Grants');
    const payloads = new SayiirPayloads(stack, 'Payloads', { expiration: Duration.days(1) });
    const role = new Role(stack, 'Fn', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    payloads.grantReadWrite(role);
    const statements = roleStatements(Template.fromStack(stack), logicalIdOf(role));
    const bucketArn = { 'Fn::GetAtt': [logicalIdOf(payloads.bucket), 'Arn'] };
    expect(statements).toEqual([
      {
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: [{ 'Fn::Join': ['', [bucketArn, '/*']] }],
      },
      { actions: ['s3:ListBucket'], resources: [bucketArn] },
    ] satisfies Statement[]);
  });
});

describe('the payload bucket in an engine (customer-managed key, 7-day retention, cdk-nag)', () => {
  let stack: Stack;
  let engine: SayiirEngine;
  let template: Template;
  let key: Key;

  beforeAll(() => {
    process.env.CDK_VALIDATION = 'false';
    stack = new Stack(new App(), 'PayloadStack');
    key = new Key(stack, 'Key', { enableKeyRotation: true });
    engine = new SayiirEngine(stack, 'Engine', {
      workflowsEntry: EXAMPLE_WORKFLOWS_ENTRY,
      queuePrefix: 'pay',
      encryptionKey: key,
      pools: [{ name: 'default' }, { name: 'batch' }],
    });
    Aspects.of(stack).add(new AwsSolutionsChecks());
    addSayiirNagSuppressions(engine);
    template = Template.fromStack(stack);
  });

  const statementsOf = (fn: { role?: unknown }): Statement[] => roleStatements(template, logicalIdOf(fn.role as never));
  const s3Statements = (fn: { role?: unknown }) =>
    statementsOf(fn).filter((s) => s.actions.some((a) => a.startsWith('s3:')));
  const envOf = (fn: Parameters<typeof logicalIdOf>[0]): Record<string, unknown> =>
    template.toJSON().Resources[logicalIdOf(fn)].Properties.Environment.Variables;
  const workers = () => Object.values(engine.workerFunctions);

  it('is one bucket, exposed as payloadBucket, with the tables key, and never expires what a live run may read', () => {
    const bucket = bucketOf(template);
    expect(logicalIdOf(engine.payloadBucket)).toBe(resourcesOf(template, 'AWS::S3::Bucket')[0]![0]);
    const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    expect(rules).toHaveLength(1);
    expect(rules[0]).not.toHaveProperty('ExpirationInDays');
    expect(rules[0]).toMatchObject({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } });
    expect(JSON.stringify(bucket.Properties.BucketEncryption)).toContain(logicalIdOf(key));
  });

  it('passes the bucket name as SAYIIR_PAYLOAD_BUCKET to the api and every worker, and to no other function', () => {
    const ref = { Ref: logicalIdOf(engine.payloadBucket) };
    expect(ENV.payloadBucket).toBe('SAYIIR_PAYLOAD_BUCKET');
    for (const fn of [engine.apiFunction, ...workers()])
      expect(envOf(fn)[ENV.payloadBucket], fn.node.path).toEqual(ref);
    expect(envOf(engine.reaperFunction)).not.toHaveProperty(ENV.payloadBucket);
    expect(envOf(engine.authorizerFunction) ?? {}).not.toHaveProperty(ENV.payloadBucket);
  });

  it('lets the api and the workers read, write and delete payloads, with decrypt on the key', () => {
    const bucket = logicalIdOf(engine.payloadBucket);
    for (const fn of [engine.apiFunction, ...workers()]) {
      const s3 = s3Statements(fn);
      const actions = s3.flatMap((s) => s.actions).sort();
      expect(actions, fn.node.path).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
      for (const s of s3) expect(JSON.stringify(s.resources), fn.node.path).toContain(bucket);
      const kms = statementsOf(fn).filter((s) => s.actions.includes('kms:Decrypt'));
      expect(kms.length, fn.node.path).toBeGreaterThan(0);
      expect(JSON.stringify(kms.map((s) => s.resources)), fn.node.path).toContain(logicalIdOf(key));
    }
  });

  it('gives the reaper and the authorizer no S3 action at all', () => {
    expect(s3Statements(engine.reaperFunction)).toEqual([]);
    expect(s3Statements(engine.authorizerFunction)).toEqual([]);
  });

  it('reports no AwsSolutions error, the bucket and the grants included', () => {
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${String(e.entry.data).split('\n')[0]}`)).toEqual([]);
    const rules = template.toJSON().Resources[logicalIdOf(engine.payloadBucket)].Metadata.cdk_nag.rules_to_suppress as {
      id: string;
      reason: string;
    }[];
    expect(rules.map((r) => r.id)).toEqual(['AwsSolutions-S1']);
  });
});
