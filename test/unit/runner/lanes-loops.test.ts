import { describe, expect, it } from 'vitest';
import {
  branch,
  FakeClock,
  flow,
  LoopResult,
  MemoryInstanceStore,
  runWorkflow,
  startWorkflow,
  TerminalError,
  task,
} from '../../../shared/index.ts';
import { drive } from './drive.ts';
import { entries, events, range } from './lanes-support.ts';

/**
 * A loop in a map item or a fork branch runs in the child's lane: each
 * iteration puts its output by its id (`<key>@<iteration>`), the next
 * iteration follows in the lane on its value, and the step after the loop
 * on the last one's. What the run's journal holds per child is counted here.
 */

/** Counts `x` down to 0, adding each value to `acc`. */
const countdown = (s: { left: number; acc: number }) =>
  s.left <= 0 ? LoopResult.done(s.acc) : LoopResult.again({ left: s.left - 1, acc: s.acc + s.left });

describe('map items with a loop', () => {
  it('run every iteration in their lanes: the journal holds the map start and its end', async () => {
    const store = new MemoryInstanceStore();
    const body = flow<number>('item')
      .then('pre', (x: number) => ({ left: x, acc: 0 }))
      .loop(countdown, { id: 'sum', maxIterations: 10 })
      .then('post', (x: number) => x * 10)
      .build();
    const r = await runWorkflow(
      flow<number>('looped-map').map('items', range, body, { maxConcurrency: 3 }).build(),
      6,
      {
        store,
      },
    );
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual(range(6).map((n) => ((n * (n + 1)) / 2) * 10));
    expect(entries(await events(store, r.instanceId))).toEqual(['task-completed items', 'lanes-joined items']);
    // Item 4 ran five iterations (4, 3, 2, 1 left, then done), each output put by its id once.
    for (let i = 0; i <= 4; i++) expect(store.commits.get(`${r.instanceId}|out:items[4]/sum@${i}`)).toBe(1);
    expect(store.commits.get(`${r.instanceId}|out:items[4]/sum@5`)).toBeUndefined();
  });

  it('a body that starts with a loop runs in lanes too; a bound reached with onMax exit goes on with the last value', async () => {
    const store = new MemoryInstanceStore();
    const body = flow<number>('item')
      .loop((x: number) => LoopResult.again(x + 1), { id: 'climb', maxIterations: 3, onMax: 'exit' })
      .then('post', (x: number) => x * 2)
      .build();
    const r = await runWorkflow(flow<number>('capped').map('items', range, body).build(), 3, { store });
    expect(r.output).toEqual([6, 8, 10]);
    expect(entries(await events(store, r.instanceId))).toEqual(['task-completed items', 'lanes-joined items']);
  });

  it('a bound reached with onMax fail fails the run with LoopLimitError on that iteration, through the journal', async () => {
    const store = new MemoryInstanceStore();
    const body = flow<number>('item')
      .then('pre', (x: number) => x)
      .loop((x: number) => (x === 1 ? LoopResult.again(x) : LoopResult.done(x)), { id: 'spin', maxIterations: 3 })
      .then('post', (x: number) => x)
      .build();
    const r = await runWorkflow(flow<number>('spinning').map('items', range, body).build(), 3, { store });
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ name: 'LoopLimitError', taskKey: 'items[1]/spin@2' });
  });

  it('a body that does not return a LoopResult fails the run with its TerminalError', async () => {
    const store = new MemoryInstanceStore();
    const body = flow<number>('item')
      .then('pre', (x: number) => x)
      .loop(((x: number) => (x === 2 ? x : LoopResult.done(x))) as (x: number) => LoopResult<number, number>, {
        id: 'odd',
        maxIterations: 3,
      })
      .then('post', (x: number) => x)
      .build();
    const r = await runWorkflow(flow<number>('odd-loop').map('items', range, body).build(), 3, { store });
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ taskKey: 'items[2]/odd@0' });
    expect(r.error?.message).toMatch(/LoopResult/);
  });

  it('an iteration that fails is retried in the lane, on a lane timer, and the loop goes on', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    const failed = new Set<string>();
    const body = flow<number>('item')
      .then('pre', (x: number) => ({ left: x, acc: 0 }))
      .loop(
        task(
          'sum',
          (s: { left: number; acc: number }, ctx) => {
            if (s.left === 1 && !failed.has(ctx.taskKey)) {
              failed.add(ctx.taskKey);
              throw new Error('flaky');
            }
            return countdown(s);
          },
          { retry: { maxAttempts: 2, initialDelay: '1m', jitter: 'none' } },
        ),
        { maxIterations: 10 },
      )
      .then('post', (x: number) => x)
      .build();
    const h = startWorkflow(flow<number>('retried-loop').map('items', range, body).build(), 4, { clock, store });
    const r = await drive(h, clock);
    expect(r.output).toEqual([0, 1, 3, 6]);
    expect(entries(await events(store, h.instanceId))).toEqual(['task-completed items', 'lanes-joined items']);
    // The iteration with one left failed once in each item that reached it: items 1, 2 and 3.
    expect((await store.listTimers(h.instanceId, '')).map((t) => t.id).sort()).toEqual([
      'items[1]/sum@0#2',
      'items[2]/sum@1#2',
      'items[3]/sum@2#2',
    ]);
  });

  it('an iteration retried by an operator after it failed for good goes on in the frontier, then the item goes back to its lane', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    let down = true;
    const ran: string[] = [];
    const body = flow<number>('item')
      .then('pre', (x: number) => ({ left: x, acc: 0 }))
      .loop(
        (s: { left: number; acc: number }) => {
          if (s.left === 2 && down) throw new TerminalError('down');
          return countdown(s);
        },
        { id: 'sum', maxIterations: 10 },
      )
      .then('post', (x: number, ctx) => {
        ran.push(ctx.taskKey);
        return x;
      })
      .build();
    const h = startWorkflow(flow<number>('operated-loop').map('items', range, body).build(), 4, { clock, store });
    const failed = await drive(h, clock);
    expect(failed.status).toBe('FAILED');
    expect(failed.error?.taskKey).toBe('items[2]/sum@0');
    down = false;
    await h.retryTask('items[2]/sum@0');
    const r = await drive(h, clock);
    expect(r.output).toEqual([0, 1, 3, 6]);
    // Item 2's loop went on in the frontier after the retry (sum@0, sum@1, sum@2 done); post ran in its lane, once.
    const completed = (await events(store, h.instanceId)).flatMap((e) => (e.type === 'task-completed' ? [e.key] : []));
    expect(completed).toEqual(['items', 'items[2]/sum@0', 'items[2]/sum@1', 'items[2]/sum@2']);
    expect(ran.filter((k) => k === 'items[2]/post')).toHaveLength(1);
  });
});

describe('fork branches with a loop', () => {
  it('run it in their lanes', async () => {
    const store = new MemoryInstanceStore();
    const looping = flow<number>('looping')
      .then('pre', (x: number) => ({ left: x, acc: 0 }))
      .loop(countdown, { id: 'sum', maxIterations: 10 })
      .then('post', (x: number) => x)
      .build();
    const forked = flow<number>('looped-fork')
      .fork([branch('p', looping), branch('q', (x: number) => x)])
      .join('j', ([p, q]: [number, number]) => p + q)
      .build();
    const r = await runWorkflow(forked, 4, { store });
    expect(r.output).toBe(10 + 4);
    expect(entries(await events(store, r.instanceId))).toEqual(['lanes-joined j', 'task-completed j']);
  });
});
