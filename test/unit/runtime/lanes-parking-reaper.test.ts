import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { type ChildStep, resumePoint } from '../../../shared/engine/lanes.ts';
import { materialize, refValueIds } from '../../../shared/engine/refs.ts';
import type { Dispatch, RunEvent } from '../../../shared/engine/snapshot.ts';
import { branch, FakeClock, flow, MemoryInstanceStore, MemorySecrets } from '../../../shared/index.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
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

/** A fork in lanes whose branch `a` parks on a delay between its tasks, and whose branch `b` is one task. */
const parked = flow<number>('parked-fork')
  .fork([
    branch(
      'a',
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
    ),
    branch(
      'b',
      counted('b', (x: number) => -x),
    ),
  ])
  .join('join', ([a, b]: [number, number]) => ({ a, b }))
  .build();

const MINUTE = 60_000;
const REDISPATCH_MS = 30_000;
const registry = new WorkflowRegistry([parked]);
let store: MemoryInstanceStore;
let claims: MemoryClaimStore;
let queue: MemoryTaskQueue;
let clock: FakeClock;
let worker: (faults?: WorkerDeps['faults']) => WorkerDeps;
const forever = () => 900_000;

beforeEach(() => {
  runs = [];
  store = new MemoryInstanceStore();
  claims = new MemoryClaimStore();
  queue = new MemoryTaskQueue();
  clock = new FakeClock(1_000_000);
  worker = (faults) => ({
    store,
    claims,
    queue,
    registry,
    clock,
    secrets: new MemorySecrets(),
    pool: 'default',
    workerId: 'w',
    inline: false,
    ...(faults ? { faults } : {}),
  });
});

const reap = () => reapOnce({ store, timers: store, claims, queue, registry, clock });

async function start(): Promise<Dispatch[]> {
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
  for (const d of ds) await processDispatch(worker(faults), d, forever);
}

async function drain(): Promise<void> {
  for (let ds = take(); ds.length > 0; ds = take()) await run(ds);
}

async function events(): Promise<RunEvent[]> {
  return (await store.readJournal('p1', 0)).flatMap((e) => e.events);
}

async function output(): Promise<unknown> {
  const s = await store.get('p1');
  expect(s?.status).toBe('COMPLETED');
  const out = s?.output ?? { c: null };
  return materialize(out, await store.getValues('p1', refValueIds(out)));
}

const EXPECTED = { a: (2 + 1) * 10 - 3, b: -2 };

