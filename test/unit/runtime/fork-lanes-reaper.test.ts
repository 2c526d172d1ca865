import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import type { Flow } from '../../../shared/engine/definition.ts';
import { type ChildStep, resumePoint } from '../../../shared/engine/lanes.ts';
import { materialize, refValueIds } from '../../../shared/engine/refs.ts';
import type { Dispatch, RunEvent } from '../../../shared/engine/snapshot.ts';
import { branch, FakeClock, flow, MemoryInstanceStore, MemorySecrets, task } from '../../../shared/index.ts';
import { applyEvent, loadRun, startInstance } from '../../../shared/runtime/instances.ts';
import { reapOnce } from '../../../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch, type WorkerDeps, WorkerKilledError } from '../../../shared/runtime/worker.ts';

let runs: string[] = [];
const counted =
  <I, O>(id: string, fn: (x: I) => O) =>
  (x: I) => {
    runs.push(id);
    return fn(x);
  };

/** A fork in lanes of branch `a` and branch `b` (one task: `-x`), joined as `{ a, b }`. */
function withBranchB(name: string, a: Flow<number, number>): Flow<number, { a: number; b: number }> {
  return flow<number>(name)
    .fork([
      branch('a', a),
      branch(
        'b',
        counted('b', (x: number) => -x),
      ),
    ])
    .join('join', ([a, b]: [number, number]) => ({ a, b }))
    .build();
}

/** A fork in lanes: branch `a` is two tasks in two pools, branch `b` one task. */
const forked = withBranchB(
  'forked',
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
);

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

/** A fork in lanes whose branch `a` parks on a delay between its tasks, and whose branch `b` is one task. */
const parked = withBranchB(
  'parked-fork',
  flow<number>('a')
    .then(
      'a1',
      counted('a1', (x: number) => x + 1),
    )
    .delay('rest', '1m')
    .then(
      'a2',
      counted('a2', (x: number) => x * 10),
    )
    .then(
      'a3',
      counted('a3', (x: number) => x - 3),
    )
    .build(),
);

/** A fork in lanes whose branch `a` fails at its first attempt of `a1`, and is retried in its lane. */
const flaky = withBranchB(
  'flaky-fork',
  flow<number>('a')
    .then(
      task(
        'a1',
        (x: number, ctx) => {
          runs.push(`a1@${ctx.attempt}`);
          if (ctx.attempt === 1) throw new Error('not yet');
          return x + 1;
        },
        { retry: { maxAttempts: 3, initialDelay: '1m', jitter: 'none' } },
      ),
    )
    .then(
      'a2',
      counted('a2', (x: number) => x * 10),
    )
    .build(),
);

/** Branch `a` joins the frontier for a route whose branch ends with a fork (a step that needs the reducer), and ends there. */
const nested = withBranchB(
  'nested-route-fork',
  flow<number>('a')
    .then(
      'a1',
      counted('a1', (x: number) => x + 1),
    )
    .route(() => 'only', ['only'] as const, { id: 'nr' })
    .branch(
      'only',
      flow<number>('only')
        .then('nr1', (x: number) => x)
        .fork([branch('n2', (x: number) => x)])
        .join('nj', ([x]: [number]) => x)
        .build(),
    )
    .done()
    .then(
      'a2',
      counted('a2', (x: number) => x * 10),
    )
    .build(),
);

/** Branch `a` routes on a key that changes each time it is computed (its key function runs in another pool, from a message of its own). */
let picks = 0;
const fickle = withBranchB(
  'fickle',
  flow<number>('a')
    .then(
      'a1',
      counted('a1', (x: number) => x + 1),
    )
    .route(() => (picks++ % 2 === 0 ? 'x' : 'y'), ['x', 'y'] as const, { id: 'pick', pool: 'other' })
    .branch(
      'x',
      counted('ax', (x: number) => x * 10),
    )
    .branch(
      'y',
      counted('ay', (x: number) => -x),
    )
    .done()
    .then(
      'a2',
      counted('a2', (x: number) => x + 1),
    )
    .build(),
);

const REDISPATCH_MS = 30_000;
const MINUTE = 60_000;
const registry = new WorkflowRegistry([forked, afterPre, parked, flaky, nested, fickle]);
let store: MemoryInstanceStore;
let claims: MemoryClaimStore;
let queue: MemoryTaskQueue;
let clock: FakeClock;
let worker: (pool: string, faults?: WorkerDeps['faults']) => WorkerDeps;
const forever = () => 900_000;

