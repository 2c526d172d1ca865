import { expect } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryDeadLetterStore } from '../../../shared/adapters/memory/dead-letter-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import type { AnyFlow } from '../../../shared/engine/definition.ts';
import { materialize, refValueIds } from '../../../shared/engine/refs.ts';
import type { Dispatch, RunEvent } from '../../../shared/engine/snapshot.ts';
import { FakeClock, MemoryInstanceStore, MemorySecrets } from '../../../shared/index.ts';
import { dispatchesOf } from '../../../shared/runtime/effects.ts';
import { applyEvent, startInstance } from '../../../shared/runtime/instances.ts';
import { reapOnce } from '../../../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch, type WorkerDeps, WorkerKilledError } from '../../../shared/runtime/worker.ts';

/** The redispatch period of the runs a harness starts. */
export const REDISPATCH_MS = 30_000;

/**
 * One workflow over the memory adapters, a fake clock, one worker of every
 * pool and the reaper, for tests of children in lanes: faults to kill the
 * worker at a phase, and messages to lose.
 */
export function harness(f: AnyFlow, options: { readonly wrap?: <T extends object>(part: T) => T } = {}) {
  // A wrapper sees every call to the store, the claims and the queue (to kill a process between two writes).
  const wrap = options.wrap ?? (<T>(part: T) => part);
  const store = wrap(new MemoryInstanceStore());
  const claims = wrap(new MemoryClaimStore());
  const queue = wrap(new MemoryTaskQueue());
  const clock = new FakeClock(1_000_000);
  const deadLetters = new MemoryDeadLetterStore();
  const registry = new WorkflowRegistry([f]);
  const ran: string[] = [];
  let faults: WorkerDeps['faults'] = () => undefined;
  let lost: (d: Dispatch) => boolean = () => false;
  const worker: WorkerDeps = {
    store,
    claims,
    queue,
    registry,
    clock,
    secrets: new MemorySecrets(),
    pool: 'default',
    workerId: 'w',
    deadLetters,
    faults: (phase, d) => {
      if (phase === 'executed') ran.push(`${d.key}@${d.attempt}`);
      faults?.(phase, d);
    },
  };
  /** Delivers every message sent, and what that sends, but those `lost` drops; a killed worker is one more dead worker. */
  const drain = async (first: readonly Dispatch[] = []) => {
    for (let ds = [...first, ...queue.sent.splice(0)]; ds.length > 0; ds = queue.sent.splice(0))
      await deliver(ds.filter((d) => !lost(d)));
  };
  /** Delivers these messages only; a killed worker is one more dead worker. */
  const deliver = async (ds: readonly Dispatch[]) => {
    for (const d of ds)
      await processDispatch(worker, d, () => 900_000).catch((e) => {
        if (!(e instanceof WorkerKilledError)) throw e;
      });
  };
  const reap = () => reapOnce({ store, timers: store, claims, queue, registry, clock, deadLetters });
  const start = async (input: unknown, id: string) =>
    (
      await startInstance(store, f, input, { instanceId: id, now: clock.now(), redispatchAfterMs: REDISPATCH_MS })
    ).effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
  /** Lets `ms` pass, reaps, and delivers what that sent, until the run ends or `cycles` pass. */
  const drive = async (id: string, ms: number, cycles = 30) => {
    for (let i = 0; i < cycles; i++) {
      const s = await store.get(id);
      if (s?.status !== 'RUNNING') return s;
      clock.advance(ms);
      await reap();
      await drain();
    }
    return store.get(id);
  };
  const output = async (id: string) => {
    const s = await store.get(id);
    expect(s?.status).toBe('COMPLETED');
    const out = s?.output ?? { c: null };
    return materialize(out, await store.getValues(id, refValueIds(out)));
  };
  const journal = async (id: string): Promise<RunEvent[]> => (await store.readJournal(id, 0)).flatMap((e) => e.events);
  /** An operator's call (a retry, a pause, a resume): committed, then what it dispatched delivered. */
  const control = async (id: string, event: RunEvent) => {
    const r = await applyEvent(store, f, id, event, { now: () => clock.now() });
    await drain(dispatchesOf(r.effects));
  };
  return {
    store,
    claims,
    queue,
    clock,
    deadLetters,
    ran,
    deliver,
    drain,
    reap,
    start,
    drive,
    output,
    journal,
    control,
    setFaults: (f: WorkerDeps['faults']) => {
      faults = f;
    },
    setLost: (f: (d: Dispatch) => boolean) => {
      lost = f;
    },
  };
}
