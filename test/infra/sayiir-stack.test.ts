import { readFileSync, statSync } from 'node:fs';
import { App, Aspects, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/deps.ts';
import { API_KEY_HEADER, API_ROUTE_PATHS, API_THROTTLE_DEFAULTS, UI_ROUTE_PATHS } from '../../infra/api.ts';
import { addSayiirNagSuppressions } from '../../infra/nag.ts';
import { SayiirStack } from '../../infra/sayiir-stack.ts';
import { parseApiKeys } from '../../shared/api/auth.ts';
import { MAX_WAIT_SECONDS } from '../../shared/api/routes.ts';
import { DEFAULT_POOL } from '../../shared/engine/describe.ts';
import { dlqAttributes, PRIORITIES, queueAttributes, resolvePool } from '../../shared/resources/queues.ts';
import { createTableInput, tables } from '../../shared/resources/tables.ts';
import {
  allIdentityStatements,
  allows,
  bundleOf,
  dockerImageAssets,
  dockerWasCalled,
  invokeBundle,
  logicalIdOf,
  resourcesOf,
  roleStatements,
  trapDocker,
} from './support/cdk.ts';

/**
 * The deployable stack as `cdk synth` builds it (example workflows, one
 * 'default' pool), synthesized once for the whole file, with cdk-nag's AWS
 * Solutions pack applied and Docker booby-trapped.
 */

const STACK = 'SayiirTest';
let dockerMarker: string;
let app: App;
let stack: SayiirStack;
let template: Template;
let assembly: CloudAssembly;

beforeAll(() => {
  // `cdk synth` checks the template against the CloudFormation schemas; here it would only cost seconds.
  process.env.CDK_VALIDATION = 'false';
  dockerMarker = trapDocker();
  app = new App();
  stack = new SayiirStack(app, STACK);
  Aspects.of(stack).add(new AwsSolutionsChecks());
  addSayiirNagSuppressions(stack.engine);
  assembly = app.synth();
  template = Template.fromStack(stack);
});

const engine = () => stack.engine;
const roleOf = (fn: { role?: unknown }) => logicalIdOf(fn.role as never);
const functionIds = () => [
  logicalIdOf(engine().apiFunction),
  logicalIdOf(engine().authorizerFunction),
  logicalIdOf(engine().reaperFunction),
  ...Object.values(engine().workerFunctions).map(logicalIdOf),
];

describe('synthesis', () => {
  it('synthesizes offline, without credentials, an environment-agnostic stack', () => {
    const artifact = assembly.getStackByName(STACK);
    expect(artifact.environment.account).toBe('unknown-account');
    expect(artifact.environment.region).toBe('unknown-region');
    expect(Object.keys(template.toJSON().Resources).length).toBeGreaterThan(30);
  });

  it('bundles every function with the local esbuild, never with Docker', () => {
    expect(dockerWasCalled(dockerMarker)).toBe(false);
    expect(dockerImageAssets(assembly, stack)).toBe(0);
    for (const id of functionIds()) {
      const bundle = bundleOf(assembly, stack, template, id);
      expect(statSync(bundle).size, id).toBeGreaterThan(200);
      const text = readFileSync(bundle, 'utf8');
      expect(text).toMatch(/handler/);
      expect(text).not.toMatch(/docker (run|build)/i);
      expect(statSync(`${bundle}.map`).size, `${id} source map`).toBeGreaterThan(0);
    }
  });

  it('bundles the workflows into the api, worker and reaper handlers', () => {
    for (const fn of [engine().apiFunction, engine().reaperFunction, engine().workerFunctions[DEFAULT_POOL]!]) {
      const text = readFileSync(bundleOf(assembly, stack, template, logicalIdOf(fn)), 'utf8');
      // The example workflows' names and a task id.
      expect(text).toContain('fulfil');
      expect(text).toContain('send-email');
    }
  });

  it('produces an api bundle that runs under Node and refuses a request without a key', () => {
    const bundle = bundleOf(assembly, stack, template, logicalIdOf(engine().apiFunction));
    const result = invokeBundle(
      bundle,
      { version: '2.0', rawPath: '/v1/workflows', headers: {}, requestContext: { http: { method: 'GET' } } },
      {
        [ENV.instancesTable]: 'i',
        [ENV.claimsTable]: 'c',
        [ENV.queuePrefix]: 'p',
        [ENV.apiKeySecret]: 's',
      },
    );
    expect(result.ok).toBe(true);
    expect(JSON.parse(result.output)).toMatchObject({ statusCode: 401 });
  });

  it('produces a UI bundle that serves the page and its script from the files copied beside it, and an api bundle without them', () => {
    const bundle = bundleOf(assembly, stack, template, logicalIdOf(engine().uiFunction!));
    const get = (rawPath: string) =>
      JSON.parse(
        invokeBundle(bundle, { version: '2.0', rawPath, headers: {}, requestContext: { http: { method: 'GET' } } }, {})
          .output,
      ) as { statusCode: number; body: string };
    const page = get('/ui');
    expect(page.statusCode).toBe(200);
    const script = /src="\/ui\/(app-[0-9a-f]{10}\.js)"/.exec(page.body)?.[1];
    expect(script).toBeDefined();
    const js = get(`/ui/${script}`);
    expect(js.statusCode).toBe(200);
    expect(js.body.length).toBeGreaterThan(10_000);
    const api = readFileSync(bundleOf(assembly, stack, template, logicalIdOf(engine().apiFunction)), 'utf8');
    expect(api).not.toContain('dagre');
    expect(api).not.toContain('content-security-policy');
  });

  it('produces a worker bundle that builds its deps from the environment and names a missing variable', () => {
    const bundle = bundleOf(assembly, stack, template, logicalIdOf(engine().workerFunctions[DEFAULT_POOL]!));
    const env = { [ENV.instancesTable]: 'i', [ENV.claimsTable]: 'c', [ENV.queuePrefix]: 'p', [ENV.pool]: 'default' };
    expect(invokeBundle(bundle, { Records: [] }, env)).toEqual({
      ok: true,
      output: JSON.stringify({ batchItemFailures: [] }),
    });
    const missing = invokeBundle(bundle, { Records: [] }, { ...env, [ENV.instancesTable]: '' });
    expect(missing.ok).toBe(false);
    expect(missing.output).toContain(ENV.instancesTable);
  });
});

describe('tables', () => {
  const cases = () => [
    { def: tables.instances, table: engine().tables.instances },
    { def: tables.claims, table: engine().tables.claims },
  ];

  it('have exactly the keys, attributes and indexes of shared/resources/tables.ts', () => {
    for (const { def, table } of cases()) {
      const expected = createTableInput(def, 'unused');
      const props = template.toJSON().Resources[logicalIdOf(table)].Properties;
      const byName = (a: { AttributeName?: string }, b: { AttributeName?: string }) =>
        (a.AttributeName ?? '').localeCompare(b.AttributeName ?? '');
      expect(props.KeySchema, def.id).toEqual(expected.KeySchema);
      expect([...props.AttributeDefinitions].sort(byName), def.id).toEqual(
        [...(expected.AttributeDefinitions ?? [])].sort(byName),
      );
      expect(props.GlobalSecondaryIndexes, def.id).toEqual(expected.GlobalSecondaryIndexes);
      expect(props.BillingMode, def.id).toBe(expected.BillingMode);
    }
  });

  it('give the instances table the sparse dead-letter index, keyed by pool shard and time, projecting all', () => {
    const props = template.toJSON().Resources[logicalIdOf(engine().tables.instances)].Properties;
    expect(props.GlobalSecondaryIndexes).toContainEqual({
      IndexName: 'byDeadLetterPool',
      KeySchema: [
        { AttributeName: 'dlpk', KeyType: 'HASH' },
        { AttributeName: 'dlsk', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    });
  });

  it('have point-in-time recovery, KMS encryption at rest and the TTL attribute', () => {
    for (const { def, table } of cases()) {
      template.hasResource('AWS::DynamoDB::Table', {
        Properties: Match.objectLike({
          KeySchema: createTableInput(def, 'unused').KeySchema,
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          // SSE on with no key: the AWS-managed KMS key aws/dynamodb.
          SSESpecification: { SSEEnabled: true },
          TimeToLiveSpecification: { AttributeName: def.timeToLiveAttribute, Enabled: true },
        }),
        DeletionPolicy: 'Retain',
      });
      expect(logicalIdOf(table)).toContain(def.id);
    }
    template.resourceCountIs('AWS::DynamoDB::Table', 2);
  });
});

describe('queues', () => {
  const pool = resolvePool({ name: DEFAULT_POOL });
  const prefix = STACK;

  it('are the pool FIFO queues and DLQ, named by CloudFormation (no fixed name) unless a prefix is given', () => {
    const queues = resourcesOf(template, 'AWS::SQS::Queue');
    expect(queues).toHaveLength(PRIORITIES.length + 1);
    // CDK leaves a FIFO queue's name to CloudFormation, which adds the .fifo suffix itself.
    for (const [, r] of queues) expect(r.Properties.QueueName).toBeUndefined();
    expect(prefix).toBe(STACK);
  });

  it('carry the shared FIFO, high-throughput, encryption and retention attributes', () => {
    const asTemplate = (attributes: Record<string, string>) => ({
      FifoQueue: attributes.FifoQueue === 'true',
      ContentBasedDeduplication: attributes.ContentBasedDeduplication === 'true',
      DeduplicationScope: attributes.DeduplicationScope,
      FifoThroughputLimit: attributes.FifoThroughputLimit,
      MessageRetentionPeriod: Number(attributes.MessageRetentionPeriod),
      SqsManagedSseEnabled: attributes.SqsManagedSseEnabled === 'true',
    });
    expect(asTemplate(dlqAttributes())).toMatchObject({
      FifoQueue: true,
      DeduplicationScope: 'messageGroup',
      FifoThroughputLimit: 'perMessageGroupId',
      SqsManagedSseEnabled: true,
    });
    for (const [id, queue] of resourcesOf(template, 'AWS::SQS::Queue')) {
      expect(queue.Properties, id).toMatchObject(asTemplate(dlqAttributes()));
    }
  });

  it('redrive each priority queue to the pool DLQ after maxReceiveCount, hiding messages 6x the worker timeout', () => {
    const dlq = logicalIdOf(engine().deadLetterQueues[DEFAULT_POOL]!);
    const worker = template.toJSON().Resources[logicalIdOf(engine().workerFunctions[DEFAULT_POOL]!)].Properties;
    const expected = queueAttributes({ name: DEFAULT_POOL, functionTimeoutSeconds: worker.Timeout }, 'arn');
    for (const priority of PRIORITIES) {
      const queue = engine().queues[DEFAULT_POOL]![priority];
      const props = template.toJSON().Resources[logicalIdOf(queue)].Properties;
      expect(props.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] },
        maxReceiveCount: pool.maxReceiveCount,
      });
      expect(props.VisibilityTimeout).toBe(Number(expected.VisibilityTimeout));
      expect(props.VisibilityTimeout).toBe(6 * worker.Timeout);
    }
    expect(template.toJSON().Resources[dlq].Properties.RedrivePolicy).toBeUndefined();
  });

  it('refuse requests not sent over TLS', () => {
    for (const [id] of resourcesOf(template, 'AWS::SQS::Queue')) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });
});

