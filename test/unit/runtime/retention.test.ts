import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryDeadLetterStore } from '../../../shared/adapters/memory/dead-letter-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { initSnapshot, purgeDue, reduce } from '../../../shared/engine/reducer.ts';
import type { Dispatch, Snapshot } from '../../../shared/engine/snapshot.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets, TerminalError, task } from '../../../shared/index.ts';
import type { InstanceStore } from '../../../shared/ports/instance-store.ts';
import { RETENTION_DEFAULT_MS, type Retention } from '../../../shared/runtime/defaults.ts';
import { loadRun, startInstance } from '../../../shared/runtime/instances.ts';
import { reapOnce } from '../../../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { purgeRun } from '../../../shared/runtime/retention.ts';
import { processDispatch, type WorkerDeps } from '../../../shared/runtime/worker.ts';
import { KEY, SECRET, setup } from '../../support/api-harness.ts';

const DAY = 24 * 60 * 60 * 1000;
let healthy = true;
const pay = flow<{ amount: number }>('pay')
  .then(
    task('charge', ({ amount }: { amount: number }) => {
      if (!healthy) throw new TerminalError(`declined: ${amount}`);
      return { paid: amount };
    }),
  )
  .then('receipt', (r: { paid: number }) => `paid ${r.paid}`)
  .build();

let store: MemoryInstanceStore;
let queue: MemoryTaskQueue;
let claims: MemoryClaimStore;
let registry: WorkflowRegistry;
let clock: FakeClock;
let worker: WorkerDeps;
let api: ReturnType<typeof setup>['call'];

/** The API over this test's store, clock and claims (see `test/support/api-harness.ts`). */
const call = (method: string, path: string, body?: unknown) => api(method, path, body === undefined ? {} : { body });

const reap = (s: InstanceStore & MemoryInstanceStore = store) =>
  reapOnce({ store: s, timers: s, claims, queue, registry, clock });

beforeEach(() => {
  healthy = true;
  store = new MemoryInstanceStore();
  queue = new MemoryTaskQueue();
  clock = new FakeClock(1_000_000);
  registry = new WorkflowRegistry([pay]);
  claims = new MemoryClaimStore();
  const secrets = new MemorySecrets({ [SECRET]: JSON.stringify([KEY]) });
  api = setup({ store, queue, registry, secrets, clock, claims }).call;
  worker = { store, claims, queue, registry, clock, secrets, pool: 'default', workerId: 'w' };
});

/** Starts a run and works its queue until nothing is left. */
async function finish(id: string, retention?: Retention): Promise<Snapshot> {
  const started = await startInstance(
    store,
    pay,
    { amount: 7 },
    {
      instanceId: id,
      now: clock.now(),
      ...(retention === undefined ? {} : { retention }),
    },
  );
  queue.sent.push(...started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])));
  while (queue.sent.length > 0) {
    for (const d of queue.sent.splice(0) as Dispatch[]) await processDispatch(worker, d, () => 900_000);
  }
  return (await loadRun(store, pay, id))?.snapshot as Snapshot;
}

