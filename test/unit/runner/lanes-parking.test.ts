import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../../shared/engine/snapshot.ts';
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
import { events, range } from './lanes-support.ts';

/**
 * Map items and fork branches whose body has a step that is not a task (a
 * delay, a signal wait, a nested fork...) run in lanes too: a child runs
 * its tasks in its lane, and parks on a lane timer for a delay between two
 * tasks (or first); for another such step, it joins the frontier with the
 * commit of the task before it, and goes back to its lane after the first
 * task that follows it. What the run's journal holds per child is counted
 * here.
 */

const completedKeys = (es: readonly RunEvent[]) =>
  es.flatMap((e) => (e.type === 'task-completed' ? [`${e.key}${e.lane ? ' (joins)' : ''}`] : []));

describe('children with a delay run in lanes around it', () => {
  const body = flow<number>('item')
    .then('a', (x: number) => x + 1)
    .then('b', (x: number) => x * 2)
    .delay('rest', '1h')
    .then('c', (x: number) => x + 3)
    .then('d', (x: number) => x * 10)
    .build();
  const parked = flow<number>('parked-map')
    .map('items', range, body, { maxConcurrency: 4 })
    .then('sum', (xs: number[]) => xs.reduce((s, x) => s + x, 0))
    .build();
  const expected = (n: number) => Array.from({ length: n }, (_, i) => ((i + 1) * 2 + 3) * 10).reduce((s, x) => s + x);

  it('each item parks on a lane timer: the journal holds nothing of the items, only the map start and its end', async () => {
    const store = new MemoryInstanceStore();
    const n = 12;
    const r = await runWorkflow(parked, n, { store });
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toBe(expected(n));
    const es = await events(store, r.instanceId);
    expect(completedKeys(es).filter((k) => k.startsWith('items['))).toEqual([]);
    expect(es.filter((e) => e.type === 'timer-fired')).toEqual([]);
    // One timer per item, each fired once, an hour after it was put.
    const timers = await store.listTimers(r.instanceId, '');
    expect(timers.map((t) => t.id).sort()).toEqual(Array.from({ length: n }, (_, i) => `items[${i}]/rest`).sort());
    expect(timers.every((t) => t.parent === 'items' && t.firedAt !== undefined && t.firedAt >= t.dueAt)).toBe(true);
    // Besides the reaper's looks at the map (one per check period, however many items), the map's start, its end and the sum.
    expect(es.filter((e) => e.type !== 'lanes-checked').map((e) => `${e.type} ${'key' in e ? e.key : ''}`)).toEqual([
      'task-completed items',
      'lanes-joined items',
      'task-completed sum',
    ]);
    // a, c and d ran in the items' lanes: their outputs were put by id, once each; each delay was marked once.
    for (let i = 0; i < n; i++) {
      for (const step of ['a', 'b', 'rest', 'c', 'd'])
        expect(store.commits.get(`${r.instanceId}|out:items[${i}]/${step}`)).toBe(1);
    }
    expect(es.filter((e) => e.type === 'lanes-joined')).toHaveLength(1);
  });

  it('a child parked on its delay is not taken for a stalled one: the reaper restarts nothing', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    let started = 0;
    const counting = flow<number>('counted-map')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('a', (x: number) => {
            started++;
            return x;
          })
          .delay('rest', '6h')
          .then('c', (x: number) => x + 1)
          .build(),
        { maxConcurrency: 3 },
      )
      .build();
    const h = startWorkflow(counting, 3, { clock, store });
    const r = await drive(h, clock);
    expect(r.output).toEqual([1, 2, 3]);
    // Six hours of reaper passes over the map's lanes, and each item's first task ran once.
    expect(started).toBe(3);
  });
});