describe('functions', () => {
  it('run Node.js 22 on ARM64 with active tracing and their own log group with a retention', () => {
    const fns = resourcesOf(template, 'AWS::Lambda::Function');
    expect(fns).toHaveLength(5);
    for (const [id, fn] of fns) {
      expect(fn.Properties, id).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        Handler: 'index.handler',
      });
      const logGroup = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(template.toJSON().Resources[logGroup].Properties.RetentionInDays, id).toBe(30);
    }
  });

  it('get the environment variables their default deps read (functions/deps.ts ENV)', () => {
    const envOf = (fn: Parameters<typeof logicalIdOf>[0]) =>
      template.toJSON().Resources[logicalIdOf(fn)].Properties.Environment.Variables;
    const shared = [ENV.instancesTable, ENV.claimsTable, ENV.queueUrls];
    expect(Object.keys(envOf(engine().apiFunction))).toEqual(expect.arrayContaining([...shared, ENV.apiKeySecret]));
    expect(envOf(engine().apiFunction)[ENV.apiKeySecret]).toEqual({ Ref: logicalIdOf(engine().apiKeySecret) });
    const worker = envOf(engine().workerFunctions[DEFAULT_POOL]!);
    expect(Object.keys(worker)).toEqual(expect.arrayContaining([...shared, ENV.pool]));
    expect(worker[ENV.pool]).toBe(DEFAULT_POOL);
    expect(worker[ENV.queuePrefix]).toBeUndefined();
    const urls = JSON.stringify(worker[ENV.queueUrls]);
    for (const priority of PRIORITIES) {
      expect(urls).toContain(`\\"${priority}\\":`);
      expect(urls).toContain(`"Ref":"${logicalIdOf(engine().queues[DEFAULT_POOL]![priority])}"`);
    }
    expect(urls).toContain(`"Ref":"${logicalIdOf(engine().deadLetterQueues[DEFAULT_POOL]!)}"`);
    expect(worker[ENV.instancesTable]).toEqual({ Ref: logicalIdOf(engine().tables.instances) });
    expect(Object.keys(envOf(engine().reaperFunction))).toEqual(expect.arrayContaining(shared));
  });

  it('give the api function time for the longest ?wait= and no more than API Gateway waits', () => {
    const api = template.toJSON().Resources[logicalIdOf(engine().apiFunction)].Properties;
    expect(api.Timeout).toBeGreaterThan(MAX_WAIT_SECONDS);
    expect(api.Timeout).toBeLessThanOrEqual(30);
  });

  it('give the default worker 15 minutes and no claim timing variable (the worker keeps its defaults)', () => {
    const worker = template.toJSON().Resources[logicalIdOf(engine().workerFunctions[DEFAULT_POOL]!)].Properties;
    expect(worker.Timeout).toBe(900);
    for (const name of [ENV.reserveTtlMs, ENV.leaseMs, ENV.heartbeatMs]) {
      expect(worker.Environment.Variables, name).not.toHaveProperty(name);
    }
  });

  it('feed each worker from its pool queues with partial batch failures and a concurrency cap per priority', () => {
    const mappings = resourcesOf(template, 'AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(3);
    for (const [id, mapping] of mappings) {
      expect(mapping.Properties.FunctionResponseTypes, id).toEqual(['ReportBatchItemFailures']);
      const max = (mapping.Properties.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency;
      expect(max, id).toBeGreaterThanOrEqual(2);
    }
    const worker = logicalIdOf(engine().workerFunctions[DEFAULT_POOL]!);
    for (const [priority, max] of [
      ['high', 10],
      ['normal', 5],
      ['low', 2],
    ] as const) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: worker },
        EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(engine().queues[DEFAULT_POOL]![priority]), 'Arn'] },
        ScalingConfig: { MaximumConcurrency: max },
        BatchSize: 10,
      });
    }
  });

  it('wake the reaper with an EventBridge rate(1 minute) rule', () => {
    template.resourceCountIs('AWS::Events::Rule', 1);
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalIdOf(engine().reaperFunction), 'Arn'] } })],
    });
  });
});

