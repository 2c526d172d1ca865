import { describe, expect, it } from 'vitest';
import {
  branch,
  FakeClock,
  flow,
  MemoryDeadLetterStore,
  MemoryInstanceStore,
  runWorkflow,
  startWorkflow,
  TerminalError,
  task,
} from '../../../shared/index.ts';
import { drive } from './drive.ts';
import { entries, events, range } from './lanes-support.ts';

/**
 * A route in a map item or a fork branch whose every branch starts and ends
 * with a task runs in the child's lane: its key function is a step of the
 * lane (its output put by its id), the branch its key names follows in the
 * lane on the route's input, and the step after the route on the branch's
 * last output. What the run's journal holds per child is counted here.
 */

/** pre, a route on parity (even: two tasks; odd: one), post. */
function parity(options: { readonly odd?: (x: number) => number } = {}) {
  return flow<number>('item')
    .then('pre', (x: number) => x + 1)
    .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'which' })
    .branch(
      'even',
      flow<number>('evens')
        .then('half', (x: number) => x / 2)
        .then('plus', (x: number) => x + 100)
        .build(),
    )
    .branch('odd', task('triple', options.odd ?? ((x: number) => x * 3)))
    .done()
    .then('post', (x: number) => x * 10)
    .build();
}
const expected = (i: number) => {
  const x = i + 1;
  return (x % 2 === 0 ? x / 2 + 100 : x * 3) * 10;
};

