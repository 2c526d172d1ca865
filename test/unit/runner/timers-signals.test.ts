import { describe, expect, it } from 'vitest';
import {
  DefinitionMismatchError,
  FakeClock,
  flow,
  MemoryInstanceStore,
  resumeWorkflow,
  runWorkflow,
  startWorkflow,
} from '../../../shared/index.ts';
import { drive } from './drive.ts';

const HOUR = 3_600_000;
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('delay on a fake clock', () => {
  it('waits exactly the delay, then passes the value on', async () => {
    const clock = new FakeClock(0);
    const f = flow<number>('d')
      .delay('wait', '24h')
      .then('after', (n: number) => n + 1)
      .build();
    const h = startWorkflow(f, 1, { clock });
    await h.idle();
    await tick();
    const snap = await h.store.get(h.instanceId);
    expect(snap?.status).toBe('RUNNING');
    expect(snap?.dueAt).toBe(24 * HOUR);
    clock.advance(24 * HOUR - 1);
    await tick();
    expect((await h.store.get(h.instanceId))?.status).toBe('RUNNING');
    clock.advance(1);
    const r = await h.result();
    expect(r.output).toBe(2);
  });

  it('skips delays in virtual time by default', async () => {
    const f = flow<number>('v').delay('long', '30d').build();
    const started = Date.now();
    const r = await runWorkflow(f, 5);
    expect(r.output).toBe(5);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('waitForSignal', () => {
  const approval = flow<{ id: string }>('approval')
    .then('prepare', ({ id }) => id)
    .waitForSignal<{ ok: boolean }>('approve', 'manager-approval', { timeout: '48h' })
    .then('decide', (a: { ok: boolean }) => (a.ok ? 'approved' : 'rejected'))
    .build();

  it('continues with the signal payload', async () => {
    const clock = new FakeClock(0);
    const h = startWorkflow(approval, { id: 'a' }, { clock });
    await h.idle();
    await tick();
    expect((await h.store.get(h.instanceId))?.waits).toHaveProperty('approve');
    await h.signal('manager-approval', { ok: false });
    expect((await drive(h, clock)).output).toBe('rejected');
  });

  it('buffers a signal that arrives before the wait', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const f = flow<null>('early')
      .then('slow', async () => {
        await gate;
        return 'ready';
      })
      .waitForSignal<string>('w', 'go')
      .build();
    const h = startWorkflow(f, null);
    await tick();
    await h.signal('go', 'payload-1');
    const snap = await h.store.get(h.instanceId);
    expect(snap?.signals.go).toHaveLength(1); // buffered, nothing waits yet
    release();
    const r = await h.result();
    expect(r.output).toBe('payload-1');
    expect(r.snapshot.signals).toEqual({});
  });

  it('takes the timeout path: fails the run by default', async () => {
    const clock = new FakeClock(0);
    const h = startWorkflow(approval, { id: 'b' }, { clock });
    await h.idle();
    await tick();
    clock.advance(48 * HOUR - 1);
    await tick();
    expect((await h.store.get(h.instanceId))?.status).toBe('RUNNING');
    clock.advance(1);
    const r = await drive(h, clock);
    expect(r.status).toBe('FAILED');
    expect(r.error?.name).toBe('SignalTimeoutError');
  });

  it("takes the timeout path: continues with null under onTimeout 'continue'", async () => {
    const f = flow<null>('maybe')
      .waitForSignal<string>('w', 'go', { timeout: '1h', onTimeout: 'continue' })
      .then('after', (v: string | null) => (v === null ? 'timed out' : v))
      .build();
    expect((await runWorkflow(f, null)).output).toBe('timed out');
  });

  it('returns a waiting run that a later signal completes after resume', async () => {
    const store = new MemoryInstanceStore();
    const f = flow<null>('later').waitForSignal<number>('w', 'n').build();
    const first = await runWorkflow(f, null, { store, instanceId: 'later-1' });
    expect(first.status).toBe('RUNNING');
    const h = await resumeWorkflow(f, 'later-1', { store });
    await h.signal('n', 42);
    expect((await h.result()).output).toBe(42);
  });
});

describe('resume', () => {
  it('refuses an instance whose definition hash differs, with a clear error', async () => {
    const store = new MemoryInstanceStore();
    const v1 = flow<null>('evolving').waitForSignal<number>('w', 'n').build();
    const v2 = flow<null>('evolving')
      .then('new-step', () => 1)
      .waitForSignal<number>('w', 'n')
      .build();
    await runWorkflow(v1, null, { store, instanceId: 'e-1' });
    await expect(resumeWorkflow(v2, 'e-1', { store })).rejects.toThrow(DefinitionMismatchError);
    await expect(resumeWorkflow(v2, 'e-1', { store })).rejects.toThrow(/refusing to resume/);
    const h = await resumeWorkflow(v1, 'e-1', { store });
    await h.signal('n', 1);
    expect((await h.result()).status).toBe('COMPLETED');
  });
});

describe('control', () => {
  it('cancel aborts the running task and nothing more runs', async () => {
    let laterRan = false;
    let abortedSeen = false;
    const f = flow<null>('cancellable')
      .then('long', (_: null, ctx) => {
        return new Promise<string>((_, reject) =>
          ctx.signal.addEventListener('abort', () => {
            abortedSeen = true;
            reject(new Error('aborted'));
          }),
        );
      })
      .then('later', () => {
        laterRan = true;
        return 1;
      })
      .build();
    const h = startWorkflow(f, null);
    await tick();
    await h.cancel('user asked');
    const r = await h.result();
    expect(r.status).toBe('CANCELLED');
    expect(r.error?.message).toBe('user asked');
    expect(abortedSeen).toBe(true);
    expect(laterRan).toBe(false);
  });

  it('pause holds new work; resume dispatches it', async () => {
    const clock = new FakeClock(0);
    const ran: string[] = [];
    const f = flow<null>('pausable')
      .then('a', () => ran.push('a'))
      .delay('d', '1m')
      .then('b', () => ran.push('b'))
      .build();
    const h = startWorkflow(f, null, { clock });
    await h.idle();
    await tick();
    await h.pause();
    clock.advance(60_000);
    await tick();
    await h.idle();
    const paused = await h.store.get(h.instanceId);
    expect(paused?.status).toBe('PAUSED');
    expect(paused?.tasks.b?.state).toBe('ready');
    expect(ran).toEqual(['a']);
    await h.resume();
    const r = await drive(h, clock);
    expect(r.status).toBe('COMPLETED');
    expect(ran).toEqual(['a', 'b']);
  });
});
