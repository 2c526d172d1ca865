import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { materialize, refValueIds } from '../../../shared/engine/refs.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { branch, FakeClock, flow, MemoryInstanceStore, MemorySecrets, task } from '../../../shared/index.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
import { reapOnce } from '../../../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch, type WorkerDeps } from '../../../shared/runtime/worker.ts';

let runs: string[] = [];
const counted =
  <I, O>(id: string, fn: (x: I) => O) =>
  (x: I) => {
    runs.push(id);
    return fn(x);
  };

/** A fork in lanes: branch `a` is two tasks in two pools, branch `b` one task. */
const forked = flow<number>('forked')
  .fork([
    branch(
      'a',
      flow<number>('a')
        .then(
          'a1',
          counted('a1', (x: number) => x + 1),
        )
        .then(
          task(
            'a2',
            counted('a2', (x: number) => x * 10),
            { pool: 'other' },
          ),
        )
        .build(),
    ),
    branch(
      'b',
      counted('b', (x: number) => -x),
    ),
  ])
  .join('join', ([a, b]: [number, number]) => ({ a, b }))
  .build();

/** A task, then a fork of two one-task branches in the same pool. */
const afterPre = flow<number>('after-pre')
  .then(
    'pre',
    counted('pre', (x: number) => x + 1),
  )
  .fork([
    branch(
      'p',
      counted('p', (x: number) => x * 2),
    ),
    branch(
      'q',
      counted('q', (x: number) => x * 3),
    ),
  ])
  .join('pq', ([p, q]: [number, number]) => p + q)
  .build();

const REDISPATCH_MS = 30_000;
const registry = new WorkflowRegistry([forked, afterPre]);
let store: MemoryInstanceStore;
let claims: MemoryClaimStore;
let queue: MemoryTaskQueue;
let clock: FakeClock;
let worker: (pool: string) => WorkerDeps;
const forever = () => 900_000;

beforeEach(() => {
  runs = [];
  store = new MemoryInstanceStore();
  claims = new MemoryClaimStore();
  queue = new MemoryTaskQueue();
  clock = new FakeClock(1_000_000);
  worker = (pool) => ({ store, claims, queue, registry, clock, secrets: new MemorySecrets(), pool, workerId: pool });
});

const reap = () => reapOnce({ store, timers: store, claims, queue, registry, clock });

async function start(): Promise<Dispatch[]> {
  const r = await startInstance(store, forked, 2, {
    instanceId: 'f1',
    now: clock.now(),
    redispatchAfterMs: REDISPATCH_MS,
  });
  return r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
}

/** Delivers every message sent since `from` to its pool's worker, until none is left. */
async function drain(from: number): Promise<void> {
  for (let i = from; i < queue.sent.length; i++) {
    const d = queue.sent[i] as Dispatch;
    await processDispatch(worker(d.pool), d, forever);
  }
}

async function output(): Promise<unknown> {
  const s = await store.get('f1');
  expect(s?.status).toBe('COMPLETED');
  const out = s?.output ?? { c: null };
  return materialize(out, await store.getValues('f1', refValueIds(out)));
}

describe('the reaper and a fork in lanes', () => {
  it('starts again, within a redispatch period, a branch whose message was lost', async () => {
    const [a1, b] = await start();
    expect([a1?.key, b?.key]).toEqual(['a/a1', 'b']);
    await processDispatch(worker('default'), b as Dispatch, forever);
    // a1's message is lost: nothing runs it.
    clock.advance(REDISPATCH_MS - 1);
    await reap();
    expect(queue.sent).toEqual([]);
    clock.advance(1);
    await reap();
    expect(queue.sent.map((d) => [d.key, d.lane])).toEqual([['a/a1', { parent: 'join', item: 0 }]]);
    await drain(0);
    expect(await output()).toEqual({ a: 30, b: -2 });
    expect(runs.sort()).toEqual(['a1', 'a2', 'b']);
  });

  it('starts a branch again at its first step without an output, with the output before it as input', async () => {
    const [a1, b] = await start();
    await processDispatch(worker('default'), a1 as Dispatch, forever);
    await processDispatch(worker('default'), b as Dispatch, forever);
    // a1 handed a2 to the other pool's queue; that message is lost.
    expect(queue.sent.map((d) => d.key)).toEqual(['a/a2']);
    queue.sent.length = 0;
    clock.advance(REDISPATCH_MS);
    await reap();
    expect(queue.sent.map((d) => [d.key, d.input])).toEqual([['a/a2', { v: 'out:a/a1' }]]);
    await drain(0);
    expect(await output()).toEqual({ a: 30, b: -2 });
    // a1 ran once: the restart went on from its output.
    expect(runs.sort()).toEqual(['a1', 'a2', 'b']);
  });

  it('leaves alone a branch that runs under a live claim, and one whose queue has a backlog', async () => {
    const [a1, b] = await start();
    await processDispatch(worker('default'), b as Dispatch, forever);
    // A worker holds a1 (a long lease, renewed by heartbeats).
    const held = await claims.reserve('f1', 'a/a1', 'slow', clock.now(), 5_000, 1);
    const running = await claims.start(held, clock.now(), 10 * REDISPATCH_MS);
    clock.advance(REDISPATCH_MS);
    await reap();
    expect(queue.sent).toEqual([]);
    await claims.release(running);
    // Its queue has a backlog: the message is most likely waiting there.
    queue.waiting = async () => 3;
    clock.advance(REDISPATCH_MS);
    await reap();
    expect(queue.sent).toEqual([]);
    queue.waiting = async () => 0;
    clock.advance(REDISPATCH_MS);
    await reap();
    expect(queue.sent.map((d) => d.key)).toEqual(['a/a1']);
    await drain(0);
    expect(await output()).toEqual({ a: 30, b: -2 });
    expect(a1?.key).toBe('a/a1');
  });

  it('starts each branch from a queue message of its own, never inline in the chain that entered the fork', async () => {
    const r = await startInstance(store, afterPre, 1, { instanceId: 'p1', now: clock.now() });
    const [pre] = r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
    const reports = await processDispatch(worker('default'), pre as Dispatch, forever);
    expect(reports.map((x) => x.dispatch.key)).toEqual(['pre']);
    expect(queue.sent.map((d) => [d.key, d.lane])).toEqual([
      ['p', { parent: 'pq', item: 0 }],
      ['q', { parent: 'pq', item: 1 }],
    ]);
    await drain(0);
    const s = await store.get('p1');
    expect(s?.status).toBe('COMPLETED');
    expect(runs).toEqual(['pre', 'p', 'q']);
  });

  it('ends a fork whose last counting writer died before committing the join', async () => {
    const [a1, b] = await start();
    await processDispatch(worker('default'), a1 as Dispatch, forever);
    await drain(0);
    queue.sent.length = 0;
    // b's result is put and counted, but its worker dies before the join's commit.
    await store.putValue('f1', 'out:b', -2);
    await store.addToCounter('f1', 'lanes:join', 1);
    expect((await store.get('f1'))?.forks.join).toBeDefined();
    clock.advance(REDISPATCH_MS);
    await reap();
    expect(queue.sent.map((d) => d.key)).toEqual(['join']);
    await drain(0);
    expect(await output()).toEqual({ a: 30, b: -2 });
    expect(runs.sort()).toEqual(['a1', 'a2']);
    expect(b?.key).toBe('b');
  });
});