describe('a fork branch that parks on a delay', () => {
  it('goes back to its lane when the delay ends; a lost message there is started again after the delay, from its mark', async () => {
    await run(await start());
    expect((await store.get('p1'))?.waits).toHaveProperty(['a/rest']);
    clock.advance(MINUTE);
    await reap();
    // The timer fired: the delay was marked as passed, and a2 went to the branch's lane on a1's output.
    expect(await store.listValueIds('p1', 'out:a/rest')).toEqual(['out:a/rest']);
    const [a2] = take();
    expect([a2?.key, a2?.lane, a2?.input]).toEqual(['a/a2', { parent: 'join', item: 0 }, { v: 'out:a/a1' }]);
    expect([(await store.get('p1'))?.tasks, (await store.get('p1'))?.waits]).toEqual([{}, {}]);
    // a2's message is lost. The branch is not looked at before a whole period after it went back.
    clock.advance(REDISPATCH_MS - 1);
    await reap();
    expect(queue.sent).toEqual([]);
    clock.advance(1);
    await reap();
    expect(queue.sent.map((d) => [d.key, d.input])).toEqual([['a/a2', { v: 'out:a/a1' }]]);
    await drain();
    expect(await output()).toEqual(EXPECTED);
    expect(runs.sort()).toEqual(['a1', 'a2', 'a3', 'b']);
    // The journal: a1 joining the frontier, the timer; a2, a3 and b ran in their lanes.
    const done = (await events()).flatMap((e) => (e.type === 'task-completed' ? [e.key] : []));
    expect(done).toEqual(['a/a1', 'join']);
    expect((await events()).filter((e) => e.type === 'timer-fired')).toHaveLength(1);
  });

  it('a worker that dies between the put of the step before the delay and its commit: the step runs again and the branch parks once', async () => {
    const [a1, b] = await start();
    const die: WorkerDeps['faults'] = (phase, d) => {
      if (phase === 'stored' && d.key === 'a/a1') throw new WorkerKilledError(phase, d.key);
    };
    await expect(run([a1 as Dispatch], die)).rejects.toBeInstanceOf(WorkerKilledError);
    await run([b as Dispatch]);
    expect(await store.listValueIds('p1', 'out:a/a1')).toEqual(['out:a/a1']);
    expect((await store.get('p1'))?.waits).toEqual({});
    // Its claim expires; the branch has an output and is not in the frontier: a1 is started again.
    clock.advance(2 * MINUTE);
    await reap();
    expect(take().map((d) => [d.key, d.input])).toEqual([['a/a1', (a1 as Dispatch).input]]);
    await run(queue.sent.length ? take() : [{ ...(a1 as Dispatch), gen: 2 }]);
    expect(Object.keys((await store.get('p1'))?.waits ?? {})).toEqual(['a/rest']);
    clock.advance(MINUTE);
    await reap();
    await drain();
    expect(await output()).toEqual(EXPECTED);
    // a1 ran twice (at least once is the promise); the branch parked once, its timer fired once.
    expect(runs.sort()).toEqual(['a1', 'a1', 'a2', 'a3', 'b']);
    expect((await events()).filter((e) => e.type === 'timer-fired')).toHaveLength(1);
  });

  it('a late duplicate of the step before the delay, once the branch went past it, does not park the branch again', async () => {
    const [a1, b] = await start();
    await run([a1 as Dispatch]);
    // A slow worker holds b all along (a long lease), so the fork stays open.
    const held = await claims.reserve('p1', 'b', 'slow', clock.now(), 5_000, 1);
    const holding = await claims.start(held, clock.now(), 100 * MINUTE);
    clock.advance(MINUTE);
    await reap();
    await drain(); // a2 in the frontier, a3 back in the lane: branch a has its result, b has not run
    expect(await store.getCounter('p1', 'lanes:join')).toBe(1);
    const reports = await processDispatch(worker(), a1 as Dispatch, forever);
    expect(reports.map((r) => [r.outcome, r.reason])).toEqual([
      ['skipped', 'stale: its map item or fork branch went past this step'],
    ]);
    const s = await store.get('p1');
    expect([s?.waits, s?.tasks]).toEqual([{}, {}]);
    await claims.release(holding);
    await run([b as Dispatch]);
    await drain();
    expect(await output()).toEqual(EXPECTED);
    expect((await events()).filter((e) => e.type === 'task-completed' && e.key === 'a/a1')).toHaveLength(1);
  });
});

describe('resumePoint: where a child that stopped outside the frontier goes on', () => {
  // a1, (delay), a2, a3: the shape of branch `a`.
  const steps: ChildStep[] = [
    { qid: 'a/a1', key: 'a/a1', id: 'out:a/a1', out: 'out:a/a1' },
    { qid: 'a/rest', id: 'out:a/rest', out: 'out:a/a1' },
    { qid: 'a/a2', key: 'a/a2', id: 'out:a/a2', out: 'out:a/a2' },
    { qid: 'a/a3', key: 'a/a3', id: 'out:a/a3', out: 'out:a/a3' },
  ];
  const lane = { input: { v: 'in' } };
  const from = (...ids: string[]) => resumePoint(steps, (id) => ids.includes(id), lane);

  it('starts a child with no output at its first step on its input', () => {
    expect(from()).toEqual({ qid: 'a/a1', input: { v: 'in' } });
  });
  it('runs again a step whose commit joining the frontier was lost (its output is there, the next step is not a task)', () => {
    expect(from('out:a/a1')).toEqual({ qid: 'a/a1', input: { v: 'in' } });
  });
  it('goes on after a delay marked as passed, on the output of the task before it', () => {
    expect(from('out:a/a1', 'out:a/rest')).toEqual({ qid: 'a/a2', input: { v: 'out:a/a1' } });
  });
  it('goes on after the last stored output when the next step is a task', () => {
    expect(from('out:a/a1', 'out:a/rest', 'out:a/a2')).toEqual({ qid: 'a/a3', input: { v: 'out:a/a2' } });
  });
  it('goes on after a task that ended in the frontier after a signal wait (no mark: the task says it)', () => {
    const signalled: ChildStep[] = [
      steps[0] as ChildStep,
      { qid: 'a/wait' },
      steps[2] as ChildStep,
      steps[3] as ChildStep,
    ];
    const has = (id: string) => ['out:a/a1', 'out:a/a2'].includes(id);
    expect(resumePoint(signalled, has, lane)).toEqual({ qid: 'a/a3', input: { v: 'out:a/a2' } });
  });
  it('has nothing to run when the result is there', () => {
    expect(from('out:a/a1', 'out:a/rest', 'out:a/a2', 'out:a/a3')).toBeUndefined();
  });
});
