import { describe, expect, it } from 'vitest';
import {
  branch,
  FakeClock,
  flow,
  type RetryPolicy,
  startWorkflow,
  TerminalError,
  task,
} from '../../../shared/index.ts';
import { drive } from './drive.ts';

function flaky(failures: number, retry: RetryPolicy, times: number[], clock: FakeClock) {
  return flow<null>('flaky')
    .then(
      task(
        'call',
        (_: null, ctx) => {
          times.push(clock.now());
          if (ctx.attempt <= failures) throw new Error(`fail #${ctx.attempt}`);
          return `ok after ${ctx.attempt}`;
        },
        { retry },
      ),
    )
    .build();
}

describe('retries on a fake clock', () => {
  it('follows exponential backoff exactly without jitter', async () => {
    const clock = new FakeClock(1_000_000);
    const times: number[] = [];
    const f = flaky(3, { maxAttempts: 5, initialDelay: '1s', backoffMultiplier: 2, jitter: 'none' }, times, clock);
    const r = await drive(startWorkflow(f, null, { clock }), clock);
    expect(r.output).toBe('ok after 4');
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps).toEqual([1000, 2000, 4000]);
  });

  it('caps delays at maxDelay', async () => {
    const clock = new FakeClock(0);
    const times: number[] = [];
    const f = flaky(
      4,
      { maxAttempts: 5, initialDelay: '1s', backoffMultiplier: 10, maxDelay: '5s', jitter: 'none' },
      times,
      clock,
    );
    await drive(startWorkflow(f, null, { clock }), clock);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps).toEqual([1000, 5000, 5000, 5000]);
  });

  it('keeps full and equal jitter within their bounds, across many instances', async () => {
    for (const jitter of ['full', 'equal'] as const) {
      const allGaps: number[][] = [];
      for (let i = 0; i < 25; i++) {
        const clock = new FakeClock(0);
        const times: number[] = [];
        const f = flaky(3, { maxAttempts: 4, initialDelay: '1s', backoffMultiplier: 2, jitter }, times, clock);
        await drive(startWorkflow(f, null, { clock, instanceId: `j-${jitter}-${i}` }), clock);
        const gaps = times.slice(1).map((t, k) => t - (times[k] as number));
        gaps.forEach((g, k) => {
          const base = 1000 * 2 ** k;
          expect(g).toBeLessThanOrEqual(base);
          expect(g).toBeGreaterThanOrEqual(jitter === 'full' ? 0 : base / 2);
        });
        allGaps.push(gaps);
      }
      // Jitter spreads retries: not every instance waits the same.
      expect(new Set(allGaps.map((g) => g[0])).size).toBeGreaterThan(5);
    }
  });

  it('fails at once on a TerminalError', async () => {
    const clock = new FakeClock(0);
    let calls = 0;
    const f = flow<null>('terminal')
      .then(
        task(
          'bad',
          () => {
            calls++;
            throw new TerminalError('card declined');
          },
          { retry: { maxAttempts: 5 } },
        ),
      )
      .build();
    const r = await drive(startWorkflow(f, null, { clock }), clock);
    expect(calls).toBe(1);
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ name: 'TerminalError', message: 'card declined', attempts: 1, taskKey: 'bad' });
  });

  it('fails the run with the last error and the attempt count when retries are exhausted', async () => {
    const clock = new FakeClock(0);
    const times: number[] = [];
    const f = flaky(99, { maxAttempts: 3, initialDelay: '10ms' }, times, clock);
    const r = await drive(startWorkflow(f, null, { clock }), clock);
    expect(times).toHaveLength(3);
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ message: 'fail #3', attempts: 3, taskKey: 'call' });
  });

  it('fails a branch and with it the join and the run', async () => {
    const clock = new FakeClock(0);
    let joined = false;
    const broken = task(
      'broken',
      (_: number): number => {
        throw new Error('nope');
      },
      { retry: { maxAttempts: 2, initialDelay: '1s' } },
    );
    const f = flow<number>('branch-fail')
      .fork([branch('ok', (n: number) => n), branch('broken', broken)])
      .join('j', (xs) => {
        joined = true;
        return xs;
      })
      .build();
    const r = await drive(startWorkflow(f, 1, { clock }), clock);
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ taskKey: 'broken', message: 'nope', attempts: 2 });
    expect(joined).toBe(false);
  });

  it('times out an attempt and retries it', async () => {
    const clock = new FakeClock(0);
    let attempts = 0;
    const f = flow<null>('slow')
      .then(
        task(
          'hang',
          (_: null, ctx) => {
            attempts++;
            if (ctx.attempt === 1) return new Promise<string>(() => undefined);
            return 'second time lucky';
          },
          { timeout: '30s', retry: { maxAttempts: 2, initialDelay: '1s' } },
        ),
      )
      .build();
    const handle = startWorkflow(f, null, { clock });
    const tick = () => new Promise((r) => setTimeout(r, 5));
    await tick();
    expect(attempts).toBe(1);
    clock.advance(29_999);
    await tick();
    expect(attempts).toBe(1); // not yet timed out
    clock.advance(1); // the attempt times out: retry after its backoff
    await tick();
    clock.advance(1_000);
    const r = await drive(handle, clock);
    expect(attempts).toBe(2);
    expect(r.output).toBe('second time lucky');
  });
});