describe('children that end with a delay', () => {
  const HOUR = 3_600_000;
  const cooled = (log: string[], failing: () => boolean) =>
    flow<number>('cooled')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('call', (x: number) => {
            log.push(`call${x}`);
            if (x === 1 && failing()) throw new TerminalError('down');
            return x * 3;
          })
          .delay('cool', '1h')
          .build(),
        { maxConcurrency: 2 },
      )
      .then('sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
      .build();

  it('park on their last delay: its end puts the result and counts the item, with nothing per item in the journal', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    const log: string[] = [];
    const h = startWorkflow(
      cooled(log, () => false),
      5,
      { clock, store },
    );
    const r = await drive(h, clock);
    expect(r.output).toBe(30);
    expect(log.sort()).toEqual(['call0', 'call1', 'call2', 'call3', 'call4']);
    const es = await events(store, h.instanceId);
    expect(es.filter((e) => 'key' in e && e.key.startsWith('items['))).toEqual([]);
    // Each item's result is its call's output, put under the delay's id, once; the window moved an hour at a time.
    for (let i = 0; i < 5; i++) expect(store.commits.get(`${h.instanceId}|out:items[${i}]/cool`)).toBe(1);
    expect((await store.getValues(h.instanceId, ['out:items[4]/cool'])).get('out:items[4]/cool')).toBe(12);
    expect(clock.now()).toBeGreaterThanOrEqual(3 * HOUR);
    expect((await store.listTimers(h.instanceId, '')).every((t) => t.firedAt !== undefined)).toBe(true);
  });

  it('an item whose task ran in the frontier (a retry after it failed for good) ends its delay there: the reaper puts its result and counts it', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    const log: string[] = [];
    let failing = true;
    const h = startWorkflow(
      cooled(log, () => failing),
      3,
      { clock, store },
    );
    const failed = await drive(h, clock);
    expect(failed.status).toBe('FAILED');
    failing = false;
    await h.retryTask('items[1]/call');
    const r = await drive(h, clock);
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toBe(9);
    // Item 1's delay waited in the frontier: no lane timer of its own, one timer entry in the journal.
    expect((await store.listTimers(h.instanceId, '')).map((t) => t.id).sort()).toEqual([
      'items[0]/cool',
      'items[2]/cool',
    ]);
    const fired = (await events(store, h.instanceId)).filter((e) => e.type === 'timer-fired');
    expect(fired).toEqual([{ type: 'timer-fired', key: 'items[1]/cool' }]);
    expect(store.commits.get(`${h.instanceId}|out:items[1]/cool`)).toBe(1);
  });
});

describe('children with a signal wait', () => {
  it('each item waits for its signal in its lane: nothing of the items is in the journal but the signals', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryInstanceStore();
    const approvals = flow<number>('approvals')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('ask', (x: number) => x)
          .waitForSignal<{ ok: boolean }>('approved', 'approve')
          .then('apply', (a: { ok: boolean }) => (a.ok ? 'yes' : 'no'))
          .then('log', (s: string) => s.toUpperCase())
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
    const h = startWorkflow(approvals, 3, { clock, store });
    await h.idle();
    for (const ok of [true, false, true]) {
      await h.signal('approve', { ok });
      await h.idle();
    }
    const r = await drive(h, clock);
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual(['YES', 'NO', 'YES']);
    const all = await events(store, h.instanceId);
    expect(completedKeys(all)).toEqual(['items']);
    // Each signal's entry gave it to a waiting item, in the order they parked.
    expect(all.flatMap((e) => (e.type === 'signal' ? [e.toLane?.wait] : []))).toEqual([
      'items[0]/approved',
      'items[1]/approved',
      'items[2]/approved',
    ]);
  });
});

describe('children with a nested fork', () => {
  it('a map item whose body forks runs the fork in its lane too: the journal holds nothing of the items', async () => {
    const store = new MemoryInstanceStore();
    const nested = flow<number>('nested')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('pre', (x: number) => x + 1)
          .fork([branch('l', (x: number) => x * 2), branch('r', (x: number) => x * 3)])
          .join('j', ([l, r]: [number, number]) => l + r)
          .then('post', (x: number) => x - 1)
          .then('last', (x: number) => x * 100)
          .build(),
        { maxConcurrency: 3 },
      )
      .build();
    const r = await runWorkflow(nested, 5, { store });
    expect(r.output).toEqual([0, 1, 2, 3, 4].map((x) => ((x + 1) * 5 - 1) * 100));
    const journal = await events(store, r.instanceId);
    expect(completedKeys(journal)).toEqual(['items']);
    expect(journal.map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    // Each item's fork had its own counter, and looks that ended with it.
    for (let i = 0; i < 5; i++) expect(await store.getCounter(r.instanceId, `lanes:items[${i}]/j`)).toBe(2);
  });

  it('a fork branch with a delay runs in its lane around it', async () => {
    const store = new MemoryInstanceStore();
    const f = flow<number>('branchy')
      .fork([
        branch('quick', (x: number) => x + 1),
        branch(
          'slow',
          flow<number>('slow')
            .then('s1', (x: number) => x * 2)
            .delay('nap', '10m')
            .then('s2', (x: number) => x + 5)
            .then('s3', (x: number) => x * 3)
            .build(),
        ),
      ])
      .join('both', ([q, s]: [number, number]) => q + s)
      .build();
    const r = await runWorkflow(f, 4, { store });
    expect(r.output).toBe(5 + (4 * 2 + 5) * 3);
    const keys = completedKeys(await events(store, r.instanceId));
    expect(keys.filter((k) => k.startsWith('slow/'))).toEqual([]);
    expect((await store.listTimers(r.instanceId, '')).map((t) => [t.id, t.parent, t.item])).toEqual([
      ['slow/nap', 'both', 1],
    ]);
  });
});