beforeEach(() => {
  runs = [];
  store = new MemoryInstanceStore();
  claims = new MemoryClaimStore();
  queue = new MemoryTaskQueue();
  clock = new FakeClock(1_000_000);
  worker = (pool, faults) => ({
    store,
    claims,
    queue,
    registry,
    clock,
    secrets: new MemorySecrets(),
    pool,
    workerId: pool,
    ...(faults ? { faults } : {}),
  });
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

async function output(instanceId = 'f1'): Promise<unknown> {
  const s = await store.get(instanceId);
  expect(s?.status).toBe('COMPLETED');
  const out = s?.output ?? { c: null };
  return materialize(out, await store.getValues(instanceId, refValueIds(out)));
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

  it('starts again a branch whose message was lost while its queue stays busy, once a backlog no longer explains it, once per period', async () => {
    const [a1, b] = await start();
    expect(a1?.key).toBe('a/a1');
    await processDispatch(worker('default'), b as Dispatch, forever);
    // a1's message is lost, and its queue never drains.
    queue.waiting = async () => 9;
    const reapBusy = () =>
      reapOnce({ store, timers: store, claims, queue, registry, clock, maxQueueWaitMs: 10 * REDISPATCH_MS });
    const resent: number[] = [];
    for (let t = 1; t <= 25; t++) {
      clock.advance(REDISPATCH_MS);
      await reapBusy();
      if (queue.sent.splice(0).some((d) => d.key === 'a/a1')) resent.push(t);
    }
    // Sent again when the fork had waited ten periods, then ten periods after that, never in between.
    expect(resent).toEqual([10, 20]);
    queue.waiting = async () => 0;
    await run([{ ...(a1 as Dispatch), gen: 99 }]);
    await runQueued();
    expect(await output()).toEqual({ a: 30, b: -2 });
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

/** A run of `parked`, and what its branch-by-branch steps need: the queue taken as it fills, the journal's events. */
async function startParked(): Promise<Dispatch[]> {
  const r = await startInstance(store, parked, 2, {
    instanceId: 'p1',
    now: clock.now(),
    redispatchAfterMs: REDISPATCH_MS,
  });
  return r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
}

/** Takes every message queued so far. */
const take = (): Dispatch[] => queue.sent.splice(0);

async function run(ds: readonly Dispatch[], faults?: WorkerDeps['faults']): Promise<void> {
  for (const d of ds) await processDispatch(worker(d.pool, faults), d, forever);
}

/** Runs what is queued, and what that queues, until nothing is left. */
async function runQueued(): Promise<void> {
  for (let ds = take(); ds.length > 0; ds = take()) await run(ds);
}

async function parkedEvents(): Promise<RunEvent[]> {
  return (await store.readJournal('p1', 0)).flatMap((e) => e.events);
}

const PARKED_OUTPUT = { a: (2 + 1) * 10 - 3, b: -2 };

describe('a fork branch that parks on a delay', () => {
  it('parks on its lane timer; once due, the reaper marks the delay and sends the next step in the lane; a lost message there is started again from the mark', async () => {
    await run(await startParked());
    expect((await store.get('p1'))?.waits).toEqual({});
    expect(await store.listTimers('p1', '')).toEqual([
      { id: 'a/rest', dueAt: clock.now() + MINUTE, parent: 'join', item: 0 },
    ]);
    // Two looks at the fork while the branch waits (it has no claim): it is parked, not stalled.
    clock.advance(MINUTE - 1);
    await reap();
    expect(queue.sent).toEqual([]);
    clock.advance(1);
    await reap();
    // The timer fired: the delay was marked as passed, and a2 went to the branch's lane on a1's output.
    expect(await store.listValueIds('p1', 'out:a/rest')).toEqual(['out:a/rest']);
    const [a2] = take();
    expect([a2?.key, a2?.lane, a2?.input]).toEqual(['a/a2', { parent: 'join', item: 0 }, { v: 'out:a/a1' }]);
    expect((await store.listTimers('p1', ''))[0]?.firedAt).toBe(clock.now());
    expect([(await store.get('p1'))?.tasks, (await store.get('p1'))?.waits]).toEqual([{}, {}]);
    // a2's message is lost. The branch is not taken for stalled before a whole period after its timer
    // fired (a look came just before it), and is at the first look after that.
    clock.advance(REDISPATCH_MS - 1);
    await reap();
    expect(queue.sent).toEqual([]);
    clock.advance(REDISPATCH_MS);
    await reap();
    expect(queue.sent.map((d) => [d.key, d.input])).toEqual([['a/a2', { v: 'out:a/a1' }]]);
    await runQueued();
    expect(await output('p1')).toEqual(PARKED_OUTPUT);
    expect(runs.sort()).toEqual(['a1', 'a2', 'a3', 'b']);
    // The journal holds nothing of branch a: its steps and its delay were all outside it.
    const events = await parkedEvents();
    expect(events.flatMap((e) => (e.type === 'task-completed' ? [e.key] : []))).toEqual(['join']);
    expect(events.filter((e) => e.type === 'timer-fired')).toEqual([]);
  });

  it('a worker that dies between the put of the step before the delay and its timer: the step runs again and the branch parks once', async () => {
    const [a1, b] = await startParked();
    const die: WorkerDeps['faults'] = (phase, d) => {
      if (phase === 'checkpointed' && d.key === 'a/a1') throw new WorkerKilledError(phase, d.key);
    };
    await expect(run([a1 as Dispatch], die)).rejects.toBeInstanceOf(WorkerKilledError);
    await run([b as Dispatch]);
    expect(await store.listValueIds('p1', 'out:a/a1')).toEqual(['out:a/a1']);
    expect(await store.listTimers('p1', '')).toEqual([]);
    // Its claim expires; the branch has an output, no timer, and is not in the frontier: a1 is started again.
    clock.advance(2 * MINUTE);
    await reap();
    expect(take().map((d) => [d.key, d.input])).toEqual([['a/a1', (a1 as Dispatch).input]]);
    await run([{ ...(a1 as Dispatch), gen: 2 }]);
    expect((await store.listTimers('p1', '')).map((t) => [t.id, t.firedAt])).toEqual([['a/rest', undefined]]);
    clock.advance(MINUTE);
    await reap();
    await runQueued();
    expect(await output('p1')).toEqual(PARKED_OUTPUT);
    // a1 ran twice (at least once is the promise); the branch parked once, its timer fired once, a2 ran once.
    expect(runs.sort()).toEqual(['a1', 'a1', 'a2', 'a3', 'b']);
    expect(store.commits.get('p1|out:a/rest')).toBe(1);
  });

  it('a late duplicate of the step before the delay, once the branch went past it, parks nothing and runs nothing', async () => {
    const [a1, b] = await startParked();
    await run([a1 as Dispatch]);
    // A slow worker holds b all along (a long lease), so the fork stays open.
    const held = await claims.reserve('p1', 'b', 'slow', clock.now(), 5_000, 1);
    const holding = await claims.start(held, clock.now(), 100 * MINUTE);
    clock.advance(MINUTE);
    await reap();
    await runQueued(); // a2 and a3 in the lane: branch a has its result, b has not run
    expect(await store.getCounter('p1', 'lanes:join')).toBe(1);
    const reports = await processDispatch(worker('default'), a1 as Dispatch, forever);
    expect(reports.map((r) => [r.outcome, r.reason])).toEqual([
      ['skipped', 'stale: its child already parked on the delay'],
    ]);
    expect(queue.sent).toEqual([]);
    const s = await store.get('p1');
    expect([s?.waits, s?.tasks]).toEqual([{}, {}]);
    await claims.release(holding);
    await run([b as Dispatch]);
    await runQueued();
    expect(await output('p1')).toEqual(PARKED_OUTPUT);
    expect(runs.sort()).toEqual(['a1', 'a1', 'a2', 'a3', 'b']);
  });

  it('a reaper that dies between the dispatch after the delay and the firing: the next pass sends it again, and the step runs once', async () => {
    const [a1, b] = await startParked();
    await run([a1 as Dispatch, b as Dispatch]);
    clock.advance(MINUTE);
    const fire = store.fireTimer.bind(store);
    store.fireTimer = async () => {
      throw new Error('the reaper died');
    };
    await reap();
    store.fireTimer = fire;
    const first = take();
    expect(first.map((d) => d.key)).toEqual(['a/a2']);
    // Still due: the next pass fires it, and sends the same message (the queue's deduplication id is the same).
    await reap();
    const second = take();
    expect(second).toEqual(first);
    expect((await store.listTimers('p1', ''))[0]?.firedAt).toBe(clock.now());
    await run([...first, ...second]);
    await runQueued();
    expect(await output('p1')).toEqual(PARKED_OUTPUT);
    expect(store.commits.get('p1|out:a/a2')).toBe(1);
  });

  it('a cancel while the branch waits on its timer: the timer is fired with nothing sent', async () => {
    const [a1, b] = await startParked();
    await run([a1 as Dispatch, b as Dispatch]);
    await applyEvent(store, parked, 'p1', { type: 'cancel', reason: 'enough' }, { now: () => clock.now() });
    expect((await store.get('p1'))?.status).toBe('CANCELLED');
    clock.advance(MINUTE);
    await reap();
    expect(queue.sent).toEqual([]);
    expect((await store.listTimers('p1', ''))[0]?.firedAt).toBe(clock.now());
    expect(await store.due(clock.now() + 10 * MINUTE, 10)).toEqual([]);
    expect(runs.sort()).toEqual(['a1', 'b']);
  });
});

describe('a fork branch whose step is retried in its lane', () => {
  it('waits on the retry timer; a lost message of the retry is started again at that attempt, not the first', async () => {
    const r = await startInstance(store, flaky, 2, {
      instanceId: 'r1',
      now: clock.now(),
      redispatchAfterMs: REDISPATCH_MS,
    });
    await run(r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])));
    expect((await store.listTimers('r1', '')).map((t) => [t.id, t.retry?.attempt, t.dueAt - clock.now()])).toEqual([
      ['a/a1#2', 2, MINUTE],
    ]);
    // Looks while it waits (no claim holds it) leave it alone.
    clock.advance(MINUTE - 1);
    await reap();
    expect(queue.sent).toEqual([]);
    clock.advance(1);
    await reap();
    // The retry is dispatched in the lane, at attempt 2, on the branch's input; its message is lost.
    expect(take().map((d) => [d.key, d.attempt, d.lane])).toEqual([['a/a1', 2, { parent: 'join', item: 0 }]]);
    clock.advance(2 * REDISPATCH_MS);
    await reap();
    const again = take();
    expect(again.map((d) => [d.key, d.attempt])).toEqual([['a/a1', 2]]);
    await run(again);
    await runQueued();
    expect(await output('r1')).toEqual({ a: 30, b: -2 });
    expect(runs.sort()).toEqual(['a1@1', 'a1@2', 'a2', 'b']);
    // Nothing of branch a in the journal.
    const events = (await store.readJournal('r1', 0)).flatMap((e) => e.events);
    expect(events.filter((e) => 'key' in e && e.key.startsWith('a/'))).toEqual([]);
  });
});

describe('a fork branch whose last step completes in the frontier', () => {
  it("put but not committed when its worker dies, it is counted by the reaper's recount, and the join leaves nothing of it in the frontier", async () => {
    const r = await startInstance(store, nested, 2, {
      instanceId: 'q1',
      now: clock.now(),
      redispatchAfterMs: REDISPATCH_MS,
    });
    const [a1, b] = r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
    const die: WorkerDeps['faults'] = (phase, d) => {
      if (phase === 'stored' && d.key === 'a/a2') throw new WorkerKilledError(phase, d.key);
    };
    // a1 runs in the lane, which joins the frontier for the route (its branch ends with a fork); a2 follows there, and its worker dies after its put.
    const untilDeath = async () => {
      for (let ds = [a1 as Dispatch]; ds.length > 0; ds = take()) await run(ds, die);
    };
    await expect(untilDeath()).rejects.toBeInstanceOf(WorkerKilledError);
    take();
    await run([b as Dispatch]);
    expect(await store.listValueIds('q1', 'out:a/a2')).toEqual(['out:a/a2']);
    // The run as its journal says (its compaction died with a2's worker; b's chain appended nothing to compact).
    expect(Object.keys((await loadRun(store, nested, 'q1'))?.snapshot.tasks ?? {})).toEqual(['a/a2']);
    // The reaper: a2's claim expired (a redispatch), and the recount finds both results (the join).
    clock.advance(2 * MINUTE);
    await reap();
    // The join is all that is left in the frontier: a2 is done, though its commit never came.
    expect(Object.keys((await store.get('q1'))?.tasks ?? {})).toEqual(['join']);
    await runQueued();
    expect(await output('q1')).toEqual({ a: 30, b: -2 });
    const s = await store.get('q1');
    expect([s?.tasks, s?.waits]).toEqual([{}, {}]);
    expect(runs.filter((x) => x === 'a2')).toEqual(['a2']);
    // Nothing left to re-dispatch, however long the reaper keeps looking.
    clock.advance(10 * REDISPATCH_MS);
    await reap();
    expect(queue.sent).toEqual([]);
  });
});

describe('a route run in a lane whose key function a re-run answers otherwise', () => {
  it('goes where the first key put by its id says: a duplicate of the step follows it, and the other branch never runs', async () => {
    picks = 0;
    const r = await startInstance(store, fickle, 2, { instanceId: 'k1', now: clock.now() });
    await run(r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])));
    const [pick] = take().filter((d) => d.key === 'a/pick');
    expect(pick).toBeDefined();
    // The message is delivered twice: the first run says 'x', the second 'y'; both send the child to 'x'.
    await run([pick as Dispatch, pick as Dispatch]);
    expect(picks).toBe(2);
    expect(queue.sent.map((d) => d.key)).toEqual(['a/pick.x', 'a/pick.x']);
    // The branch 'y' runs first, if anything sent it.
    queue.sent.reverse();
    await runQueued();
    expect(await output('k1')).toEqual({ a: 31, b: -2 });
    expect(runs.filter((x) => x === 'ay')).toEqual([]);
    expect((await store.getValues('k1', ['out:a/pick'])).get('out:a/pick')).toBe('x');
  });
});

