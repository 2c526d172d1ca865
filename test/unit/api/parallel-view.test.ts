import { describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { branch, flow, MemorySecrets } from '../../../shared/index.ts';
import { processDispatch, type WorkerDeps } from '../../../shared/runtime/worker.ts';
import { KEY, SECRET, setup } from '../../support/api-harness.ts';

const inLanes = flow<number>('in-lanes')
  .map(
    'items',
    (n: number) => Array.from({ length: n }, (_, i) => i),
    (x: number) => x,
    { maxConcurrency: 2 },
  )
  .build();
const withDelays = flow<number>('with-delays')
  .map(
    'items',
    (n: number) => Array.from({ length: n }, (_, i) => i),
    // An item that ends with two delays goes through the run's journal (a lane ends with a task, or a task and a delay).
    flow<number>('item')
      .then('b', (x: number) => x)
      .delay('nap', '1h')
      .delay('doze', '1h')
      .build(),
    { maxConcurrency: 2 },
  )
  .build();
const forked = flow<number>('forked')
  .fork([branch('left', (n: number) => n), branch('right', (n: number) => n + 1)])
  .join('both', ([l, r]: [number, number]) => l + r)
  .build();

/** The API and a worker over one memory store; `step(n)` runs the next `n` queued dispatches, one each. */
function harness() {
  const claims = new MemoryClaimStore();
  const secrets = new MemorySecrets({ [SECRET]: JSON.stringify([KEY]) });
  const t = setup({ flows: [inLanes, withDelays, forked], claims, secrets });
  const worker: WorkerDeps = {
    store: t.store,
    claims,
    queue: t.queue,
    registry: t.deps.registry,
    clock: t.clock,
    secrets,
    pool: 'default',
    workerId: 'w',
    inline: false,
  };
  const step = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const d = t.queue.sent.shift() as Dispatch | undefined;
      if (!d) throw new Error('nothing queued');
      await processDispatch(worker, d, () => 900_000);
    }
  };
  return { ...t, step };
}

describe("the instance view's maps and forks under way", () => {
  it('counts the items of a map in lanes from its counter, and drops the map once it is done', async () => {
    const t = harness();
    expect(
      (await t.call('POST', '/v1/workflows/in-lanes/instances', { body: { input: 5, instanceId: 'm' } })).status,
    ).toBe(201);
    await t.step(1); // the items task: the map opens with its first window of 2
    expect((await t.call('GET', '/v1/instances/m')).json.parallel).toEqual([
      { key: 'items', kind: 'map', done: 0, count: 5, lanes: true },
    ]);
    await t.step(3);
    expect((await t.call('GET', '/v1/instances/m')).json.parallel).toEqual([
      { key: 'items', kind: 'map', done: 3, count: 5, lanes: true },
    ]);
    await t.step(2);
    const done = (await t.call('GET', '/v1/instances/m')).json;
    expect(done.status).toBe('COMPLETED');
    expect(done.parallel).toBeUndefined();
  });

  it('counts a map whose items go through the journal from its state, and a fork in lanes from its counter', async () => {
    const t = harness();
    await t.call('POST', '/v1/workflows/with-delays/instances', { body: { input: 3, instanceId: 'd' } });
    await t.step(1);
    expect((await t.call('GET', '/v1/instances/d')).json.parallel).toEqual([
      { key: 'items', kind: 'map', done: 0, count: 3, lanes: false },
    ]);
    await t.call('POST', '/v1/workflows/forked/instances', { body: { input: 1, instanceId: 'f' } });
    const forkStart = t.queue.sent.findIndex((d) => d.instanceId === 'f');
    t.queue.sent.unshift(...t.queue.sent.splice(forkStart, 1));
    await t.step(1);
    expect((await t.call('GET', '/v1/instances/f')).json.parallel).toEqual([
      { key: 'both', kind: 'fork', done: 1, count: 2, lanes: true },
    ]);
  });
});
