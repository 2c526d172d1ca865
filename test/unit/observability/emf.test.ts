import type { Context, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../../functions/worker/handler.ts';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { encodeDispatch } from '../../../shared/adapters/sqs/message.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets, task } from '../../../shared/index.ts';
import { emfMetrics } from '../../../shared/observability/emf.ts';
import { silentLog } from '../../../shared/observability/log.ts';
import { observedStore } from '../../../shared/observability/observer.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { captureStdout } from '../../support/stdout.ts';

const clock = new FakeClock(1_700_000_000_000);
/** Each task takes 120 ms of the fake clock: durations are exact. */
const step = (name: string) =>
  task(name, (n: number) => {
    clock.advance(120);
    return n + 1;
  });
const twoSteps = flow<number>('emf-flow').then(step('one')).then(step('two')).build();

interface Emf {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[];
  };
  [key: string]: unknown;
}

const context = {
  awsRequestId: 'req-emf-1',
  getRemainingTimeInMillis: () => 900_000,
} as unknown as Context;

describe('EMF output of a worker invocation', () => {
  const stdout = captureStdout();

  it('publishes the task and run metrics in namespace Sayiir, by workflow and pool, never by instance', async () => {
    const metrics = emfMetrics();
    const telemetry = { log: silentLog, metrics };
    const store = observedStore(new MemoryInstanceStore(), telemetry);
    const started = await startInstance(store, twoSteps, 1, { instanceId: 'emf-i1', now: clock.now() });
    const first = started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []))[0] as Dispatch;
    const handler = makeHandler({
      store,
      claims: new MemoryClaimStore(),
      queue: new MemoryTaskQueue(),
      registry: new WorkflowRegistry([twoSteps]),
      clock,
      secrets: new MemorySecrets(),
      pool: 'default',
      workerId: 'w-emf',
      telemetry,
    });
    const event: SQSEvent = {
      Records: [
        {
          messageId: 'm-1',
          receiptHandle: 'r-1',
          body: encodeDispatch(first),
          // Sent 300 ms before the worker took it.
          attributes: { SentTimestamp: String(clock.now() - 300) } as SQSEvent['Records'][number]['attributes'],
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:q.fifo',
          awsRegion: 'eu-west-1',
        },
      ],
    };
    const result = await handler(event, context);
    expect(result).toEqual({ batchItemFailures: [] });

    const blobs = stdout()
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Emf);
    const bySet = new Map(blobs.map((b) => [JSON.stringify(b._aws.CloudWatchMetrics[0]?.Dimensions), b]));
    expect([...bySet.keys()].sort()).toEqual(['[["pool"]]', '[["workflow","pool"]]', '[["workflow"]]']);
    for (const b of blobs) {
      expect(b._aws.CloudWatchMetrics[0]?.Namespace).toBe('Sayiir');
      expect(b).not.toHaveProperty('service');
      expect(JSON.stringify(b)).not.toContain('emf-i1');
    }
    const units = (b: Emf) =>
      Object.fromEntries(b._aws.CloudWatchMetrics[0]?.Metrics.map((m) => [m.Name, m.Unit]) ?? []);

    const tasks = bySet.get('[["workflow","pool"]]') as Emf;
    expect(tasks).toMatchObject({ workflow: 'emf-flow', pool: 'default' });
    expect(units(tasks)).toEqual({
      TasksCompleted: 'Count',
      TaskDuration: 'Milliseconds',
      StepLatency: 'Milliseconds',
      QueueWait: 'Milliseconds',
    });
    // Two tasks (the second ran inline): one count of 2, two durations of 120 ms, one queue wait of 300 ms.
    expect(tasks.TasksCompleted).toBe(2);
    expect(tasks.TaskDuration).toEqual([120, 120]);
    expect(tasks.QueueWait).toBe(300);

    const runs = bySet.get('[["workflow"]]') as Emf;
    expect(runs).toMatchObject({ workflow: 'emf-flow', RunsStarted: 1, RunsCompleted: 1, RunDuration: 240 });
    expect(units(runs)).toMatchObject({ RunsStarted: 'Count', RunsCompleted: 'Count', RunDuration: 'Milliseconds' });

    const pool = bySet.get('[["pool"]]') as Emf;
    expect(pool).toMatchObject({ pool: 'default' });
    expect(units(pool)).toEqual({ TasksInFlight: 'Count', WorkerUtilization: 'Percent' });
    expect(pool.TasksInFlight).toEqual([1, 0]);
  });

  it('writes nothing when nothing was measured', () => {
    emfMetrics().flush();
    expect(stdout().filter((l) => l.includes('"_aws"'))).toEqual([]);
  });
});