describe('a child whose step fails', () => {
  it('is retried in its lane, on a lane timer: the journal holds nothing of it', async () => {
    const store = new MemoryInstanceStore();
    const f = flow<number>('flaky-tail')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('a', (x: number) => x)
          .then(
            task(
              'b',
              (x: number, ctx) => {
                if (x === 1 && ctx.attempt === 1) throw new Error('once');
                return x + 1;
              },
              { retry: { maxAttempts: 2, initialDelay: '1s', jitter: 'none' } },
            ),
          )
          .then('c', (x: number) => x * 2)
          .build(),
        { maxConcurrency: 3 },
      )
      .build();
    const r = await runWorkflow(f, 3, { store });
    expect(r.output).toEqual([2, 4, 6]);
    const es = await events(store, r.instanceId);
    expect(es.filter((e) => 'key' in e && e.key.startsWith('items['))).toEqual([]);
    expect((await store.listTimers(r.instanceId, '')).map((t) => [t.id, t.item, t.retry?.attempt])).toEqual([
      ['items[1]/b#2', 1, 2],
    ]);
  });

  it('that fails for good joins the frontier and fails the run; its dead letter lists every attempt', async () => {
    const clock = new FakeClock(0);
    const deadLetters = new MemoryDeadLetterStore();
    const f = flow<number>('hopeless-item')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('a', (x: number) => x)
          .then(
            task(
              'b',
              (x: number, ctx) => {
                if (x === 1) throw new Error(`no ${ctx.attempt}`);
                return x;
              },
              { retry: { maxAttempts: 3, initialDelay: '1m', jitter: 'none' } },
            ),
          )
          .build(),
        { maxConcurrency: 3 },
      )
      .build();
    const store = new MemoryInstanceStore();
    const r = await drive(startWorkflow(f, 3, { clock, store, deadLetters }), clock);
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ taskKey: 'items[1]/b', attempts: 3, message: 'no 3' });
    // Two retries in the lane, the last failure through the journal.
    const failed = (await events(store, r.instanceId)).filter((e) => e.type === 'task-failed');
    expect(failed.map((e) => (e.type === 'task-failed' ? [e.key, e.attempt] : []))).toEqual([['items[1]/b', 3]]);
    const [letter] = (await deadLetters.list('default')).letters;
    const history = letter?.origin === 'engine' ? letter.attemptHistory : undefined;
    expect(history?.map((a) => [a.attempt, a.error?.message])).toEqual([
      [1, 'no 1'],
      [2, 'no 2'],
      [3, 'no 3'],
    ]);
  });
});

