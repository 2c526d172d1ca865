import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { materialize, refValueIds } from '../../../shared/engine/refs.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { type Duration, FakeClock, flow, MemoryInstanceStore, MemorySecrets, task } from '../../../shared/index.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
import { reapOnce } from '../../../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch, type WorkerDeps, WorkerKilledError } from '../../../shared/runtime/worker.ts';

let runs: string[] = [];
const chain = flow<number>('chain')
  .then('a', (n: number) => {
    runs.push('a');
    return n + 1;
  })
  .then('b', (n: number) => {
    runs.push('b');
    return n * 2;
  })
  .then(
    task(
      'c',
      (n: number) => {
        runs.push('c');
        return `=${n}`;
      },
      { pool: 'other' },
    ),
  )
  .build();
const waiting = flow<null>('waiting')
  .delay('nap', '10s')
  .then('after', () => 'woke')
  .build();

const registry = new WorkflowRegistry([chain, waiting]);
let store: MemoryInstanceStore;
let claims: MemoryClaimStore;
let queue: MemoryTaskQueue;
let clock: FakeClock;
let deps: WorkerDeps;
const forever = () => 900_000;

beforeEach(() => {
  runs = [];
  store = new MemoryInstanceStore();
  claims = new MemoryClaimStore();
  queue = new MemoryTaskQueue();
  clock = new FakeClock(1_000_000);
  deps = { store, claims, queue, registry, clock, secrets: new MemorySecrets(), pool: 'default', workerId: 'w1' };
});

async function start(f: typeof chain | typeof waiting, input: unknown, id = 'i1'): Promise<Dispatch[]> {
  const r = await startInstance(store, f, input, { instanceId: id, now: clock.now() });
  return r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
}

describe('worker', () => {
  it('runs same-pool successors inline and queues the other pool', async () => {
    const [first] = await start(chain, 1);
    const reports = await processDispatch(deps, first as Dispatch, forever);
    expect(reports.map((r) => [r.dispatch.key, r.outcome, r.inline])).toEqual([
      ['a', 'completed', false],
      ['b', 'completed', true],
    ]);
    expect(runs).toEqual(['a', 'b']);
    expect(queue.sent.map((d) => [d.key, d.pool])).toEqual([['c', 'other']]);
    const next = await processDispatch({ ...deps, pool: 'other' }, queue.sent[0] as Dispatch, forever);
    expect(next[0]?.outcome).toBe('completed');
    const snap = await store.get('i1');
    expect(snap?.status).toBe('COMPLETED');
    const out = snap?.output ?? { c: null };
    expect(materialize(out, await store.getValues('i1', refValueIds(out)))).toBe('=4');
    // Three tasks, two queue messages: three journal entries, one claim per message.
    expect(store.journalLength('i1')).toBe(3);
  });

  it('does not run inline without enough time left', async () => {
    const [first] = await start(chain, 1);
    const reports = await processDispatch(deps, first as Dispatch, () => 1_000);
    expect(reports).toHaveLength(1);
    expect(queue.sent.map((d) => d.key)).toEqual(['b']);
  });

  it('skips a duplicate delivery and commits once', async () => {
    const [first] = await start(chain, 1);
    await processDispatch({ ...deps, inline: false }, first as Dispatch, forever);
    const again = await processDispatch({ ...deps, inline: false }, first as Dispatch, forever);
    expect(again[0]).toMatchObject({ outcome: 'skipped' });
    expect(runs).toEqual(['a']);
    expect(store.commits.get('i1|out:a')).toBe(1);
  });

  it('skips a task another worker holds a live claim on', async () => {
    const [first] = await start(chain, 1);
    await claims.reserve('i1', 'a', 'other-worker', clock.now(), 10_000);
    const r = await processDispatch(deps, first as Dispatch, forever);
    expect(r[0]).toMatchObject({ outcome: 'skipped', reason: 'claimed by another worker' });
    expect(runs).toEqual([]);
  });
});

