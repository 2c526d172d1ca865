import { describe, expect, it } from 'vitest';
import { MAX_RECENT_DELIVERIES } from '../../../shared/engine/snapshot.ts';
import { FakeClock, FlowDefinitionError, flow, SignalBufferFullError, startWorkflow } from '../../../shared/index.ts';
import { drive } from './drive.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

/** Waits a day before it takes its first 'go': signals sent meanwhile are buffered. */
const late = flow<number>('late', { signalBuffer: 3 })
  .delay('first', '24h')
  .waitForSignal<string>('take', 'go')
  .then('done', (s: string) => s)
  .build();

/** Takes two 'go' signals in a row and returns both payloads. */
const twice = flow<number>('twice')
  .waitForSignal<string>('a', 'go')
  .then('keep', (a: string) => a)
  .waitForSignal<string>('b', 'go')
  .then('both', (b: string, ctx) => ({ b, at: ctx.taskKey }))
  .build();

describe('the signal buffer per name is bounded', () => {
  it('refuses the signal past the flow signalBuffer with a typed error, and changes nothing', async () => {
    const clock = new FakeClock(0);
    const h = startWorkflow(late, 1, { clock });
    await h.idle();
    for (const p of ['one', 'two', 'three']) await h.signal('go', p);
    const before = await h.store.get(h.instanceId);
    expect(before?.signals.go).toHaveLength(3);
    const refused = await h.signal('go', 'four').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SignalBufferFullError);
    expect((refused as SignalBufferFullError).limit).toBe(3);
    expect((refused as Error).message).toMatch(/already holds 3 'go' signals/);
    const after = await h.store.get(h.instanceId);
    expect(after?.version).toBe(before?.version);
    expect(after?.signals.go).toEqual(before?.signals.go);
  });

  it('keeps a run with a full buffer controllable: cancel goes through', async () => {
    const clock = new FakeClock(0);
    const h = startWorkflow(late, 1, { clock });
    await h.idle();
    for (const p of ['one', 'two', 'three']) await h.signal('go', p);
    await expect(h.signal('go', 'four')).rejects.toBeInstanceOf(SignalBufferFullError);
    await h.cancel('flooded');
    expect((await h.result()).status).toBe('CANCELLED');
  });

  it('takes the oldest buffered signal first, and accepts again once the run consumed one', async () => {
    const clock = new FakeClock(0);
    const h = startWorkflow(late, 1, { clock });
    await h.idle();
    for (const p of ['one', 'two', 'three']) await h.signal('go', p);
    clock.advance(24 * 3_600_000);
    const r = await drive(h, clock);
    expect(r.output).toBe('one');
  });

  it('refuses a signalBuffer that is not a positive integer within bounds at definition time', () => {
    expect(() => flow('bad', { signalBuffer: 0 })).toThrow(FlowDefinitionError);
    expect(() => flow('bad', { signalBuffer: 1.5 })).toThrow(/signalBuffer: must be an integer from 1 to 1000/);
    expect(() => flow('bad', { signalBuffer: 1_001 })).toThrow(FlowDefinitionError);
  });

  it('buffers a signal whose name is an inherited property name like any other', async () => {
    const f = flow<number>('proto').delay('d', '1h').waitForSignal<number>('w', 'constructor').build();
    const clock = new FakeClock(0);
    const h = startWorkflow(f, 1, { clock });
    await h.idle();
    await h.signal('constructor', 7);
    expect((await h.store.get(h.instanceId))?.signals.constructor).toHaveLength(1);
    clock.advance(3_600_000);
    expect((await drive(h, clock)).output).toBe(7);
  });
});

describe('a signal sent with an idempotency key is delivered once', () => {
  it('ignores a retried delivery with the same key and takes one with another key', async () => {
    const clock = new FakeClock(0);
    const h = startWorkflow(twice, 1, { clock });
    await h.idle();
    await h.signal('go', 'first', { idempotencyKey: 'k-1' });
    await h.idle();
    await tick();
    await h.signal('go', 'first again', { idempotencyKey: 'k-1' });
    await h.idle();
    const waiting = await h.store.get(h.instanceId);
    expect(waiting?.status).toBe('RUNNING');
    expect(Object.keys(waiting?.waits ?? {})).toEqual(['b']);
    expect(waiting?.signals).toEqual({});
    await h.signal('go', 'second', { idempotencyKey: 'k-2' });
    const r = await drive(h, clock);
    expect(r.output).toEqual({ b: 'second', at: 'both' });
  });

  it('remembers only the run’s last MAX_RECENT_DELIVERIES keys, as short digests', async () => {
    const f = flow<number>('many', { signalBuffer: 1_000 }).delay('d', '1h').waitForSignal('w', 'go').build();
    const clock = new FakeClock(0);
    const h = startWorkflow(f, 1, { clock });
    await h.idle();
    const n = MAX_RECENT_DELIVERIES + 6;
    for (let i = 0; i < n; i++)
      await h.signal('go', i, { idempotencyKey: `a-long-client-key-${'x'.repeat(100)}-${i}` });
    const s = await h.store.get(h.instanceId);
    expect(s?.deliveries).toHaveLength(MAX_RECENT_DELIVERIES);
    expect(s?.deliveries?.every((d) => d.length === 16)).toBe(true);
    expect(s?.signals.go).toHaveLength(n);
    // The oldest key fell out of the window: sent again, it is a new delivery.
    await h.signal('go', 'again', { idempotencyKey: `a-long-client-key-${'x'.repeat(100)}-0` });
    expect((await h.store.get(h.instanceId))?.signals.go).toHaveLength(n + 1);
    // A recent one is still recognised.
    await h.signal('go', 'again', { idempotencyKey: `a-long-client-key-${'x'.repeat(100)}-${n - 1}` });
    expect((await h.store.get(h.instanceId))?.signals.go).toHaveLength(n + 1);
  });
});
