import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/deps.ts';
import { EXAMPLE_WORKFLOWS_ENTRY } from '../../infra/entries.ts';
import { SayiirEngine, type SayiirEngineProps } from '../../infra/sayiir-engine.ts';
import { logicalIdOf, resourcesOf, roleStatements } from './support/cdk.ts';

/** Engines in one stack, without bundling (these tests read the template only). */
function stackWith(...engines: Partial<SayiirEngineProps>[]) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Shop');
  const built = engines.map(
    (props, i) => new SayiirEngine(stack, `Engine${i}`, { workflowsEntry: EXAMPLE_WORKFLOWS_ENTRY, ...props }),
  );
  return { stack, engines: built, template: () => Template.fromStack(stack) };
}

describe('two engines in one stack', () => {
  let template: Template;
  let engines: SayiirEngine[];

  beforeAll(() => {
    const s = stackWith({}, {});
    engines = s.engines;
    template = s.template();
  });

  it('name no queue and no secret, so nothing collides in the account and region', () => {
    expect(resourcesOf(template, 'AWS::SQS::Queue')).toHaveLength(8);
    for (const [, r] of resourcesOf(template, 'AWS::SQS::Queue')) expect(r.Properties.QueueName).toBeUndefined();
    for (const [, r] of resourcesOf(template, 'AWS::SecretsManager::Secret')) expect(r.Properties.Name).toBeUndefined();
  });

  it("give each engine's functions the URLs of that engine's queues only", () => {
    const envOf = (e: SayiirEngine) =>
      JSON.stringify(template.toJSON().Resources[logicalIdOf(e.workerFunctions.default!)].Properties.Environment);
    const [a, b] = engines as [SayiirEngine, SayiirEngine];
    expect(envOf(a)).toContain(logicalIdOf(a.queues.default!.high));
    expect(envOf(a)).not.toContain(logicalIdOf(b.queues.default!.high));
    expect(envOf(b)).toContain(logicalIdOf(b.deadLetterQueues.default!));
    expect(envOf(a)).toContain(ENV.queueUrls);
  });
});

describe('queuePrefix', () => {
  it('names the queues and the secret when given', () => {
    const template = stackWith({ queuePrefix: 'shop' }).template();
    const names = resourcesOf(template, 'AWS::SQS::Queue').map(([, r]) => r.Properties.QueueName);
    expect(names.sort()).toEqual(
      ['shop-default-dlq.fifo', 'shop-default-high.fifo', 'shop-default-low.fifo', 'shop-default-normal.fifo'].sort(),
    );
    template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'shop/api-keys' });
  });
});

describe('removalPolicy', () => {
  const policies = (template: Template, type: string) =>
    resourcesOf(template, type).map(([id]) => template.toJSON().Resources[id].DeletionPolicy as string | undefined);

  it('retains the DLQs and the API key secret by default, and deletes the priority queues', () => {
    const { engines, template: t } = stackWith({});
    const template = t();
    const dlq = logicalIdOf(engines[0]!.deadLetterQueues.default!);
    expect(template.toJSON().Resources[dlq].DeletionPolicy).toBe('Retain');
    expect(policies(template, 'AWS::SecretsManager::Secret')).toEqual(['Retain']);
    const high = logicalIdOf(engines[0]!.queues.default!.high);
    expect(template.toJSON().Resources[high].DeletionPolicy).toBe('Delete');
  });

  it('deletes the DLQs and the secret with DESTROY', () => {
    const { engines, template: t } = stackWith({ removalPolicy: RemovalPolicy.DESTROY });
    const template = t();
    expect(template.toJSON().Resources[logicalIdOf(engines[0]!.deadLetterQueues.default!)].DeletionPolicy).toBe(
      'Delete',
    );
    expect(policies(template, 'AWS::SecretsManager::Secret')).toEqual(['Delete']);
  });
});

describe('grants to a user principal', () => {
  it('grantStartWorkflows and grantRead give read access to the API key secret, and nothing else', () => {
    const { stack, engines, template: t } = stackWith({});
    const engine = engines[0]!;
    const starter = new Role(stack, 'Starter', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const reader = new Role(stack, 'Reader', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    engine.grantStartWorkflows(starter);
    engine.grantRead(reader);
    const template = t();
    for (const role of [starter, reader]) {
      const statements = roleStatements(template, logicalIdOf(role));
      expect(statements.flatMap((s) => s.actions).sort()).toEqual([
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
      ]);
      expect(statements.flatMap((s) => s.resources)).toEqual([{ Ref: logicalIdOf(engine.apiKeySecret) }]);
    }
  });

  it('clientEnvironment names the API URL and the key secret ARN', () => {
    const { stack, engines } = stackWith({});
    const env = stack.resolve(engines[0]!.clientEnvironment());
    expect(Object.keys(env).sort()).toEqual(['SAYIIR_API_KEY_SECRET', 'SAYIIR_URL']);
    expect(env.SAYIIR_API_KEY_SECRET).toEqual({ Ref: logicalIdOf(engines[0]!.apiKeySecret) });
  });
});