describe('HTTP API', () => {
  it('routes ANY /v1/{proxy+} to the api function', () => {
    const routes = resourcesOf(template, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    expect(routes).toEqual([...API_ROUTE_PATHS.map((p) => `ANY ${p}`), ...UI_ROUTE_PATHS.map((p) => `GET ${p}`)]);
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [logicalIdOf(engine().apiFunction), 'Arn'] },
    });
  });

  it('authenticates every /v1 route through the x-api-key REQUEST authorizer', () => {
    const routes = resourcesOf(template, 'AWS::ApiGatewayV2::Route').filter(([, r]) =>
      String(r.Properties.RouteKey).includes(' /v1/'),
    );
    expect(routes.length).toBeGreaterThan(0);
    const [[authorizerId]] = resourcesOf(template, 'AWS::ApiGatewayV2::Authorizer') as [[string, unknown]];
    for (const [id, route] of routes) {
      expect(route.Properties.AuthorizationType, id).not.toBe('NONE');
      expect(route.Properties, id).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: authorizerId } });
    }
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      IdentitySource: [`$request.header.${API_KEY_HEADER}`],
      EnableSimpleResponses: true,
      AuthorizerUri: Match.objectLike({
        'Fn::Join': ['', Match.arrayWith([{ 'Fn::GetAtt': [logicalIdOf(engine().authorizerFunction), 'Arn'] }])],
      }),
    });
  });

  it('serves the web UI from a function of its own on public GET /ui routes, the api function untouched', () => {
    const ui = resourcesOf(template, 'AWS::ApiGatewayV2::Route').filter(([, r]) =>
      String(r.Properties.RouteKey).startsWith('GET /ui'),
    );
    expect(ui.map(([, r]) => r.Properties.RouteKey)).toEqual(UI_ROUTE_PATHS.map((p) => `GET ${p}`));
    for (const [id, route] of ui) expect(route.Properties.AuthorizationType, id).toBe('NONE');
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationUri: { 'Fn::GetAtt': [logicalIdOf(engine().uiFunction!), 'Arn'] },
    });
  });

  it('logs access on an auto-deployed $default stage', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
    });
  });

  it('throttles the stage by default, so a runaway client is answered 429 by API Gateway', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: {
        ThrottlingRateLimit: API_THROTTLE_DEFAULTS.rateLimit,
        ThrottlingBurstLimit: API_THROTTLE_DEFAULTS.burstLimit,
      },
    });
  });

  it('generates an API key that the api reads as exactly one key', () => {
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: Match.absent(),
      GenerateSecretString: {
        PasswordLength: 48,
        ExcludePunctuation: true,
        IncludeSpace: false,
        RequireEachIncludedType: true,
      },
    });
    // What the generator can produce: letters and digits with each kind present.
    const alnum = fc
      .array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'), {
        minLength: 45,
        maxLength: 45,
      })
      .map((chars) => chars.join(''));
    fc.assert(
      fc.property(alnum, fc.nat(2), (body, at) => {
        const kinds = ['a', 'B', '7'];
        const key = [...kinds.slice(0, at), body, ...kinds.slice(at)].join('');
        expect(parseApiKeys(key, 'secret').map((k) => k.key)).toEqual([key]);
      }),
    );
  });

  it('outputs the API URL, the API key secret and the table names', () => {
    const outputs = template.toJSON().Outputs;
    expect(Object.keys(outputs).sort()).toEqual(
      ['ApiKeySecretArn', 'ApiKeySecretName', 'ApiUrl', 'ClaimsTableName', 'InstancesTableName', 'UiUrl'].sort(),
    );
    expect(outputs.InstancesTableName.Value).toEqual({ Ref: logicalIdOf(engine().tables.instances) });
    expect(JSON.stringify(outputs.ApiUrl.Value)).toContain(logicalIdOf(engine().httpApi));
  });
});

