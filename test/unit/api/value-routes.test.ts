import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { makeApi } from '../../../shared/api/api.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets, TerminalError, task } from '../../../shared/index.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch, type WorkerDeps } from '../../../shared/runtime/worker.ts';

const KEY = 'test-key';
let healthy = true;
const pay = flow<{ amount: number }>('pay')
  .then('quote', ({ amount }: { amount: number }) => ({ amount, fee: 1 }))
  .then(
    task('charge', ({ amount, fee }: { amount: number; fee: number }) => {
      if (!healthy) throw new TerminalError('declined');
      return { paid: amount + fee };
    }),
  )
  .build();

let store: MemoryInstanceStore;
let queue: MemoryTaskQueue;
let worker: WorkerDeps;
let api: ReturnType<typeof makeApi>;

function get(path: string) {
  const event = {
    version: '2.0',
    rawPath: path,
    headers: { 'x-api-key': KEY },
    requestContext: { http: { method: 'GET', path }, stage: '$default' },
  } as unknown as APIGatewayProxyEventV2;
  return api(event).then((r) => ({ status: r.statusCode, json: r.body ? JSON.parse(r.body) : null }));
}

/** Runs dispatched tasks until none is left. */
async function drain(): Promise<void> {
  for (let d = queue.sent.shift(); d; d = queue.sent.shift())
    await processDispatch(worker, d as Dispatch, () => 900_000);
}

beforeEach(() => {
  healthy = true;
  store = new MemoryInstanceStore();
  queue = new MemoryTaskQueue();
  const clock = new FakeClock(1_000_000);
  const registry = new WorkflowRegistry([pay]);
  const secrets = new MemorySecrets({ 'sayiir/api-keys': JSON.stringify([KEY]) });
  const claims = new MemoryClaimStore();
  api = makeApi({ store, queue, registry, secrets, clock, claims });
  worker = { store, claims, queue, registry, clock, secrets, pool: 'default', workerId: 'w', inline: false };
});

async function run(id: string) {
  const started = await startInstance(store, pay, { amount: 7 }, { instanceId: id, now: 1_000_000 });
  await queue.send(started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])));
  await drain();
}

describe("a run's values, read on demand", () => {
  it("answers the run's input", async () => {
    await run('r1');
    expect(await get('/v1/instances/r1/input')).toEqual({
      status: 200,
      json: { instanceId: 'r1', input: { amount: 7 } },
    });
  });

  it("answers a completed task's output, from beside the journal entry that completed it", async () => {
    await run('r1');
    const quote = await get('/v1/instances/r1/tasks/quote');
    expect(quote).toEqual({ status: 200, json: { instanceId: 'r1', taskKey: 'quote', output: { amount: 7, fee: 1 } } });
    expect((await get('/v1/instances/r1/tasks/charge')).json.output).toEqual({ paid: 8 });
  });

  it("answers a failed task's input and state, with no output", async () => {
    healthy = false;
    await run('r2');
    const charge = await get('/v1/instances/r2/tasks/charge');
    expect(charge).toEqual({
      status: 200,
      json: { instanceId: 'r2', taskKey: 'charge', state: 'failed', attempt: 1, input: { amount: 7, fee: 1 } },
    });
  });

  it('answers 404 for a task the run knows nothing of, and for an unknown run', async () => {
    await run('r1');
    expect(await get('/v1/instances/r1/tasks/nope')).toMatchObject({
      status: 404,
      json: { error: { code: 'task_not_found' } },
    });
    expect((await get('/v1/instances/ghost/tasks/quote')).status).toBe(404);
  });
});