describe('worker and a revoked claim', () => {
  it('commits nothing for an attempt whose claim was revoked mid-task: no ClaimLostError failure, no next attempt', async () => {
    const blocking = flow<null>('blocking')
      .then(
        task(
          'wait',
          (_: null, ctx) =>
            new Promise<string>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
          { retry: { maxAttempts: 3 } },
        ),
      )
      .build();
    const d = { ...deps, registry: new WorkflowRegistry([blocking]), leaseMs: 30_000, heartbeatMs: 10_000 };
    const [first] = (
      await startInstance(store, blocking, null, { instanceId: 'r1', now: clock.now() })
    ).effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
    const running = processDispatch(d, first as Dispatch, forever);
    while (!(await claims.get('r1', 'wait'))?.startedAt) await new Promise((r) => setImmediate(r));
    await claims.revoke('r1', 'wait');
    clock.advance(10_000); // the next heartbeat finds the claim gone and aborts the task
    const reports = await running;
    expect(reports).toEqual([expect.objectContaining({ outcome: 'skipped', reason: 'lease lost while running' })]);
    expect(store.journalLength('r1')).toBe(0);
    expect((await store.get('r1'))?.tasks.wait).toMatchObject({ state: 'dispatched', attempt: 1 });
  });
});

/** A claim store that counts its writes. */
function countingClaims(inner: MemoryClaimStore) {
  const calls = { reserve: 0, start: 0, heartbeat: 0, release: 0 };
  const counted = Object.create(inner) as MemoryClaimStore;
  for (const k of Object.keys(calls) as (keyof typeof calls)[]) {
    const original = inner[k].bind(inner) as (...a: unknown[]) => Promise<unknown>;
    (counted as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => {
      calls[k]++;
      return original(...a);
    };
  }
  return { counted, calls };
}

describe('worker: the claim is started only when the chain may outlive its reservation', () => {
  const states: (string | undefined)[] = [];
  const probe = (id: string, timeout?: Duration) =>
    task(
      id,
      async (n: number) => {
        states.push((await claims.get('s1', 'one'))?.state);
        return n + 1;
      },
      timeout === undefined ? {} : { timeout },
    );
  const short = flow<number>('short').then(probe('one', '2s')).then(probe('two', '2s')).build();
  const long = flow<number>('long').then(probe('one')).then(probe('two')).build();

  beforeEach(() => {
    states.length = 0;
  });

  it('a chain of tasks whose timeouts fit in the reservation: reserve and release, no start', async () => {
    const { counted, calls } = countingClaims(claims);
    const d = { ...deps, claims: counted, registry: new WorkflowRegistry([short]), reserveTtlMs: 10_000 };
    const [first] = (await startInstance(store, short, 1, { instanceId: 's1', now: clock.now() })).effects.flatMap(
      (e) => (e.type === 'dispatch' ? [e.dispatch] : []),
    );
    const reports = await processDispatch(d, first as Dispatch, forever);
    expect(reports.map((r) => r.outcome)).toEqual(['completed', 'completed']);
    expect(calls).toEqual({ reserve: 1, start: 0, heartbeat: 0, release: 1 });
    expect(states).toEqual(['reserved', 'reserved']);
    expect((await store.get('s1'))?.status).toBe('COMPLETED');
  });

  it('a task whose timeout ends after the reservation: the claim is started before it runs', async () => {
    const { counted, calls } = countingClaims(claims);
    const d = { ...deps, claims: counted, registry: new WorkflowRegistry([long]), reserveTtlMs: 10_000 };
    const [first] = (await startInstance(store, long, 1, { instanceId: 's1', now: clock.now() })).effects.flatMap(
      (e) => (e.type === 'dispatch' ? [e.dispatch] : []),
    );
    await processDispatch(d, first as Dispatch, forever);
    expect(states).toEqual(['executing', 'executing']);
    expect(calls).toEqual({ reserve: 1, start: 1, heartbeat: 0, release: 1 });
  });

  it('a chain still running at half its reservation: the heartbeat starts the claim', async () => {
    let release: () => void = () => undefined;
    let running = false;
    const slow = flow<null>('slow')
      .then(
        task(
          'one',
          () =>
            new Promise<string>((resolve) => {
              running = true;
              release = () => resolve('done');
            }),
          { timeout: '15s' },
        ),
      )
      .build();
    const d = { ...deps, registry: new WorkflowRegistry([slow]), reserveTtlMs: 20_000, leaseMs: 60_000 };
    const [first] = (await startInstance(store, slow, null, { instanceId: 's1', now: clock.now() })).effects.flatMap(
      (e) => (e.type === 'dispatch' ? [e.dispatch] : []),
    );
    const done = processDispatch(d, first as Dispatch, forever);
    while (!running) await new Promise((r) => setImmediate(r));
    expect((await claims.get('s1', 'one'))?.state).toBe('reserved');
    clock.advance(9_999);
    await new Promise((r) => setImmediate(r));
    expect((await claims.get('s1', 'one'))?.state).toBe('reserved');
    clock.advance(1);
    while ((await claims.get('s1', 'one'))?.state !== 'executing') await new Promise((r) => setImmediate(r));
    expect(await claims.get('s1', 'one')).toMatchObject({ startedAt: clock.now(), expiresAt: clock.now() + 60_000 });
    release();
    expect((await done).map((r) => r.outcome)).toEqual(['completed']);
  });

  it('a task that kills every worker inside the reservation: the third lapse fails its attempt, and the run ends', async () => {
    const poison = flow<null>('poison')
      .then(task('boom', () => 'never committed', { timeout: '2s', retry: { maxAttempts: 1 } }))
      .build();
    const reg = new WorkflowRegistry([poison]);
    const kill = {
      ...deps,
      registry: reg,
      reserveTtlMs: 10_000,
      faults: (phase: string, x: Dispatch) => {
        if (phase === 'executed') throw new WorkerKilledError('executed', x.key);
      },
    };
    let [d] = (await startInstance(store, poison, null, { instanceId: 'p1', now: clock.now() })).effects.flatMap((e) =>
      e.type === 'dispatch' ? [e.dispatch] : [],
    );
    const lapses: (number | undefined)[] = [];
    for (let lap = 1; lap <= 3; lap++) {
      await expect(processDispatch(kill, d as Dispatch, forever)).rejects.toBeInstanceOf(WorkerKilledError);
      expect((await claims.get('p1', 'boom'))?.state).toBe('reserved');
      clock.advance(10_000);
      await reapOnce({ ...deps, registry: reg, timers: store });
      const t = (await store.get('p1'))?.tasks.boom;
      lapses.push(t?.lapses);
      d = queue.sent.at(-1);
    }
    // Two lapses re-dispatch the same attempt (a worker may die before running); the third counts it.
    expect(lapses).toEqual([1, 2, undefined]);
    expect(queue.sent.map((x) => [x.key, x.attempt])).toEqual([
      ['boom', 1],
      ['boom', 1],
    ]);
    const snap = await store.get('p1');
    expect(snap?.status).toBe('FAILED');
    expect(snap?.error).toMatchObject({ name: 'WorkerLostError', taskKey: 'boom', attempts: 1 });
    // The history says so: two redispatches, then the attempt's failure.
    const history = (await store.readHistory('p1')).entries.filter((e) => e.key === 'boom');
    expect(history.map((e) => [e.type, e.detail ?? e.error?.name])).toEqual([
      ['task-redispatched', 'reservation-expired'],
      ['task-redispatched', 'reservation-expired'],
      ['task-failed', 'WorkerLostError'],
      ['run-failed', 'WorkerLostError'],
    ]);
  });
});

describe('reaper', () => {
  it('fires a due timer and dispatches what follows', async () => {
    await start(waiting, null, 'w1');
    expect((await reapOnce({ ...deps, timers: store })).timersFired).toBe(0);
    clock.advance(10_000);
    const s = await reapOnce({ ...deps, timers: store });
    expect(s.timersFired).toBe(1);
    expect(queue.sent.map((d) => d.key)).toEqual(['after']);
  });

  it('re-dispatches a dispatch that never reached the queue, with a new generation', async () => {
    const [lost] = await start(chain, 1); // the message is "lost": never processed
    clock.advance(29_999);
    expect((await reapOnce({ ...deps, timers: store })).redispatched).toBe(0);
    clock.advance(1);
    const s = await reapOnce({ ...deps, timers: store });
    expect(s.redispatched).toBe(1);
    expect(queue.sent).toHaveLength(1);
    expect(queue.sent[0]).toMatchObject({ key: 'a', attempt: 1, gen: (lost as Dispatch).gen + 1 });
  });

  it('leaves a long-running task with a live claim alone', async () => {
    await start(chain, 1);
    const c = await claims.reserve('i1', 'a', 'busy', clock.now(), 10_000);
    await claims.start(c, clock.now(), 120_000);
    clock.advance(60_000);
    const s = await reapOnce({ ...deps, timers: store });
    expect(s.redispatched).toBe(0);
    expect(queue.sent).toHaveLength(0);
    // Checked: not due again until another redispatch period has passed.
    expect((await store.get('i1'))?.dueAt).toBe(clock.now() + 30_000);
  });

  it("counts a dead worker's attempt and dispatches the next one after its backoff", async () => {
    await start(chain, 1);
    const reserved = await claims.reserve('i1', 'a', 'dead-worker', clock.now(), 1_000);
    const c = await claims.start(reserved, clock.now(), 5_000);
    clock.advance(5_000);
    const s = await reapOnce({ ...deps, timers: store });
    expect(s.expiredClaims).toBe(1);
    expect(s.redispatched).toBe(1);
    expect(await claims.get('i1', 'a')).toBeUndefined();
    const snap = await store.get('i1');
    expect(snap?.tasks.a).toMatchObject({ state: 'backoff', attempt: 2 });
    clock.advanceTo(snap?.tasks.a?.dueAt ?? 0);
    await reapOnce({ ...deps, timers: store });
    expect(queue.sent.map((d) => [d.key, d.attempt])).toEqual([['a', 2]]);
    const history = await store.readHistory('i1');
    expect(history.entries.find((e) => e.type === 'task-failed')?.error?.name).toBe('WorkerLostError');
    // The dead worker's fence no longer works.
    await expect(claims.start(c, clock.now(), 1000)).rejects.toThrow(/lost/);
    // And a healthy worker completes it.
    const r = await processDispatch(deps, queue.sent[0] as Dispatch, forever);
    expect(r[0]?.outcome).toBe('completed');
  });
});

describe('reaper and stale claims', () => {
  it('re-dispatches at once, same attempt, when a worker died after reserving and before starting', async () => {
    const [first] = await start(chain, 1);
    await claims.reserve('i1', 'a', 'dead-worker', clock.now(), 1_000, 1);
    clock.advance(1_000);
    const s = await reapOnce({ ...deps, timers: store });
    expect(s.redispatched).toBe(1);
    expect(queue.sent).toEqual([expect.objectContaining({ key: 'a', attempt: 1, gen: (first as Dispatch).gen + 1 })]);
    expect((await store.readHistory('i1')).entries.some((e) => e.type === 'task-failed')).toBe(false);
  });

  it('a claim left by an older attempt neither blocks the next attempt nor fails it', async () => {
    const flaky = flow<null>('flaky-once')
      .then(
        task(
          'f',
          (_: null, ctx) => {
            if (ctx.attempt === 1) throw new Error('first time');
            return 'ok';
          },
          { retry: { maxAttempts: 2, initialDelay: '1s', jitter: 'none' } },
        ),
      )
      .build();
    const reg = new WorkflowRegistry([flaky]);
    const d = { ...deps, registry: reg };
    const [first] = await startInstance(store, flaky, null, { instanceId: 'f1', now: clock.now() }).then((r) =>
      r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])),
    );
    // Attempt 1 fails, and its worker dies right after the checkpoint, leaving its claim behind.
    const killed = await processDispatch(
      {
        ...d,
        faults: (phase) => {
          if (phase === 'checkpointed') throw new WorkerKilledError(phase, 'f');
        },
      },
      first as Dispatch,
      forever,
    ).catch((e) => e);
    expect(killed).toBeInstanceOf(WorkerKilledError);
    expect((await claims.get('f1', 'f'))?.attempt).toBe(1);
    // It died before compacting, so the index still shows the dispatch check of attempt 1:
    // the reaper comes back then, reads the journal and fires the backoff timer.
    clock.advance(1_000);
    expect((await reapOnce({ ...d, timers: store })).instances).toBe(0);
    clock.advance(29_000);
    await reapOnce({ ...d, timers: store }); // attempt 2 is dispatched
    const second = queue.sent.find((x) => x.attempt === 2) as Dispatch;
    expect(second).toBeDefined();
    // Attempt 2 is not blocked by attempt 1's live claim...
    const r = await processDispatch(d, second, forever);
    expect(r[0]?.outcome).toBe('completed');
    // ...and once that old claim expires, the reaper does not fail anything.
    clock.advance(120_000);
    await reapOnce({ ...d, timers: store });
    expect((await store.get('f1'))?.status).toBe('COMPLETED');
  });

  it('acts on a consistent read of each claim, not on a stale listing', async () => {
    await start(chain, 1);
    await claims.reserve('i1', 'a', 'w-old', clock.now(), 1_000, 1);
    clock.advance(1_000);
    const staleListing = await claims.expired(clock.now(), 10);
    expect(staleListing).toHaveLength(1);
    // Meanwhile a healthy worker takes the task.
    const fresh = await claims.reserve('i1', 'a', 'w-new', clock.now(), 10_000, 1);
    await claims.start(fresh, clock.now(), 60_000);
    // The reaper sees the stale listing; every other claim call reaches the real store.
    const listingClaims = Object.create(claims) as MemoryClaimStore;
    listingClaims.expired = async () => staleListing;
    const reaper = { ...deps, timers: store, claims: listingClaims };
    const s = await reapOnce(reaper);
    expect(s.redispatched).toBe(0);
    expect(queue.sent).toHaveLength(0);
    expect((await claims.get('i1', 'a'))?.workerId).toBe('w-new');
  });
});