describe('alarms', () => {
  it('fire when a pool has a new dead letter or a queue oldest message is too old', () => {
    const alarms = resourcesOf(template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const dead = alarms.filter((a) => a.MetricName === 'DeadLetters');
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      Namespace: 'Sayiir',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'pool', Value: DEFAULT_POOL }],
    });
    const age = alarms.filter((a) => a.MetricName === 'ApproximateAgeOfOldestMessage');
    expect(age).toHaveLength(3);
    for (const a of age) expect(a).toMatchObject({ Threshold: 900, ComparisonOperator: 'GreaterThanThreshold' });
  });
});

/**
 * Least privilege in this design: a function may touch only the resources
 * its handler's code path uses, with the grant helpers' action sets (each
 * queue grant includes sqs:GetQueueUrl on that queue: the adapters look
 * queue URLs up by name).
 * - api: both tables (it revokes claims on cancel), send to the priority
 *   queues, consume (receive, delete, change visibility) every DLQ to list
 *   and redrive it, read the API key secret. Never receive from a priority
 *   queue, never send to a DLQ.
 * - worker of pool P: both tables, send to every priority queue, receive
 *   only from P's queues, send only to P's DLQ (retries ran out), read only
 *   P's task secrets. Never receive from a DLQ.
 * - reaper: both tables, send to every priority queue. No DLQ, no secret.
 * - authorizer: its logs and traces only.
 * - nobody: actions `*`/`svc:*`, AWS managed policies.
 */