describe('resumePoint: where a child that stopped outside the frontier goes on', () => {
  // a1, (delay), a2, a3: the shape of branch `a`.
  const steps: ChildStep[] = [
    { qid: 'a/a1', key: 'a/a1', id: 'out:a/a1', out: { v: 'out:a/a1' } },
    { qid: 'a/rest', id: 'out:a/rest', out: { v: 'out:a/a1' } },
    { qid: 'a/a2', key: 'a/a2', id: 'out:a/a2', out: { v: 'out:a/a2' } },
    { qid: 'a/a3', key: 'a/a3', id: 'out:a/a3', out: { v: 'out:a/a3' } },
  ];
  const lane = { input: { v: 'in' } };
  const from = (...ids: string[]) => resumePoint(steps, (id) => ids.includes(id), lane);

  it('starts a child with no output at its first step on its input', () => {
    expect(from()).toEqual({ qid: 'a/a1', key: 'a/a1', input: { v: 'in' } });
  });
  it('runs again a step whose commit joining the frontier was lost (its output is there, the next step is not a task)', () => {
    expect(from('out:a/a1')).toEqual({ qid: 'a/a1', key: 'a/a1', input: { v: 'in' } });
  });
  it('goes on after a delay marked as passed, on the output of the task before it', () => {
    expect(from('out:a/a1', 'out:a/rest')).toEqual({ qid: 'a/a2', key: 'a/a2', input: { v: 'out:a/a1' } });
  });
  it('goes on after the last stored output when the next step is a task', () => {
    expect(from('out:a/a1', 'out:a/rest', 'out:a/a2')).toEqual({ qid: 'a/a3', key: 'a/a3', input: { v: 'out:a/a2' } });
  });
  it('goes on after a task that ended in the frontier after a signal wait (no mark: the task says it)', () => {
    const signalled: ChildStep[] = [
      steps[0] as ChildStep,
      { qid: 'a/wait' },
      steps[2] as ChildStep,
      steps[3] as ChildStep,
    ];
    const has = (id: string) => ['out:a/a1', 'out:a/a2'].includes(id);
    expect(resumePoint(signalled, has, lane)).toEqual({ qid: 'a/a3', key: 'a/a3', input: { v: 'out:a/a2' } });
  });
  it('has nothing to run when the result is there', () => {
    expect(from('out:a/a1', 'out:a/rest', 'out:a/a2', 'out:a/a3')).toBeUndefined();
  });
});
