import type { Clock } from '../../ports/clock.ts';

/** The wall clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

interface Sleeper {
  readonly until: number;
  readonly resolve: () => void;
}

/**
 * A clock that moves only when told: `advance(ms)` or `advanceTo(t)` wake the
 * sleepers whose time has come, in order.
 *
 * @example
 * ```ts
 * const clock = new FakeClock(0);
 * const p = clock.sleep(1000);
 * clock.advance(1000); // p resolves
 * ```
 */
export class FakeClock implements Clock {
  private sleepers: Sleeper[] = [];

  constructor(private current = 0) {}

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper: Sleeper = { until: this.current + Math.max(0, ms), resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          reject(signal.reason);
        },
        { once: true },
      );
      if (ms <= 0) this.wake();
    });
  }

  /** The earliest time a sleeper waits for, if any. */
  nextWake(): number | undefined {
    return this.sleepers.reduce<number | undefined>(
      (m, s) => (m === undefined ? s.until : Math.min(m, s.until)),
      undefined,
    );
  }

  advance(ms: number): void {
    this.advanceTo(this.current + ms);
  }

  advanceTo(t: number): void {
    if (t > this.current) this.current = t;
    this.wake();
  }

  private wake(): void {
    const due = this.sleepers.filter((s) => s.until <= this.current).sort((a, b) => a.until - b.until);
    this.sleepers = this.sleepers.filter((s) => s.until > this.current);
    for (const s of due) s.resolve();
  }
}