describe('least privilege', () => {
  const statementsOf = (fn: { role?: unknown }) => roleStatements(template, roleOf(fn));

  it('grants no action * or service:* and no managed policy', () => {
    const statements = allIdentityStatements(template);
    expect(statements.length).toBeGreaterThan(10);
    for (const s of statements) {
      for (const action of s.actions) expect(action).not.toMatch(/^(\*|[a-z0-9-]+:\*)$/);
    }
    for (const [id, role] of resourcesOf(template, 'AWS::IAM::Role')) {
      expect(role.Properties.ManagedPolicyArns, id).toBeUndefined();
    }
  });

  it('uses the resource "*" only for X-Ray, which has no resource-level permission', () => {
    for (const s of allIdentityStatements(template).filter((x) => x.resources.includes('*'))) {
      for (const action of s.actions) expect(action).toMatch(/^xray:/);
    }
  });

  it('lets only the api function read the API key secret', () => {
    const secret = logicalIdOf(engine().apiKeySecret);
    expect(allows(statementsOf(engine().apiFunction), 'secretsmanager:GetSecretValue', secret)).toBe(true);
    for (const [roleId] of resourcesOf(template, 'AWS::IAM::Role')) {
      if (roleId === roleOf(engine().apiFunction)) continue;
      expect(allows(roleStatements(template, roleId), 'secretsmanager:GetSecretValue', secret), roleId).toBe(false);
    }
  });

  it('gives the api both tables (it revokes claims on cancel) and keeps it off receiving from priority queues', () => {
    const api = statementsOf(engine().apiFunction);
    const claims = logicalIdOf(engine().tables.claims);
    expect(allows(api, 'dynamodb:PutItem', logicalIdOf(engine().tables.instances))).toBe(true);
    for (const action of ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']) {
      expect(allows(api, action, claims), action).toBe(true);
    }
    for (const priority of PRIORITIES) {
      const queue = logicalIdOf(engine().queues[DEFAULT_POOL]![priority]);
      expect(allows(api, 'sqs:SendMessage', queue)).toBe(true);
      expect(allows(api, 'sqs:ReceiveMessage', queue)).toBe(false);
      expect(allows(api, 'sqs:DeleteMessage', queue)).toBe(false);
    }
  });

  it('gives the worker and the reaper both tables; only the worker receives', () => {
    const worker = statementsOf(engine().workerFunctions[DEFAULT_POOL]!);
    const reaper = statementsOf(engine().reaperFunction);
    for (const table of [engine().tables.instances, engine().tables.claims]) {
      for (const statements of [worker, reaper]) {
        expect(allows(statements, 'dynamodb:UpdateItem', logicalIdOf(table))).toBe(true);
        expect(allows(statements, 'dynamodb:Query', logicalIdOf(table))).toBe(true);
      }
    }
    for (const priority of PRIORITIES) {
      const queue = logicalIdOf(engine().queues[DEFAULT_POOL]![priority]);
      expect(allows(worker, 'sqs:ReceiveMessage', queue)).toBe(true);
      expect(allows(reaper, 'sqs:SendMessage', queue)).toBe(true);
      expect(allows(reaper, 'sqs:ReceiveMessage', queue)).toBe(false);
    }
  });

  it('lets the reaper drain the DLQ, and no one else touch it (no one sends to it: only SQS moves messages there)', () => {
    const dlq = logicalIdOf(engine().deadLetterQueues[DEFAULT_POOL]!);
    const consume = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'];
    const allowed: Record<string, readonly string[]> = {
      [roleOf(engine().reaperFunction)]: [...consume, 'sqs:GetQueueUrl'],
    };
    const roles = resourcesOf(template, 'AWS::IAM::Role').map(([id]) => id);
    for (const role of Object.keys(allowed)) expect(roles).toContain(role);
    for (const roleId of roles) {
      const statements = roleStatements(template, roleId);
      for (const action of ['sqs:SendMessage', ...consume, 'sqs:GetQueueUrl', 'sqs:PurgeQueue']) {
        expect(allows(statements, action, dlq), `${roleId} ${action}`).toBe(allowed[roleId]?.includes(action) ?? false);
      }
    }
  });

  it('leaves the UI function nothing but its logs and traces', () => {
    const actions = statementsOf(engine().uiFunction!).flatMap((s) => s.actions);
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) expect(action).toMatch(/^(logs:(CreateLogStream|PutLogEvents)|xray:.*)$/);
  });

  it('leaves the authorizer nothing but its logs and traces', () => {
    const actions = statementsOf(engine().authorizerFunction).flatMap((s) => s.actions);
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) expect(action).toMatch(/^(logs:(CreateLogStream|PutLogEvents)|xray:.*)$/);
  });
});

describe('cdk-nag', () => {
  it('reports no AwsSolutions error: each finding is fixed or suppressed with a reason', () => {
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${String(e.entry.data).split('\n')[0]}`)).toEqual([]);
  });

  it('would report an unsuppressed finding (negative control: a bare secret)', () => {
    const control = new Stack(new App(), 'NagControl');
    new Secret(control, 'Bare');
    Aspects.of(control).add(new AwsSolutionsChecks());
    const errors = Annotations.fromStack(control).findError('*', Match.stringLikeRegexp('AwsSolutions-SMG4.*'));
    expect(errors).toHaveLength(1);
  });

  it('records a written reason with each suppression', () => {
    const metadata = template.toJSON().Resources[logicalIdOf(engine().apiKeySecret)].Metadata;
    const rules = metadata.cdk_nag.rules_to_suppress as { id: string; reason: string }[];
    expect(rules.map((r) => r.id)).toContain('AwsSolutions-SMG4');
    for (const rule of rules) expect(rule.reason.length).toBeGreaterThan(40);
  });
});