describe('control of a map whose items park', () => {
  const HOUR = 3_600_000;
  const body = (log: string[]) =>
    flow<number>('item')
      .then('a', (x: number) => {
        log.push(`a${x}`);
        return x;
      })
      .delay('rest', '1h')
      .then('b', (x: number) => {
        log.push(`b${x}`);
        return x + 1;
      })
      .then('c', (x: number) => x * 2)
      .build();

  it('a cancel while the items wait on their delay: no task runs after it', async () => {
    const clock = new FakeClock(0);
    const log: string[] = [];
    const f = flow<number>('cancel-parked').map('items', range, body(log), { maxConcurrency: 2 }).build();
    const h = startWorkflow(f, 4, { clock });
    await h.idle();
    expect(log.sort()).toEqual(['a0', 'a1']);
    await h.cancel('enough');
    const r = await drive(h, clock);
    expect(r.status).toBe('CANCELLED');
    clock.advance(2 * HOUR);
    await h.idle();
    expect(log.sort()).toEqual(['a0', 'a1']);
  });

  it('a pause over the end of the delays holds the items; a resume sends them back to their lanes and the map completes', async () => {
    const clock = new FakeClock(0);
    const log: string[] = [];
    const store = new MemoryInstanceStore();
    const f = flow<number>('pause-parked').map('items', range, body(log), { maxConcurrency: 3 }).build();
    const h = startWorkflow(f, 3, { clock, store });
    await h.idle();
    await h.pause();
    clock.advance(HOUR);
    await h.idle();
    await new Promise((r) => setTimeout(r, 20));
    // The delays ended during the pause: the tasks after them wait in the frontier, not run.
    expect(log.filter((x) => x.startsWith('b'))).toEqual([]);
    const held = await store.get(h.instanceId);
    expect(Object.values(held?.tasks ?? {}).map((t) => [t.qid, t.state])).toEqual([
      ['items[]/b', 'ready'],
      ['items[]/b', 'ready'],
      ['items[]/b', 'ready'],
    ]);
    await h.resume();
    const r = await drive(h, clock);
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual([2, 4, 6]);
    expect(log.filter((x) => x.startsWith('b')).sort()).toEqual(['b0', 'b1', 'b2']);
  });

  it("a pause over the end of a retry's backoff holds the retried attempt; a resume runs it, and the map completes", async () => {
    const clock = new FakeClock(0);
    const attempts: string[] = [];
    const store = new MemoryInstanceStore();
    const f = flow<number>('pause-retry')
      .map(
        'items',
        range,
        flow<number>('item')
          .then(
            task(
              'a',
              (x: number, ctx) => {
                attempts.push(`a${x}@${ctx.attempt}`);
                if (x === 1 && ctx.attempt === 1) throw new Error('busy');
                return x;
              },
              { retry: { maxAttempts: 3, initialDelay: '1h', jitter: 'none' } },
            ),
          )
          .then('b', (x: number) => x * 2)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
    const h = startWorkflow(f, 2, { clock, store });
    await h.idle();
    expect((await store.listTimers(h.instanceId, '')).map((t) => [t.id, t.firedAt])).toEqual([
      ['items[1]/a#2', undefined],
    ]);
    await h.pause();
    clock.advance(HOUR);
    await h.idle();
    await new Promise((r) => setTimeout(r, 20));
    // The backoff ended during the pause: attempt 2 waits in the frontier, held, not run.
    expect(attempts.sort()).toEqual(['a0@1', 'a1@1']);
    const held = await store.get(h.instanceId);
    expect(Object.entries(held?.tasks ?? {}).map(([k, t]) => [k, t.attempt, t.state])).toEqual([
      ['items[1]/a', 2, 'ready'],
    ]);
    await h.resume();
    const r = await drive(h, clock);
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual([0, 2]);
    expect(attempts.sort()).toEqual(['a0@1', 'a1@1', 'a1@2']);
  });

  it('an item whose task after the delay fails for good fails the run; a retry of it finishes the map', async () => {
    const clock = new FakeClock(0);
    let failing = true;
    const f = flow<number>('retry-parked')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('a', (x: number) => x)
          .delay('rest', '1h')
          .then(
            task('b', (x: number) => {
              if (x === 1 && failing) throw new TerminalError('not yet');
              return x + 10;
            }),
          )
          .then('c', (x: number) => x * 2)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
    const h = startWorkflow(f, 3, { clock });
    const failed = await drive(h, clock);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatchObject({ taskKey: 'items[1]/b' });
    failing = false;
    await h.retryTask('items[1]/b');
    const r = await drive(h, clock);
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual([20, 22, 24]);
  });
});

describe('children that start with a delay', () => {
  const throttled = (log: string[]) =>
    flow<number>('throttled')
      .map(
        'items',
        range,
        flow<number>('item')
          .delay('throttle', '1m')
          .then('call', (x: number) => {
            log.push(`call${x}`);
            return x * 3;
          })
          .then('keep', (x: number) => x + 1)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();

  it('the first window waits in the frontier, the later children on lane timers put by the counts; all run their tasks in their lanes', async () => {
    const store = new MemoryInstanceStore();
    const log: string[] = [];
    const r = await runWorkflow(throttled(log), 5, { store });
    expect(r.output).toEqual([1, 4, 7, 10, 13]);
    expect(log.sort()).toEqual(['call0', 'call1', 'call2', 'call3', 'call4']);
    const es = await events(store, r.instanceId);
    expect(completedKeys(es).filter((k) => k.startsWith('items['))).toEqual([]);
    // The first window starts with the map; the three others each on the timer the count that made room put.
    expect(es.filter((e) => e.type === 'lanes-started')).toEqual([]);
    expect(es.filter((e) => e.type === 'timer-fired')).toHaveLength(2);
    const timers = await store.listTimers(r.instanceId, '');
    expect(timers.map((t) => [t.id, t.item, t.firedAt !== undefined])).toEqual([
      ['items[2]/throttle', 2, true],
      ['items[3]/throttle', 3, true],
      ['items[4]/throttle', 4, true],
    ]);
  });

  it('a child whose start was lost (the writer died between the count and its timer) is started by the reaper', async () => {
    const store = new (class extends MemoryInstanceStore {
      failed = 0;
      override async putTimer(...args: Parameters<MemoryInstanceStore['putTimer']>) {
        if (this.failed === 0) {
          this.failed++;
          throw new Error('the writer died');
        }
        return super.putTimer(...args);
      }
    })();
    const log: string[] = [];
    const r = await runWorkflow(throttled(log), 3, { store });
    expect(store.failed).toBe(1);
    expect(r.output).toEqual([1, 4, 7]);
    expect(log.sort()).toEqual(['call0', 'call1', 'call2']);
  });
});
