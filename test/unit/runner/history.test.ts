import { describe, expect, it } from 'vitest';
import { MemoryInstanceStore, runWorkflow, startWorkflow } from '../../../shared/index.ts';
import { fulfil } from '../../../workflows/order.ts';

describe('execution history', () => {
  it('records the life of a run in order: start, failures with attempts, completions, timers, signals, end', async () => {
    const store = new MemoryInstanceStore();
    const order = { orderId: 'o', customer: 'c', items: [{ sku: 'a', qty: 1, price: 2 }], flakyPayments: 1 };
    const r = await runWorkflow(fulfil, order, {
      store,
      // A fixed id fixes the retry's jitter (a hash of the id): a random one made it 0 about once in a thousand runs.
      instanceId: 'history-life',
      signals: [{ name: 'manager-approval', payload: { ok: true } }],
    });
    expect(r.status).toBe('COMPLETED');
    const { entries } = await store.readHistory(r.instanceId);
    const kinds = entries.map((e) => `${e.type}${e.key ? `:${e.key}` : ''}${e.detail ? `:${e.detail}` : ''}`);
    expect(kinds[0]).toBe('run-started');
    expect(kinds).toContain('signal-received:manager-approval');
    expect(kinds.indexOf('task-failed:charge')).toBeLessThan(kinds.indexOf('timer-fired:charge'));
    expect(kinds.indexOf('timer-fired:charge')).toBeLessThan(kinds.indexOf('task-completed:charge'));
    // The fork's branches (one task each) run in lanes: they commit their results, not journal entries.
    expect(kinds.filter((k) => k === 'task-completed:email' || k === 'task-completed:shipping')).toEqual([]);
    expect(kinds).toEqual(
      expect.arrayContaining(['task-completed:done', 'timer-fired:cool-off', 'task-completed:close']),
    );
    expect(kinds.at(-1)).toBe('run-completed');
    const failed = entries.find((e) => e.type === 'task-failed');
    expect(failed).toMatchObject({ attempt: 1, error: { message: 'payment provider unavailable (attempt 1)' } });
    expect(failed?.retryAt).toBeGreaterThan(failed?.at ?? Infinity);
    const times = entries.map((e) => e.at);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // One entry per task completion: committed once, recorded once.
    expect(kinds.filter((k) => k === 'task-completed:charge')).toHaveLength(1);
  });

  it('records cancel, pause and resume', async () => {
    const store = new MemoryInstanceStore();
    const { flow } = await import('../../../shared/index.ts');
    const f = flow<null>('controlled').waitForSignal('w', 'go').build();
    const h = startWorkflow(f, null, { store });
    await h.result();
    await h.pause();
    await h.resume();
    await h.cancel('no longer needed');
    const { entries } = await store.readHistory(h.instanceId);
    expect(entries.map((e) => e.type)).toEqual(['run-started', 'paused', 'resumed', 'cancelled']);
    expect(entries.at(-1)?.detail).toBe('no longer needed');
  });
});