describe('the retention of finished runs', () => {
  it('indexes a finished run at the end of its retention, 90 days by default, and keeps a live one', async () => {
    const done = await finish('r1');
    expect(done.status).toBe('COMPLETED');
    expect(done.retentionMs).toBe(RETENTION_DEFAULT_MS);
    expect(done.dueAt).toBe(done.updatedAt + 90 * DAY);
    expect(purgeDue(done, done.updatedAt + 90 * DAY - 1)).toBe(false);
    expect(purgeDue(done, done.updatedAt + 90 * DAY)).toBe(true);
    // The compacted snapshot carries that due time, so the reaper's index finds it.
    expect((await store.get('r1'))?.dueAt).toBe(done.dueAt);
    // The API says when the run goes.
    expect((await call('GET', '/v1/instances/r1')).json.purgeAt).toBe(
      new Date(done.updatedAt + 90 * DAY).toISOString(),
    );
    const running = reduce(pay, initSnapshot(pay, 'x', 'input:x', 0, { retentionMs: DAY }), { type: 'start' }, 0);
    expect(purgeDue(running.snapshot, 10 * DAY)).toBe(false);
  });

  it("takes a workflow's own retention over the deployment's, and refuses one under a minute at definition", async () => {
    const hourly = flow<number>('hourly', { retention: '1h' })
      .then('a', (n: number) => n)
      .build();
    const kept = flow<number>('kept', { retention: 'forever' })
      .then('a', (n: number) => n)
      .build();
    const h = await startInstance(store, hourly, 1, { instanceId: 'h', now: 0, retention: DAY });
    expect(h.snapshot.retentionMs).toBe(60 * 60 * 1000);
    const k = await startInstance(store, kept, 1, { instanceId: 'k', now: 0, retention: DAY });
    expect(k.snapshot.retentionMs).toBeUndefined();
    for (const bad of ['30s', 'soon', 0]) {
      expect(() => flow('bad', { retention: bad as '1h' })).toThrow(
        /retention: must be a duration of at least one minute/,
      );
    }
  });

  it('refuses a retention that is not a positive whole number of milliseconds', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => initSnapshot(pay, 'x', 'input:x', 0, { retentionMs: bad })).toThrow(/retentionMs/);
    }
  });

  it('the reaper purges a run once its retention ended, and nothing before; other runs stay', async () => {
    const done = await finish('r1', DAY);
    await finish('r2', 2 * DAY);
    const dueAt = done.dueAt as number;
    clock.advance(dueAt - 1 - clock.now());
    await reap();
    expect(await store.load('r1')).toBeDefined();

    clock.advance(1);
    await reap();
    expect(await store.load('r1')).toBeUndefined();
    expect(await store.get('r1')).toBeUndefined();
    expect(await store.readJournal('r1', 0)).toEqual([]);
    expect((await call('GET', '/v1/instances/r1')).status).toBe(404);
    expect((await call('GET', '/v1/instances/r1/history')).status).toBe(404);
    const listed = (await call('GET', '/v1/workflows/pay/instances')).json.items.map(
      (i: { instanceId: string }) => i.instanceId,
    );
    expect(listed).toEqual(['r2']);
    expect((await call('GET', '/v1/instances/r2')).json).toMatchObject({ status: 'COMPLETED', output: 'paid 7' });
  });

  it('a late duplicate message of a purged run writes nothing to its partition, and leaves no claim behind', async () => {
    const started = await startInstance(
      store,
      pay,
      { amount: 7 },
      { instanceId: 'r1', now: clock.now(), retention: DAY },
    );
    const first = started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []))[0] as Dispatch;
    queue.sent.push(first);
    while (queue.sent.length > 0) {
      for (const d of queue.sent.splice(0) as Dispatch[]) await processDispatch(worker, d, () => 900_000);
    }
    clock.advance(DAY);
    await reap();
    expect(store.dump()).toBe(JSON.stringify({ instances: [], values: [], counters: [], timers: [] }));
    // SQS delivers the first message again, long after.
    const reports = await processDispatch(worker, first, () => 900_000);
    expect(reports.map((r) => [r.outcome, r.reason])).toEqual([['skipped', 'no such instance']]);
    expect(store.dump()).toBe(JSON.stringify({ instances: [], values: [], counters: [], timers: [] }));
    expect(await claims.get('r1', first.key)).toBeUndefined();
  });

  it("deletes a failed run's dead letters with it, and no other run's", async () => {
    const letters = new MemoryDeadLetterStore();
    worker = { ...worker, deadLetters: letters };
    healthy = false;
    await finish('r1', DAY);
    await finish('r2', 2 * DAY);
    expect((await letters.ofInstance('r1')).length).toBe(1);
    expect((await letters.ofInstance('r2')).length).toBe(1);
    clock.advance(DAY + 1);
    await reapOnce({ store, timers: store, claims, queue, registry, clock, deadLetters: letters });
    expect(await store.load('r1')).toBeUndefined();
    expect(await letters.ofInstance('r1')).toEqual([]);
    expect((await letters.ofInstance('r2')).length).toBe(1);
  });

  it("keeps a run started with retention 'forever' for good", async () => {
    const done = await finish('r1', 'forever');
    expect(done.retentionMs).toBeUndefined();
    expect(done.dueAt).toBeUndefined();
    clock.advance(10_000 * DAY);
    await reap();
    expect((await call('GET', '/v1/instances/r1')).json.status).toBe('COMPLETED');
  });

  it('a failed run retried before the purge is running again and is not purged; its retention restarts when it ends', async () => {
    healthy = false;
    const failed = await finish('r1', DAY);
    expect(failed.status).toBe('FAILED');
    healthy = true;
    expect((await call('POST', '/v1/instances/r1/tasks/charge/retry')).status).toBe(200);
    // The purge's fence comes second: it changes nothing and deletes nothing.
    const run = await loadRun(store, pay, 'r1');
    expect(await purgeRun(store, pay, run as NonNullable<typeof run>, { now: () => clock.now() })).toBe(false);
    expect(await store.load('r1')).toBeDefined();
    clock.advance(2 * DAY);
    for (const d of queue.sent.splice(0) as Dispatch[]) await processDispatch(worker, d, () => 900_000);
    for (const d of queue.sent.splice(0) as Dispatch[]) await processDispatch(worker, d, () => 900_000);
    const done = (await loadRun(store, pay, 'r1'))?.snapshot as Snapshot;
    expect(done.status).toBe('COMPLETED');
    expect(done.dueAt).toBe(clock.now() + DAY);
  });

  it('a retry after the fence finds the run gone, and changes nothing', async () => {
    healthy = false;
    await finish('r1', DAY);
    const run = await loadRun(store, pay, 'r1');
    // Fence only: a store whose purge dies at once (a crash right after the fence).
    const dying = Object.create(store) as MemoryInstanceStore;
    dying.purge = async () => {
      throw new Error('killed after the fence');
    };
    await expect(purgeRun(dying, pay, run as NonNullable<typeof run>, { now: () => clock.now() })).rejects.toThrow(
      'killed after the fence',
    );
    const before = await store.readJournal('r1', 0);
    expect(before.at(-1)?.events).toEqual([{ type: 'purge' }]);
    const retried = await call('POST', '/v1/instances/r1/tasks/charge/retry');
    expect(retried.status).toBe(404);
    expect(await store.readJournal('r1', 0)).toEqual(before);
    expect((await call('GET', '/v1/instances/r1')).status).toBe(404);

    // The snapshot is still on the due index (at the end of the retention): the pass after it finishes the purge.
    clock.advance(DAY);
    await reap();
    expect(await store.load('r1')).toBeUndefined();
  });
});
