import { SQSClient } from '@aws-sdk/client-sqs';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { SDK_HTTP } from '../../functions/deps.ts';
import { REAPER_SILENCE } from '../../infra/alarms.ts';
import { EXAMPLE_WORKFLOWS_ENTRY } from '../../infra/entries.ts';
import { EngineConfigError } from '../../infra/pools.ts';
import { SayiirEngine, type SayiirEngineProps } from '../../infra/sayiir-engine.ts';
import { SDK_DEFAULTS } from '../../shared/runtime/defaults.ts';
import { logicalIdOf, resourcesOf } from './support/cdk.ts';

/** The construct with two pools, without bundling (these tests read the template only). */
function synth(props: Partial<SayiirEngineProps> = {}, more?: (stack: Stack, engine: SayiirEngine) => void) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'ObsTest');
  const engine = new SayiirEngine(stack, 'Engine', {
    workflowsEntry: EXAMPLE_WORKFLOWS_ENTRY,
    queuePrefix: 'obs',
    pools: [{ name: 'default' }, { name: 'gpu' }],
    ...props,
  });
  more?.(stack, engine);
  return { stack, engine, template: Template.fromStack(stack) };
}

const { engine, template } = synth();
const functions = () => [
  engine.apiFunction,
  engine.authorizerFunction,
  engine.reaperFunction,
  ...(engine.uiFunction ? [engine.uiFunction] : []),
  ...Object.values(engine.workerFunctions),
];
const alarmsOn = (metricName: string) =>
  resourcesOf(template, 'AWS::CloudWatch::Alarm').filter(([, a]) => a.Properties.MetricName === metricName);
const functionOf = (alarm: { Properties: Record<string, unknown> }) =>
  JSON.stringify(
    (alarm.Properties.Dimensions as { Name: string; Value: unknown }[]).find((d) => d.Name === 'FunctionName')?.Value,
  );

describe('logs of the functions', () => {
  it("sets Lambda's JSON log format and the log level on every function, and LOG_LEVEL for Powertools", () => {
    const lambdas = resourcesOf(template, 'AWS::Lambda::Function');
    expect(lambdas).toHaveLength(functions().length);
    expect(functions()).toHaveLength(6);
    for (const [, fn] of lambdas) {
      expect(fn.Properties.LoggingConfig).toMatchObject({
        LogFormat: 'JSON',
        ApplicationLogLevel: 'INFO',
        SystemLogLevel: 'INFO',
      });
      expect(fn.Properties.Environment).toMatchObject({ Variables: { LOG_LEVEL: 'INFO' } });
      expect(JSON.stringify(fn.Properties.Environment)).not.toContain('OTEL_EXPORTER_OTLP_ENDPOINT');
    }
  });

  it('takes the level from the props', () => {
    const { template: debug } = synth({ logLevel: 'DEBUG' });
    for (const [, fn] of resourcesOf(debug, 'AWS::Lambda::Function')) {
      expect(fn.Properties.LoggingConfig).toMatchObject({ ApplicationLogLevel: 'DEBUG' });
      expect(fn.Properties.Environment).toMatchObject({ Variables: { LOG_LEVEL: 'DEBUG' } });
    }
  });
});

describe('alarms', () => {
  it('alarm on the errors and the throttles of each function, at the first one', () => {
    for (const name of ['Errors', 'Throttles']) {
      const alarms = alarmsOn(name);
      expect(alarms).toHaveLength(functions().length);
      expect(new Set(alarms.map(([, a]) => functionOf(a)))).toEqual(
        new Set(functions().map((fn) => JSON.stringify({ Ref: logicalIdOf(fn) }))),
      );
      for (const [, a] of alarms) {
        expect(a.Properties).toMatchObject({
          Namespace: 'AWS/Lambda',
          Statistic: 'Sum',
          ComparisonOperator: 'GreaterThanThreshold',
          Threshold: 0,
          TreatMissingData: 'notBreaching',
        });
      }
    }
  });

  it('alarm when the reaper has not run for five minutes, missing data included', () => {
    const [reaper, ...more] = alarmsOn('Invocations');
    expect(more).toHaveLength(0);
    expect(reaper?.[1].Properties).toMatchObject({
      Namespace: 'AWS/Lambda',
      Statistic: 'Sum',
      Period: REAPER_SILENCE.toSeconds(),
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf(engine.reaperFunction) } }],
    });
  });

  it('keep the queue alarms (a new dead letter per pool, oldest message age)', () => {
    expect(alarmsOn('DeadLetters')).toHaveLength(2);
    expect(alarmsOn('ApproximateNumberOfMessagesVisible')).toHaveLength(0);
    expect(alarmsOn('ApproximateAgeOfOldestMessage')).toHaveLength(6);
  });
});