describe('map items with a route', () => {
  it('run the route and the branch its key chose in their lanes: the journal holds the map start and its end', async () => {
    const store = new MemoryInstanceStore();
    const mapped = flow<number>('routed-map').map('items', range, parity(), { maxConcurrency: 3 }).build();
    const r = await runWorkflow(mapped, 8, { store });
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual(range(8).map(expected));
    expect(entries(await events(store, r.instanceId))).toEqual(['task-completed items', 'lanes-joined items']);
    // The key, the chosen branch's tasks and the step after the route put their outputs by id, once; no other branch ran.
    const puts = (i: number) =>
      [...store.commits.keys()]
        .filter((k) => k.startsWith(`${r.instanceId}|out:items[${i}]/`))
        .map((k) => k.slice(`${r.instanceId}|out:items[${i}]/`.length))
        .sort();
    expect(puts(0)).toEqual(['post', 'pre', 'triple', 'which']);
    expect(puts(1)).toEqual(['post', 'pre', 'which', 'which.even/half', 'which.even/plus']);
    expect([...store.commits.values()].every((n) => n === 1)).toBe(true);
    expect((await store.getValues(r.instanceId, ['out:items[1]/which'])).get('out:items[1]/which')).toBe('even');
  });

  it('a body that starts with a route runs in lanes too', async () => {
    const store = new MemoryInstanceStore();
    const body = flow<number>('first')
      .route((x: number) => (x > 2 ? 'big' : 'small'), ['big', 'small'] as const, { id: 'size' })
      .branch('big', (x: number) => `big ${x}`)
      .branch('small', (x: number) => `small ${x}`)
      .done()
      .then('shout', (s: string) => s.toUpperCase())
      .build();
    const r = await runWorkflow(flow<number>('first-route').map('items', range, body).build(), 5, { store });
    expect(r.output).toEqual(['SMALL 0', 'SMALL 1', 'SMALL 2', 'BIG 3', 'BIG 4']);
    expect(entries(await events(store, r.instanceId))).toEqual(['task-completed items', 'lanes-joined items']);
  });

  it('a delay between two tasks of a branch parks the item on a lane timer, and a failed branch task retries in the lane', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    const failed = new Set<number>();
    const body = flow<number>('slow')
      .then('pre', (x: number) => x)
      .route((x: number) => (x % 2 === 0 ? 'wait' : 'flaky'), ['wait', 'flaky'] as const, { id: 'pick' })
      .branch(
        'wait',
        flow<number>('waits')
          .then('w1', (x: number) => x)
          .delay('rest', '1h')
          .then('w2', (x: number) => x + 1)
          .build(),
      )
      .branch(
        'flaky',
        task(
          'shaky',
          (x: number) => {
            if (!failed.has(x)) {
              failed.add(x);
              throw new Error('once');
            }
            return x - 1;
          },
          { retry: { maxAttempts: 2, initialDelay: '1m', jitter: 'none' } },
        ),
      )
      .done()
      .then('post', (x: number) => x * 2)
      .build();
    const h = startWorkflow(flow<number>('slow-map').map('items', range, body, { maxConcurrency: 2 }).build(), 4, {
      clock,
      store,
    });
    const r = await drive(h, clock);
    expect(r.output).toEqual([2, 0, 6, 4]);
    expect(entries(await events(store, h.instanceId))).toEqual(['task-completed items', 'lanes-joined items']);
    const timers = await store.listTimers(h.instanceId, '');
    expect(timers.map((t) => t.id).sort()).toEqual([
      'items[0]/pick.wait/rest',
      'items[1]/shaky#2',
      'items[2]/pick.wait/rest',
      'items[3]/shaky#2',
    ]);
    expect(timers.every((t) => t.firedAt !== undefined)).toBe(true);
  });

  it('a key with no branch fails the run with RouteKeyError, through the journal; a key that is not a string, with its TerminalError', async () => {
    const store = new MemoryInstanceStore();
    const keyed = (key: (x: number) => unknown) =>
      flow<number>('keyed')
        .map(
          'items',
          range,
          flow<number>('item')
            .then('pre', (x: number) => x)
            .route(key as (x: number) => 'a' | 'b', ['a', 'b'] as const, { id: 'k' })
            .branch('a', (x: number) => x)
            .branch('b', (x: number) => x)
            .done()
            .then('post', (x: number) => x)
            .build(),
        )
        .build();
    const missing = await runWorkflow(
      keyed((x) => (x === 1 ? 'c' : 'a')),
      3,
      { store },
    );
    expect(missing.status).toBe('FAILED');
    expect(missing.error).toMatchObject({ name: 'RouteKeyError', taskKey: 'items[1]/k' });
    const wrong = await runWorkflow(
      keyed((x) => (x === 2 ? 7 : 'b')),
      3,
      { store },
    );
    expect(wrong.status).toBe('FAILED');
    expect(wrong.error).toMatchObject({ taskKey: 'items[2]/k' });
    expect(wrong.error?.message).toMatch(/expected a string/);
  });

  it("a branch's last task retried by an operator completes in the frontier, then the item goes back to its lane after the route", async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    const deadLetters = new MemoryDeadLetterStore();
    let down = true;
    const ran: string[] = [];
    const body = flow<number>('item')
      .then('pre', (x: number) => x + 1)
      .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'which' })
      .branch('even', (x: number) => x / 2)
      .branch('odd', (x: number) => {
        if (x === 3 && down) throw new TerminalError('down');
        return x * 3;
      })
      .done()
      .then('post', (x: number, ctx) => {
        ran.push(ctx.taskKey);
        return x * 10;
      })
      .build();
    const h = startWorkflow(flow<number>('operated').map('items', range, body).build(), 4, {
      clock,
      store,
      deadLetters,
    });
    expect((await drive(h, clock)).status).toBe('FAILED');
    down = false;
    await h.retryTask('items[2]/which.odd');
    const r = await drive(h, clock);
    expect(r.output).toEqual([30, 10, 90, 20]);
    const completed = (await events(store, h.instanceId)).flatMap((e) => (e.type === 'task-completed' ? [e.key] : []));
    expect(completed).toEqual(['items', 'items[2]/which.odd']);
    expect(ran.filter((k) => k === 'items[2]/post')).toHaveLength(1);
  });

  it('a route whose branch starts with a delay does not run in the lane: the item joins the frontier for it', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    const body = flow<number>('item')
      .then('pre', (x: number) => x)
      .route((x: number) => (x === 0 ? 'later' : 'now'), ['later', 'now'] as const, { id: 'when' })
      .branch(
        'later',
        flow<number>('later')
          .delay('wait', '1h')
          .then('l', (x: number) => x + 1)
          .build(),
      )
      .branch('now', (x: number) => x + 2)
      .done()
      .then('post', (x: number) => x * 10)
      .build();
    const h = startWorkflow(flow<number>('mixed').map('items', range, body).build(), 2, { clock, store });
    const r = await drive(h, clock);
    expect(r.output).toEqual([10, 30]);
    const es = await events(store, h.instanceId);
    const joins = es.flatMap((e) => (e.type === 'task-completed' && e.lane ? [e.key] : []));
    expect(joins).toEqual(['items[0]/pre', 'items[1]/pre']);
  });
});

describe('fork branches with a route', () => {
  it('run it in their lanes', async () => {
    const store = new MemoryInstanceStore();
    const forked = flow<number>('routed-fork')
      .fork([branch('p', parity()), branch('q', parity())])
      .join('j', ([p, q]: [number, number]) => p + q)
      .build();
    const r = await runWorkflow(forked, 3, { store });
    expect(r.output).toBe(2 * expected(3));
    expect(entries(await events(store, r.instanceId))).toEqual(['lanes-joined j', 'task-completed j']);
  });
});
