import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryDeadLetterStore } from '../../../shared/adapters/memory/dead-letter-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets, TerminalError, task } from '../../../shared/index.ts';
import type { DeadLetter, DeadLetterStore } from '../../../shared/ports/dead-letter-store.ts';
import { letterState } from '../../../shared/runtime/dead-letters.ts';
import { readRun, startInstance } from '../../../shared/runtime/instances.ts';
import { reapOnce } from '../../../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import {
  processDispatch,
  type WorkerDeps,
  WorkerKilledError,
  type WorkerPhase,
} from '../../../shared/runtime/worker.ts';

let healthy = false;
const declines = flow<number>('declines')
  .then(
    task(
      'charge',
      (n: number) => {
        if (!healthy) throw new Error(`declined ${n}`);
        return n;
      },
      { retry: { maxAttempts: 2, initialDelay: '1s' } },
    ),
  )
  .build();
const terminal = flow<number>('terminal')
  .then('charge', (n: number): number => {
    throw new TerminalError(`gone ${n}`);
  })
  .build();

const once = flow<number>('once')
  .then(task('charge', (n: number) => n, { retry: { maxAttempts: 1 } }))
  .build();

const registry = new WorkflowRegistry([declines, terminal, once]);
let store: MemoryInstanceStore;
let letters: MemoryDeadLetterStore;
let clock: FakeClock;
let queue: MemoryTaskQueue;
let deps: WorkerDeps;
const forever = () => 900_000;

beforeEach(() => {
  healthy = false;
  store = new MemoryInstanceStore();
  letters = new MemoryDeadLetterStore();
  clock = new FakeClock(1_000_000);
  queue = new MemoryTaskQueue();
  deps = {
    store,
    claims: new MemoryClaimStore(),
    queue,
    registry,
    clock,
    secrets: new MemorySecrets(),
    pool: 'default',
    workerId: 'w1',
    deadLetters: letters,
  };
});

async function start(f: typeof declines, id: string): Promise<Dispatch> {
  const r = await startInstance(store, f, 7, { instanceId: id, now: clock.now() });
  return r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []))[0] as Dispatch;
}

/** A redelivery after the dead worker's lease ran out. */
async function redeliver(d: Dispatch, over: Partial<WorkerDeps> = {}) {
  clock.advance(120_000);
  return processDispatch({ ...deps, workerId: 'w2', ...over }, d, forever);
}

/** The run's status as the journal says (a killed worker may have left no compaction). */
const status = async (instanceId: string) => (await readRun(store, registry, instanceId))?.status;

const states = async (instanceId: string) => {
  const snapshot = await readRun(store, registry, instanceId);
  return (await letters.ofInstance(instanceId)).map((l) => letterState(l, snapshot).state);
};

