import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryDeadLetters } from '../../../shared/adapters/memory/dead-letters.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { makeApi } from '../../../shared/api/api.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets, TerminalError, task } from '../../../shared/index.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch, type WorkerDeps } from '../../../shared/runtime/worker.ts';

const KEY = 'test-key';
let healthy = false;
const pay = flow<{ amount: number }>('pay')
  .then(
    task('charge', ({ amount }: { amount: number }) => {
      if (!healthy) throw new TerminalError(`declined: ${amount}`);
      return { paid: amount };
    }),
  )
  .build();

let store: MemoryInstanceStore;
let queue: MemoryTaskQueue;
let dlq: MemoryDeadLetters;
let clock: FakeClock;
let worker: WorkerDeps;
let api: ReturnType<typeof makeApi>;

function call(method: string, path: string, body?: unknown) {
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    isBase64Encoded: false,
    requestContext: { http: { method, path }, stage: '$default' },
  } as unknown as APIGatewayProxyEventV2;
  return api(event).then((r) => ({ status: r.statusCode, json: r.body ? JSON.parse(r.body) : null }));
}

beforeEach(() => {
  healthy = false;
  store = new MemoryInstanceStore();
  queue = new MemoryTaskQueue();
  clock = new FakeClock(1_000_000);
  dlq = new MemoryDeadLetters(() => clock.now());
  const registry = new WorkflowRegistry([pay]);
  const secrets = new MemorySecrets({ 'sayiir/api-keys': JSON.stringify([KEY]) });
  const claims = new MemoryClaimStore();
  api = makeApi({ store, queue, registry, secrets, clock, claims, deadLetters: dlq });
  worker = { store, claims, queue, registry, clock, secrets, pool: 'default', workerId: 'w', deadLetters: dlq };
});

async function failRun(id: string): Promise<Dispatch> {
  const started = await startInstance(store, pay, { amount: 7 }, { instanceId: id, now: clock.now() });
  const d = started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []))[0] as Dispatch;
  await processDispatch(worker, d, () => 900_000);
  return d;
}

describe('DLQ routes', () => {
  it('lists a dead task with its reason, attempts, input and attempt history, without consuming it', async () => {
    await failRun('r1');
    const listed = await call('GET', '/v1/dlq/default');
    expect(listed.status).toBe(200);
    expect(listed.json.items).toEqual([
      expect.objectContaining({
        origin: 'engine',
        instanceId: 'r1',
        taskKey: 'charge',
        attempts: 1,
        reason: 'TerminalError: declined: 7',
        input: { amount: 7 },
        attemptHistory: [
          expect.objectContaining({
            attempt: 1,
            worker: 'w',
            error: { name: 'TerminalError', message: 'declined: 7' },
          }),
        ],
      }),
    ]);
    expect(dlq.size('default')).toBe(1);
    expect((await call('GET', '/v1/dlq/default')).json.items).toHaveLength(1);
  });

  it('redrives all: retried with a fresh budget, removed from the DLQ', async () => {
    await failRun('r1');
    await failRun('r2');
    healthy = true;
    const r = await call('POST', '/v1/dlq/default/redrive');
    expect(r.json.redriven).toHaveLength(2);
    expect(dlq.size('default')).toBe(0);
    for (const d of queue.sent) await processDispatch(worker, d, () => 900_000);
    expect((await store.get('r1'))?.status).toBe('COMPLETED');
    expect((await store.get('r2'))?.status).toBe('COMPLETED');
  });

  it('redrives one by instance and task; 404 when nothing matches', async () => {
    await failRun('r1');
    await failRun('r2');
    expect((await call('POST', '/v1/dlq/default/redrive', { instanceId: 'zzz' })).status).toBe(404);
    const r = await call('POST', '/v1/dlq/default/redrive', { instanceId: 'r2', taskKey: 'charge' });
    expect(r.json.redriven).toEqual([{ instanceId: 'r2', taskKey: 'charge' }]);
    expect(dlq.size('default')).toBe(1);
    expect((await store.get('r2'))?.status).toBe('RUNNING');
    expect((await store.get('r1'))?.status).toBe('FAILED');
  });

  it('redrives a dispatch the queue moved after too many receives: sent again at once', async () => {
    const started = await startInstance(store, pay, { amount: 1 }, { instanceId: 'm1', now: clock.now() });
    const d = started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []))[0] as Dispatch;
    dlq.moved(d, 5);
    const r = await call('POST', '/v1/dlq/default/redrive');
    expect(r.json.redriven).toEqual([{ instanceId: 'm1', taskKey: 'charge' }]);
    expect(queue.sent).toEqual([expect.objectContaining({ key: 'charge', attempt: 1, gen: d.gen + 1 })]);
  });

  it('a stale dead letter (its run was retried since) is removed and reported as skipped', async () => {
    await failRun('r1');
    healthy = true;
    expect((await call('POST', '/v1/instances/r1/tasks/charge/retry')).status).toBe(200);
    const r = await call('POST', '/v1/dlq/default/redrive');
    expect(r.json.redriven).toEqual([]);
    expect(r.json.skipped).toEqual([expect.objectContaining({ instanceId: 'r1', taskKey: 'charge' })]);
    expect(dlq.size('default')).toBe(0);
  });
});
