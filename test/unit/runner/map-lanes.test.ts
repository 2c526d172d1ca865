import { describe, expect, it } from 'vitest';
import { flow, runWorkflow, startWorkflow, TerminalError, task } from '../../../shared/index.ts';
import { MeasuringStore } from '../../support/measuring-store.ts';

describe('map items in lanes', () => {
  it('a map of 10,000 items completes with every snapshot under 8 KB and two journal entries for the whole map', async () => {
    const store = new MeasuringStore();
    const f = flow<number>('wide')
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        (x: number) => x + 1,
        { maxConcurrency: 50 },
      )
      .then('count', (xs: number[]) => ({ n: xs.length, last: xs[xs.length - 1] }))
      .build();
    const r = await runWorkflow(f, 10_000, { store });
    expect(r.output).toEqual({ n: 10_000, last: 10_000 });
    expect(store.largestSnapshot).toBeGreaterThan(0);
    expect(store.largestSnapshot).toBeLessThan(8_192);
    // The map task's completion (with the items), lanes-joined, and the last task's completion.
    expect(store.entries).toBe(3);
    // Each item's result committed once.
    const results = [...store.commits].filter(([k]) => k.includes('|out:items['));
    expect(results).toHaveLength(10_000);
    expect(results.every(([, n]) => n === 1)).toBe(true);
  });

  it('an item that fails joins the frontier, is retried after its backoff, and is counted like the others', async () => {
    const seen = new Map<number, number>();
    const f = flow<number>('flaky-map')
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        task(
          'item',
          (x: number, ctx) => {
            seen.set(x, ctx.attempt);
            if (x % 5 === 0 && ctx.attempt === 1) throw new Error(`item ${x} fails once`);
            return x * 10;
          },
          { retry: { maxAttempts: 2, initialDelay: '1s', jitter: 'none' } },
        ),
        { maxConcurrency: 4 },
      )
      .build();
    const r = await runWorkflow(f, 20);
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
    expect([...seen].filter(([, attempt]) => attempt === 2).map(([x]) => x)).toEqual([0, 5, 10, 15]);
  });

  it('an item that fails for good fails the run, naming the item', async () => {
    const f = flow<number>('doomed-map')
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        task('item', (x: number) => {
          if (x === 7) throw new Error('seven');
          return x;
        }),
        { maxConcurrency: 3 },
      )
      .build();
    const r = await runWorkflow(f, 10);
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ taskKey: 'items[7]', message: 'seven' });
  });

  it('a cancel stops the map: no item starts after it', async () => {
    let started = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const f = flow<number>('cancelled-map')
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        async (x: number) => {
          started++;
          await gate;
          return x;
        },
        { maxConcurrency: 2 },
      )
      .build();
    const h = startWorkflow(f, 100);
    while (started < 2) await new Promise((r) => setTimeout(r, 1));
    await h.cancel('enough');
    release();
    const r = await h.result();
    expect(r.status).toBe('CANCELLED');
    await new Promise((res) => setTimeout(res, 50));
    expect(started).toBe(2);
  });

  it('a pause holds the items that come next; a resume runs them and the map completes', async () => {
    let running = 0;
    let release: () => void = () => undefined;
    let gate = new Promise<void>((r) => (release = r));
    const f = flow<number>('paused-map')
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        async (x: number) => {
          running++;
          await gate;
          return x + 1;
        },
        { maxConcurrency: 2 },
      )
      .build();
    const h = startWorkflow(f, 6);
    while (running < 2) await new Promise((r) => setTimeout(r, 1));
    await h.pause();
    const open = release;
    gate = Promise.resolve();
    open();
    await h.idle();
    await new Promise((res) => setTimeout(res, 20));
    // The two running items finished; what they started was held, not run.
    expect(running).toBe(2);
    await h.resume();
    const r = await h.result();
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual([1, 2, 3, 4, 5, 6]);
    expect(running).toBe(6);
  });

  it('skipping an item that failed for good counts it: the run reopens and the map completes with the given output', async () => {
    const f = flow<number>('skipped-map')
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        task('item', (x: number) => {
          if (x === 3) throw new TerminalError('three');
          return x;
        }),
        { maxConcurrency: 2 },
      )
      .build();
    const h = startWorkflow(f, 6);
    const failed = await h.result();
    expect(failed.status).toBe('FAILED');
    await h.skipTask('items[3]', 30);
    const r = await h.result();
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual([0, 1, 2, 30, 4, 5]);
  });
});