describe('reaper loop inside one invocation', () => {
  it('runs passes every interval until the remaining time runs low, catching work that falls due meanwhile', async () => {
    const { reapFor } = await import('../../../shared/runtime/reaper.ts');
    await start(waiting, null, 'loop-1'); // its delay ends 10 s after the start
    const invocationEnds = clock.now() + 60_000;
    const remaining = () => invocationEnds - clock.now();
    const loop = reapFor({ ...deps, timers: store }, remaining, { intervalMs: 5_000, stopBeforeMs: 10_000 });
    let finished = false;
    void loop.then(() => (finished = true));
    // Drive the fake clock while the loop runs: each pass sleeps 5 s.
    let passes = 0;
    for (; !finished && passes < 100; passes++) {
      await new Promise((r) => setImmediate(r));
      if (!finished) clock.advance(5_000);
    }
    const total = await loop;
    expect(passes).toBeGreaterThan(5);
    expect(total.timersFired).toBe(1);
    expect(queue.sent[0]).toMatchObject({ key: 'after', gen: 1 });
    // Nobody took it: 30 s later a later pass of the same invocation sent it again.
    expect(queue.sent.slice(1).map((d) => [d.key, d.gen])).toEqual([['after', 2]]);
    // It stopped with at least 10 s left: at most 10 passes in a 60 s budget.
    expect(clock.now()).toBeLessThanOrEqual(invocationEnds);
  });
});
