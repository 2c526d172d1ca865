import { describe, expect, it } from 'vitest';
import { awaitedSignals, instanceView } from '../../../shared/api/views.ts';
import type { Snapshot, TaskActivity, WaitActivity } from '../../../shared/engine/snapshot.ts';
import { flow, runWorkflow } from '../../../shared/index.ts';

/** One task, then a signal wait, then one more task. */
const gated = flow<number>('gated')
  .then('prepare', (n) => n + 1)
  .waitForSignal<{ ok: boolean }>('approval', 'approved')
  .then('finish', (a) => a?.ok === true)
  .build();

/** A run of `gated` stopped at its signal wait. */
async function waiting(): Promise<Snapshot> {
  const run = await runWorkflow(gated, 1, { instanceId: 'g-1' });
  expect(run.status).toBe('RUNNING');
  return run.snapshot;
}

const input = { id: 'in:g-1' } as unknown as TaskActivity['input'];
const task = (state: TaskActivity['state']): TaskActivity => ({ qid: 'q', idx: [], input, attempt: 1, state });
const wait = (kind: WaitActivity['kind'], signal?: string): WaitActivity => ({
  kind,
  qid: 'q',
  idx: [],
  input,
  ...(signal === undefined ? {} : { signal }),
});

describe('awaitedSignals', () => {
  it('names the signal of a run that can go no further without it', async () => {
    const s = await waiting();
    expect(awaitedSignals(s)).toEqual(['approved']);
    expect(instanceView(s).waitingFor).toEqual(['approved']);
  });

  it('names each awaited signal once, sorted', async () => {
    const s = await waiting();
    const waits = { ...s.waits, b: wait('signal', 'zeta'), c: wait('signal', 'approved') };
    expect(awaitedSignals({ ...s, waits })).toEqual(['approved', 'zeta']);
  });

  it('is undefined while a task is ready, dispatched or in backoff beside the wait', async () => {
    const s = await waiting();
    for (const state of ['ready', 'dispatched', 'backoff'] as const) {
      const busy: Snapshot = { ...s, tasks: { work: task(state) } };
      expect(awaitedSignals(busy), state).toBeUndefined();
      expect(instanceView(busy), state).not.toHaveProperty('waitingFor');
    }
  });

  it('is undefined while a delay is pending beside the wait, or with no wait at all', async () => {
    const s = await waiting();
    expect(awaitedSignals({ ...s, waits: { ...s.waits, nap: wait('delay') } })).toBeUndefined();
    expect(awaitedSignals({ ...s, waits: {} })).toBeUndefined();
  });

  it('is undefined while a map or fork runs its children in lanes beside the wait', async () => {
    const s = await waiting();
    const lanes = { qid: 'q', idx: [], input, window: 2, checkAt: 0, seen: 0 };
    const forks = { fork: { remaining: 2, results: [null, null], lanes } };
    expect(awaitedSignals({ ...s, forks })).toBeUndefined();
    const maps = { map: { count: 3, next: 2, done: 0, except: {}, lanes } };
    expect(awaitedSignals({ ...s, maps })).toBeUndefined();
  });

  it('is undefined for a run that is not RUNNING', async () => {
    const s = await waiting();
    for (const status of ['PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const) {
      expect(awaitedSignals({ ...s, status }), status).toBeUndefined();
    }
  });
});

describe('instanceView stepsDone', () => {
  it("shows the snapshot's step count, and 0 for a snapshot that has none", async () => {
    const s = await waiting();
    expect(instanceView({ ...s, steps: 3 }).stepsDone).toBe(3);
    const { steps: _, ...older } = s;
    expect(instanceView(older).stepsDone).toBe(0);
  });
});