describe('the dashboard', () => {
  it('shows runs, tasks and latencies from EMF (SEARCH by workflow and pool), queues and functions', () => {
    const dashboards = resourcesOf(template, 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]?.[1].Properties.DashboardBody);
    for (const search of [
      `SEARCH('{Sayiir,workflow,pool} MetricName=\\\\\\"TasksCompleted\\\\\\"', 'Sum', 60)`,
      `SEARCH('{Sayiir,workflow,pool} MetricName=\\\\\\"TaskDuration\\\\\\"', 'p99', 60)`,
      `SEARCH('{Sayiir,workflow} MetricName=\\\\\\"RunsFailed\\\\\\"', 'Sum', 60)`,
      `SEARCH('{Sayiir,workflow} MetricName=\\\\\\"RunDuration\\\\\\"', 'p90', 60)`,
    ]) {
      expect(body).toContain(search);
    }
    for (const metric of [
      'ApproximateNumberOfMessagesVisible',
      'ApproximateAgeOfOldestMessage',
      'Throttles',
      'Duration',
    ]) {
      expect(body).toContain(metric);
    }
  });

  it('is opt-out', () => {
    const { engine: none, template: plain } = synth({ dashboard: false });
    expect(resourcesOf(plain, 'AWS::CloudWatch::Dashboard')).toHaveLength(0);
    expect(none.dashboard).toBeUndefined();
  });
});

describe('metric helpers', () => {
  it('name the SQS metrics of a pool and priority, and the EMF metrics by workflow and pool', () => {
    const age = engine.metricQueueAge('gpu', 'high');
    expect(age).toMatchObject({
      namespace: 'AWS/SQS',
      metricName: 'ApproximateAgeOfOldestMessage',
      statistic: 'Maximum',
    });
    expect(engine.metricQueueDepth('gpu', 'low').metricName).toBe('ApproximateNumberOfMessagesVisible');
    expect(engine.metricDeadLetters('default')).toMatchObject({
      namespace: 'Sayiir',
      metricName: 'DeadLetters',
      dimensions: { pool: 'default' },
      statistic: 'Sum',
    });
    expect(engine.metricDeadLetterQueueDepth('default').metricName).toBe('ApproximateNumberOfMessagesVisible');
    expect(engine.metricTaskFailures('orders', 'gpu')).toMatchObject({
      namespace: 'Sayiir',
      metricName: 'TasksFailed',
      dimensions: { workflow: 'orders', pool: 'gpu' },
      statistic: 'Sum',
    });
    expect(engine.metricRunDuration('orders')).toMatchObject({
      namespace: 'Sayiir',
      metricName: 'RunDuration',
      dimensions: { workflow: 'orders' },
      statistic: 'p90',
    });
    expect(() => engine.metricQueueAge('nope', 'high')).toThrow(EngineConfigError);
    expect(() => engine.metricDeadLetters('nope')).toThrow(EngineConfigError);
  });

  it('make alarms on the right queue', () => {
    let gpuHigh = '';
    const { template: t } = synth({}, (stack, e) => {
      e.metricQueueAge('gpu', 'high').createAlarm(stack, 'GpuHighAge', { threshold: 60, evaluationPeriods: 1 });
      gpuHigh = logicalIdOf(e.queues.gpu?.high as never);
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: 60,
      Dimensions: [{ Name: 'QueueName', Value: Match.objectLike({ 'Fn::GetAtt': [gpuHigh, 'QueueName'] }) }],
    });
  });
});

describe('trace export', () => {
  it('is off by default, and given an endpoint, set on the api, workers and reaper (not the authorizer)', () => {
    const { engine: traced, template: t } = synth({ otlpEndpoint: 'http://collector.internal:4318' });
    const env = (fn: { node: unknown }) =>
      resourcesOf(t, 'AWS::Lambda::Function').find(([id]) => id === logicalIdOf(fn as never))?.[1].Properties
        .Environment;
    for (const fn of [traced.apiFunction, traced.reaperFunction, ...Object.values(traced.workerFunctions)]) {
      expect(env(fn)).toMatchObject({ Variables: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector.internal:4318' } });
    }
    expect(JSON.stringify(env(traced.authorizerFunction))).not.toContain('OTEL_EXPORTER_OTLP_ENDPOINT');
  });
});

describe('SDK clients of the functions', () => {
  it('fail a call that cannot connect or gets no answer within seconds, instead of at the function timeout', async () => {
    const client = new SQSClient({ ...SDK_HTTP, region: 'eu-west-1' });
    const handler = client.config.requestHandler as unknown as { configProvider: Promise<Record<string, unknown>> };
    expect(await handler.configProvider).toMatchObject({
      connectionTimeout: SDK_DEFAULTS.connectionTimeoutMs,
      requestTimeout: SDK_DEFAULTS.requestTimeoutMs,
      throwOnRequestTimeout: true,
    });
    expect(SDK_DEFAULTS.requestTimeoutMs).toBeLessThan(30_000);
  });
});