describe('the dead letter of a task whose failure fails its run', () => {
  it('is put only by the failure that fails the run, once, with the attempts and the error', async () => {
    const first = await start(declines, 'r1');
    await processDispatch(deps, first, forever);
    expect(letters.all()).toEqual([]); // a retry is due: no dead letter
    expect(await status('r1')).toBe('RUNNING');
    clock.advance(60_000);
    await reapOnce({ ...deps, timers: store }); // fires the backoff: attempt 2 is dispatched
    const [second] = queue.sent;
    expect(second?.attempt).toBe(2);
    await processDispatch(deps, second as Dispatch, forever);
    expect(await status('r1')).toBe('FAILED');
    expect(letters.all()).toEqual([
      expect.objectContaining({
        origin: 'engine',
        attempts: 2,
        reason: 'Error: declined 7',
        error: { name: 'Error', message: 'declined 7' },
        dispatch: expect.objectContaining({ instanceId: 'r1', key: 'charge', attempt: 2 }),
      }),
    ]);
    expect(await states('r1')).toEqual(['open']);
  });

  it('a worker killed between the put and the commit leaves a resolved record; the redelivery commits and keeps one record', async () => {
    const d = await start(terminal, 't1');
    const dying: DeadLetterStore = {
      put: async (letter: DeadLetter) => {
        await letters.put(letter);
        throw new WorkerKilledError('executed', letter.origin === 'malformed' ? '' : letter.dispatch.key);
      },
      list: (pool, o) => letters.list(pool, o),
      ofInstance: (id, o) => letters.ofInstance(id, o),
      delete: (l) => letters.delete(l),
    };
    await expect(processDispatch({ ...deps, deadLetters: dying }, d, forever)).rejects.toBeInstanceOf(
      WorkerKilledError,
    );
    expect(await status('t1')).toBe('RUNNING');
    expect(await states('t1')).toEqual(['resolved']);

    await redeliver(d);
    expect(await status('t1')).toBe('FAILED');
    expect(await states('t1')).toEqual(['open']);
    expect(letters.all()).toHaveLength(1);
  });

  it.each<WorkerPhase>(['reserved', 'executed', 'checkpointed', 'dispatched'])(
    'a worker killed at %s: once the run is FAILED, it has exactly one open record',
    async (phase) => {
      const d = await start(terminal, `k-${phase}`);
      const faults = (p: WorkerPhase) => {
        if (p === phase) throw new WorkerKilledError(p, d.key);
      };
      await expect(processDispatch({ ...deps, faults }, d, forever)).rejects.toBeInstanceOf(WorkerKilledError);
      await redeliver(d);
      expect(await status(d.instanceId)).toBe('FAILED');
      expect(await states(d.instanceId)).toEqual(['open']);
    },
  );

  it('a put that fails leaves the failure uncommitted: the message is redelivered and the task runs again', async () => {
    const d = await start(terminal, 'p1');
    const down: DeadLetterStore = {
      put: async () => {
        throw new Error('store unavailable');
      },
      list: (pool, o) => letters.list(pool, o),
      ofInstance: (id, o) => letters.ofInstance(id, o),
      delete: (l) => letters.delete(l),
    };
    await expect(processDispatch({ ...deps, deadLetters: down }, d, forever)).rejects.toThrow('store unavailable');
    expect(await status('p1')).toBe('RUNNING');
    expect(letters.all()).toEqual([]);
    await processDispatch(deps, d, forever);
    expect(await status('p1')).toBe('FAILED');
    expect(await states('p1')).toEqual(['open']);
  });

  it("is put by the reaper when a dead worker's last attempt fails the run, before it commits, once", async () => {
    const d = await start(once, 'lost');
    const kill = (p: WorkerPhase) => {
      if (p === 'executed') throw new WorkerKilledError(p, d.key);
    };
    await expect(processDispatch({ ...deps, faults: kill }, d, forever)).rejects.toBeInstanceOf(WorkerKilledError);
    clock.advance(120_000); // the dead worker's lease runs out
    const reaper = { ...deps, timers: store };
    // A reaper that dies right after the put: the record is there, the failure is not committed.
    const dying: DeadLetterStore = {
      put: async (letter: DeadLetter) => {
        await letters.put(letter);
        throw new Error('reaper died after the put');
      },
      list: (pool, o) => letters.list(pool, o),
      ofInstance: (id, o) => letters.ofInstance(id, o),
      delete: (l) => letters.delete(l),
    };
    expect((await reapOnce({ ...reaper, deadLetters: dying })).errors).toBe(1);
    expect(await status('lost')).toBe('RUNNING');
    expect(await states('lost')).toEqual(['resolved']);
    await reapOnce(reaper);
    expect(await status('lost')).toBe('FAILED');
    expect(await states('lost')).toEqual(['open']);
    expect(letters.all()).toEqual([
      expect.objectContaining({
        origin: 'engine',
        reason: expect.stringMatching(/^WorkerLostError: /),
        attempts: 1,
        // The lost attempt, not committed yet when the record was made, is in its attempt history.
        attemptHistory: [
          expect.objectContaining({ attempt: 1, error: expect.objectContaining({ name: 'WorkerLostError' }) }),
        ],
      }),
    ]);
  });
});

describe('the dead letter of an output that does not fit its step', () => {
  it('is put when a map step returns no array, which fails the run', async () => {
    const { runWorkflow } = await import('../../../shared/index.ts');
    const f = flow<number>('not-a-list')
      .map(
        'items',
        (n: number) => ({ n }) as unknown as number[],
        task('work', (x: number) => x),
      )
      .build();
    const r = await runWorkflow(f, 2, { deadLetters: letters });
    expect(r.status).toBe('FAILED');
    const records = letters.all();
    expect(records).toEqual([
      expect.objectContaining({ origin: 'engine', dispatch: expect.objectContaining({ key: 'items' }) }),
    ]);
    expect(records.map((l) => letterState(l, r.snapshot).state)).toEqual(['open']);
  });
});
