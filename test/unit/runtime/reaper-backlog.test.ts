import { describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets } from '../../../shared/index.ts';
import type { Clock } from '../../../shared/ports/clock.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
import { type ReaperDeps, reapFor, reapOnce } from '../../../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch } from '../../../shared/runtime/worker.ts';

const napping = flow<number>('napping')
  .then('a', (n: number) => n)
  .delay('nap', '1m')
  .then('b', (n: number) => n + 1)
  .build();

const quick = flow<number>('quick')
  .then('a', (n: number) => n)
  .build();

/** A clock that stands still and records each pause instead of waiting it out (the reaper's only). */
function recordingClock(at: number, events: string[]): Clock {
  return {
    now: () => at,
    sleep: async (ms: number) => {
      events.push(`sleep ${ms}`);
    },
  };
}

const START = 1_000_000;

/** Five runs, each parked on its one-minute delay (the workers on a clock of their own). */
async function parkedRuns(store: MemoryInstanceStore, registry: WorkflowRegistry) {
  const clock = new FakeClock(START);
  const queue = new MemoryTaskQueue();
  const claims = new MemoryClaimStore();
  const worker = {
    store,
    claims,
    queue,
    registry,
    clock,
    secrets: new MemorySecrets(),
    pool: 'default',
    workerId: 'w',
  };
  for (let i = 0; i < 5; i++) {
    const s = await startInstance(store, napping, i, { instanceId: `r${i}`, now: clock.now() });
    for (const e of s.effects)
      if (e.type === 'dispatch') await processDispatch(worker, e.dispatch as Dispatch, () => 1e6);
  }
  return { queue, claims };
}

describe('the reaper with a backlog', () => {
  it('runs the next pass at once while a pass finds a whole batch due and moves it, then pauses', async () => {
    const events: string[] = [];
    const clock = recordingClock(START + 61_000, events);
    const store = new MemoryInstanceStore();
    const registry = new WorkflowRegistry([napping]);
    const { queue, claims } = await parkedRuns(store, registry);
    const passes: number[] = [];
    const deps: ReaperDeps = {
      store,
      timers: store,
      claims,
      queue,
      registry,
      clock,
      batchSize: 2,
      onPass: (s) => {
        passes.push(s.timersFired);
        events.push(`pass ${s.timersFired}${s.backlog ? ' backlog' : ''}`);
      },
    };
    await reapFor(deps, () => (passes.length < 4 ? 60_000 : 0), { intervalMs: 5_000, stopBeforeMs: 1_000 });
    expect(events.slice(0, 4)).toEqual(['pass 2 backlog', 'pass 2 backlog', 'pass 1', 'sleep 5000']);
  });

  it('fires a live timer in the same pass as a batch of purges that were due long before it', async () => {
    const store = new MemoryInstanceStore();
    const registry = new WorkflowRegistry([napping, quick]);
    const workers = new FakeClock(START);
    const worker = {
      store,
      claims: new MemoryClaimStore(),
      queue: new MemoryTaskQueue(),
      registry,
      clock: workers,
      secrets: new MemorySecrets(),
      pool: 'default',
      workerId: 'w',
    };
    const run = async (id: string, f: typeof quick, retention?: number) => {
      const s = await startInstance(store, f, 1, {
        instanceId: id,
        now: workers.now(),
        ...(retention ? { retention } : {}),
      });
      for (const e of s.effects) if (e.type === 'dispatch') await processDispatch(worker, e.dispatch, () => 1e6);
    };
    // Three finished runs whose retention (one minute) ends at START + 60 s; one run parked until START + 2 min.
    for (const id of ['f1', 'f2', 'f3']) await run(id, quick, 60_000);
    workers.advance(60_000);
    await run('live', napping);
    const events: string[] = [];
    const clock = recordingClock(START + 60_000 + 61_000, events);
    const s = await reapOnce({ ...worker, timers: store, clock, batchSize: 2 });
    // The timer fired though two purges (older due times) filled a batch of their own.
    expect(s.timersFired).toBe(1);
    expect(s.purged).toBe(2);
    expect(s.backlog).toBe(true);
    expect(store.instanceIds().sort()).toEqual(['f3', 'live']);
  });

  it('pauses after a whole batch it cannot move (runs of a workflow not registered here)', async () => {
    const events: string[] = [];
    const clock = recordingClock(START + 61_000, events);
    const store = new MemoryInstanceStore();
    const { queue, claims } = await parkedRuns(store, new WorkflowRegistry([napping]));
    let passes = 0;
    const deps: ReaperDeps = {
      store,
      timers: store,
      claims,
      queue,
      registry: new WorkflowRegistry([]),
      clock,
      batchSize: 2,
      onPass: (s) => {
        passes++;
        events.push(`pass ${s.instances}${s.backlog ? ' backlog' : ''}`);
      },
    };
    await reapFor(deps, () => (passes < 2 ? 60_000 : 0), { intervalMs: 5_000, stopBeforeMs: 1_000 });
    expect(events).toEqual(['pass 2', 'sleep 5000', 'pass 2']);
  });
});

describe('a dispatch lost while its queue stays busy', () => {
  it('is taken for waiting in the backlog until it has waited maxQueueWaitMs, then sent again', async () => {
    const store = new MemoryInstanceStore();
    const registry = new WorkflowRegistry([quick]);
    const clock = new FakeClock(START);
    const queue = new MemoryTaskQueue();
    // The queue always has a backlog, and the run's one message is lost.
    queue.waiting = async () => 7;
    await startInstance(store, quick, 1, { instanceId: 'q1', now: clock.now(), redispatchAfterMs: 1_000 });
    const deps: ReaperDeps = {
      store,
      timers: store,
      claims: new MemoryClaimStore(),
      queue,
      registry,
      clock,
      maxQueueWaitMs: 20_000,
    };
    const resent: number[] = [];
    for (let t = 0; t <= 25_000; t += 1_000) {
      clock.advanceTo(START + t);
      await reapOnce(deps);
      if (queue.sent.splice(0).some((d) => d.key === 'a')) resent.push(t);
    }
    // Checked every redispatch period, and sent again once, when it had waited 20 s.
    expect(resent).toEqual([20_000]);
    expect((await store.get('q1'))?.tasks.a?.gen).toBe(2);
  });
});
