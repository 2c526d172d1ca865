import { describe, expect, it } from 'vitest';
import { forkInputId } from '../../../shared/engine/lanes.ts';
import { branch, flow, LoopResult, type TaskOptions, task } from '../../../shared/index.ts';
import { WorkerKilledError } from '../../../shared/runtime/worker.ts';
import { harness, REDISPATCH_MS } from './lane-harness.ts';

/**
 * A fork that is a step of a map item or a fork branch run in lanes, right
 * after a task, runs in that child's lane (`laneFork`): its branches start
 * from the task's output as a group of lanes of their own, its join runs in
 * the child's lane when the last branch is counted, and nothing of it is
 * committed to the run's journal. Its look is a lane timer of the child;
 * anything of it the reducer must judge (a failure for good, a hold, a
 * step that needs the run's state) first makes it join the frontier.
 */

/** An item's body: `pre`, a fork of `l` (`l1`, `l2`) and `r`, joined by `j`, then `post`. */
function itemBody(r: (x: number) => number, rOptions: TaskOptions<number, number> = {}) {
  return flow<number>('item')
    .then('pre', (x: number) => x + 1)
    .fork([
      branch(
        'l',
        flow<number>('l')
          .then('l1', (x: number) => x * 2)
          .then('l2', (x: number) => x + 1)
          .build(),
      ),
      branch('r', task('r', r, rOptions)),
    ])
    .join('j', ([l, r]: [number, number]) => l + r)
    .then('post', (x: number) => x * 10)
    .build();
}

/** A map of items `0..n-1` over `body`, two at a time. */
const mapOf = (name: string, body: ReturnType<typeof itemBody>) =>
  flow<number>(name)
    .map('items', (n: number) => Array.from({ length: n }, (_, i) => i), body, { maxConcurrency: 2 })
    .build();

/** What item `x` makes: ((x + 1) * 2 + 1 + (x + 1) * 3) * 10. */
const itemOutput = (x: number) => ((x + 1) * 2 + 1 + (x + 1) * 3) * 10;

/** Each item's tasks, once each: `items` itself and, per item, its seven steps. */
const onceEach = (n: number) =>
  [
    'items@1',
    ...Array.from({ length: n }, (_, i) =>
      ['pre', 'l/l1', 'l/l2', 'r', 'j', 'post'].map((s) => `items[${i}]/${s}@1`),
    ).flat(),
  ].sort();

const plain = mapOf(
  'fork-in-items',
  itemBody((x: number) => x * 3),
);

describe('a fork in a map item runs in the item’s lane', () => {
  it('with nothing of it in the journal: its branches count on a counter of their own, and its join runs in the lane', async () => {
    const h = harness(plain);
    await h.drain(await h.start(3, 'a'));
    expect(await h.output('a')).toEqual([0, 1, 2].map(itemOutput));
    expect((await h.journal('a')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    expect(h.ran.sort()).toEqual(onceEach(3));
    for (let i = 0; i < 3; i++) expect(await h.store.getCounter('a', `lanes:items[${i}]/j`)).toBe(2);
    // One look per fork, a timer of its item.
    const looks = (await h.store.listTimers('a', '')).filter((t) => t.look);
    expect(looks.map((t) => [t.id, t.parent, t.item, t.look?.group])).toEqual(
      [0, 1, 2].map((i) => [`items[${i}]/j~look~0`, 'items', i, `items[${i}]/j`]),
    );
    // Its looks find the fork done, send nothing, and put no next look.
    h.clock.advance(REDISPATCH_MS);
    await h.reap();
    expect(h.queue.sent).toEqual([]);
    const after = (await h.store.listTimers('a', '')).filter((t) => t.look);
    expect(after.map((t) => [t.id, t.firedAt !== undefined])).toEqual(
      [0, 1, 2].map((i) => [`items[${i}]/j~look~0`, true]),
    );
  });

  it('a branch whose message was lost is sent again by the fork’s look, within a redispatch period', async () => {
    const h = harness(plain);
    let drops = 0;
    h.setLost((d) => d.key === 'items[1]/r' && drops++ === 0);
    await h.drain(await h.start(2, 'b'));
    expect((await h.store.get('b'))?.status).toBe('RUNNING');
    h.clock.advance(REDISPATCH_MS - 1);
    await h.reap();
    expect(h.queue.sent).toEqual([]);
    h.clock.advance(1);
    await h.reap();
    expect(h.queue.sent.map((d) => [d.key, d.lane])).toEqual([['items[1]/r', { parent: 'items[1]/j', item: 1 }]]);
    await h.drain();
    expect(await h.output('b')).toEqual([0, 1].map(itemOutput));
    expect((await h.journal('b')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    expect(h.ran.sort()).toEqual(onceEach(2));
  });

  it('a join that no one ran (the worker that counted the last branch died before it) is sent by the look', async () => {
    const h = harness(plain);
    h.setFaults((phase, d) => {
      if (phase === 'dispatched' && d.key === 'items[0]/r') throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(1, 'j'));
    h.setFaults(() => undefined);
    expect(h.ran).not.toContain('items[0]/j@1');
    expect(await h.store.getCounter('j', 'lanes:items[0]/j')).toBe(2);
    h.clock.advance(REDISPATCH_MS);
    await h.reap();
    expect(h.queue.sent.map((d) => [d.key, d.lane?.parent, d.input])).toEqual([
      ['items[0]/j', 'items', { all: [{ v: 'out:items[0]/l/l2' }, { v: 'out:items[0]/r' }] }],
    ]);
    await h.drain();
    expect(await h.output('j')).toEqual([itemOutput(0)]);
    expect(h.ran.sort()).toEqual(onceEach(1));
  });

  it('a join no one ran, its queue backlogged: the look waits as long as a backlog explains it, then sends it', async () => {
    const h = harness(plain);
    h.setFaults((phase, d) => {
      if (phase === 'dispatched' && d.key === 'items[0]/r') throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(1, 'k'));
    h.setFaults(() => undefined);
    // Work is always waiting in the queues (a busy system): the look trusts the backlog for `maxQueueWaitMs`.
    h.queue.waiting = async () => 5;
    h.clock.advance(REDISPATCH_MS);
    await h.reap();
    expect(h.queue.sent).toEqual([]);
    h.clock.advance(30 * 60_000);
    await h.reap();
    expect(h.queue.sent.map((d) => d.key)).toEqual(['items[0]/j']);
    await h.drain();
    expect(await h.output('k')).toEqual([itemOutput(0)]);
  });

  it('the worker that put the step before the fork died before its look: the item’s look puts one, which starts the branches', async () => {
    const h = harness(plain);
    h.setFaults((phase, d) => {
      if (phase === 'checkpointed' && d.key === 'items[0]/pre') throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(2, 'c'));
    h.setFaults(() => undefined);
    expect(await h.store.listValueIds('c', 'out:items[0]/pre')).toEqual(['out:items[0]/pre']);
    expect((await h.store.listTimers('c', 'items[0]')).filter((t) => t.look)).toEqual([]);
    // The map looks at stalled items once its counter stood still for longer than an item may run.
    const s = await h.drive('c', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('c')).toEqual([0, 1].map(itemOutput));
    expect((await h.journal('c')).filter((e) => e.type === 'task-completed').map((e) => 'key' in e && e.key)).toEqual([
      'items',
    ]);
    expect((await h.store.listTimers('c', 'items[0]/j~look~')).map((t) => t.id)[0]).toBe('items[0]/j~look~0');
    // `pre` ran once: the fork started from its stored output.
    expect(h.ran.filter((r) => r.startsWith('items[0]/pre'))).toEqual(['items[0]/pre@1']);
  });

  it('a branch’s task that fails is retried in the branch’s lane, on a lane timer of the fork', async () => {
    let fails = 1;
    const h = harness(
      mapOf(
        'flaky-branch',
        itemBody(
          (x: number) => {
            if (fails-- > 0) throw new Error('not yet');
            return x * 3;
          },
          { retry: { maxAttempts: 2, initialDelay: '1m', jitter: 'none' } },
        ),
      ),
    );
    await h.drain(await h.start(1, 'd'));
    const [retry] = await h.store.listTimers('d', 'items[0]/r#');
    expect(retry).toMatchObject({ id: 'items[0]/r#2', parent: 'items[0]/j', item: 1, retry: { attempt: 2 } });
    const s = await h.drive('d', 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('d')).toEqual([itemOutput(0)]);
    expect((await h.journal('d')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    expect(h.ran.filter((r) => r.startsWith('items[0]/r'))).toEqual(['items[0]/r@1', 'items[0]/r@2']);
  });

  it('a branch’s task that fails for good: the fork joins the frontier, then the failure fails the run, dead-lettered', async () => {
    const h = harness(
      mapOf(
        'doomed-branch',
        itemBody(
          (): number => {
            throw new Error('never');
          },
          { retry: { maxAttempts: 1 } },
        ),
      ),
    );
    await h.drain(await h.start(1, 'e'));
    const s = await h.store.get('e');
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[0]/r', message: 'never' });
    // The item joins the frontier with `pre` (the commit its fork skipped), then the branch fails there.
    const events = await h.journal('e');
    expect(
      events.map((e) => [e.type, 'key' in e ? e.key : undefined, 'lane' in e && e.lane ? e.lane.parent : '']),
    ).toEqual([
      ['task-completed', 'items', ''],
      ['task-completed', 'items[0]/pre', 'items'],
      ['task-failed', 'items[0]/r', 'items[0]/j'],
    ]);
    const letters = await h.deadLetters.ofInstance('e');
    expect(letters.map((x) => [x.dispatch.key, x.error?.message])).toEqual([['items[0]/r', 'never']]);
  });

  it('a pause holds a branch’s step: the fork joins the frontier; a resume finishes the map', async () => {
    const h = harness(plain);
    await h.deliver(await h.start(1, 'p'));
    // `items` ran, and its item's chain ran `pre` and started the fork: the branches wait in the queue.
    expect(h.queue.sent.map((d) => d.key).sort()).toEqual(['items[0]/l/l1', 'items[0]/r']);
    await h.control('p', { type: 'pause' });
    const paused = await h.store.get('p');
    expect(paused?.status).toBe('PAUSED');
    expect(Object.keys(paused?.forks ?? {})).toEqual(['items[0]/j']);
    expect(Object.values(paused?.tasks ?? {}).map((t) => [t.qid, t.state])).toEqual([
      ['items[]/l/l1', 'ready'],
      ['items[]/r', 'ready'],
    ]);
    await h.control('p', { type: 'resume' });
    expect(await h.output('p')).toEqual([itemOutput(0)]);
    // The item joined the frontier once, with `pre`; its fork's branches ran once each.
    expect(
      (await h.journal('p')).filter((e) => e.type === 'task-completed' && e.lane).map((e) => 'key' in e && e.key),
    ).toEqual(['items[0]/pre']);
    expect(h.ran.sort()).toEqual(onceEach(1));
  });

  it('a worker that dies holding a branch’s step is counted in the branch’s lane: its retry completes the run', async () => {
    let deaths = 0;
    const h = harness(
      mapOf(
        'dying-branch',
        itemBody((x: number) => x * 3, { retry: { maxAttempts: 2, initialDelay: '1s', jitter: 'none' } }),
      ),
    );
    h.setFaults((phase, d) => {
      if (phase === 'executed' && d.key === 'items[0]/r' && deaths++ === 0) throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(1, 'w'));
    const s = await h.drive('w', REDISPATCH_MS);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('w')).toEqual([itemOutput(0)]);
    const [death] = await h.store.listTimers('w', 'items[0]/r#');
    expect(death).toMatchObject({
      id: 'items[0]/r#2',
      parent: 'items[0]/j',
      retry: { error: { name: 'WorkerLostError' } },
    });
    expect((await h.journal('w')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
  });
});

describe('a fork in a fork branch, in a fork branch', () => {
  /** Branch `a`: `a1`, then a fork whose branch `x` is `x1`, then a fork of `p` and `q`; `b`: one task. */
  const deep = (q: (x: number) => number) =>
    flow<number>('deep')
      .fork([
        branch(
          'a',
          flow<number>('a')
            .then('a1', (x: number) => x + 1)
            .fork([
              branch(
                'x',
                flow<number>('x')
                  .then('x1', (x: number) => x * 2)
                  .fork([branch('p', (x: number) => x + 100), branch('q', task('q', q, { retry: { maxAttempts: 1 } }))])
                  .join('pq', ([p, qq]: [number, number]) => p + qq)
                  .then('x2', (x: number) => x - 1)
                  .build(),
              ),
              branch('y', (x: number) => -x),
            ])
            .join('xy', ([x, y]: [number, number]) => x * y)
            .then('a2', (x: number) => x + 7)
            .build(),
        ),
        branch('b', (x: number) => x * 1000),
      ])
      .join('ab', ([a, b]: [number, number]) => ({ a, b }))
      .build();

  it('runs both forks in lanes: the journal holds nothing but its own start and join', async () => {
    const f = deep((x) => x * 3);
    const h = harness(f);
    await h.drain(await h.start(1, 'n'));
    // a1 = 2; x1 = 4; pq = 104 + 12; x2 = 115; xy = 115 * -2; a2 = -223.
    expect(await h.output('n')).toEqual({ a: -223, b: 1000 });
    expect((await h.journal('n')).map((e) => e.type)).toEqual(['lanes-joined', 'task-completed']);
    expect(await h.store.getCounter('n', 'lanes:a/x/pq')).toBe(2);
    expect(await h.store.getCounter('n', 'lanes:a/xy')).toBe(2);
  });

  it('a failure for good two forks deep joins both forks to the frontier, outermost first, and fails the run', async () => {
    const f = deep(() => {
      throw new Error('deep down');
    });
    const h = harness(f);
    await h.drain(await h.start(1, 'm'));
    const s = await h.store.get('m');
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'a/x/q', message: 'deep down' });
    const events = await h.journal('m');
    expect(events.map((e) => [e.type, 'key' in e ? e.key : undefined])).toEqual([
      ['task-completed', 'a/a1'],
      ['task-completed', 'a/x/x1'],
      ['task-failed', 'a/x/q'],
    ]);
  });
});

describe('a map item that ends with a fork', () => {
  /** `pre`, then a fork of `l` and `r` whose join `j` ends the item: its output is the item's result. */
  const endsForked = (r: (x: number) => number) =>
    flow<number>('ends-forked')
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        flow<number>('item')
          .then('pre', (x: number) => x + 1)
          .fork([branch('l', (x: number) => x * 2), branch('r', task('r', r, { retry: { maxAttempts: 1 } }))])
          .join('j', ([l, rr]: [number, number]) => l + rr)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();

  it('runs in lanes, the fork in the item’s lane: its join’s output is the item’s result, counted there', async () => {
    const h = harness(endsForked((x) => x * 3));
    await h.drain(await h.start(3, 'z'));
    expect(await h.output('z')).toEqual([0, 1, 2].map((x) => (x + 1) * 5));
    expect((await h.journal('z')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    expect(await h.store.getCounter('z', 'lanes:items')).toBe(3);
  });

  it('a branch that failed for good, retried by an operator: its join completes in the frontier and counts the item', async () => {
    let fail = true;
    const f = endsForked((x) => {
      if (fail) throw new Error('down');
      return x * 3;
    });
    const h = harness(f);
    await h.drain(await h.start(2, 'y'));
    expect((await h.store.get('y'))?.status).toBe('FAILED');
    fail = false;
    await h.control('y', { type: 'retry', key: 'items[0]/r' });
    // Item 1's fork was left in its lane when the run failed: its look starts its branch again.
    const s = await h.drive('y', REDISPATCH_MS);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('y')).toEqual([5, 10]);
    // Item 0's join ran in the frontier (its fork had joined it), and counted the item.
    const completed = (await h.journal('y')).flatMap((e) => (e.type === 'task-completed' ? [e.key] : []));
    expect(completed).toEqual(['items', 'items[0]/pre', 'items[0]/r', 'items[0]/j']);
  });
});

describe('a map item that starts with a fork', () => {
  /** A fork of `l` and `r` on the item, joined by `j`; then `post` (or nothing: the fork is the whole item). */
  const startsForked = (name: string, r: (x: number) => number, post: boolean) => {
    const forked = flow<number>('item')
      .fork([branch('l', (x: number) => x * 2), branch('r', task('r', r, { retry: { maxAttempts: 1 } }))])
      .join('j', ([l, rr]: [number, number]) => l + rr);
    return flow<number>(name)
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        post ? forked.then('post', (x: number) => x + 1).build() : forked.build(),
        { maxConcurrency: 2 },
      )
      .build();
  };

  it('starts each item with its fork’s branches, in lanes: the journal holds nothing of the items', async () => {
    for (const post of [true, false]) {
      const h = harness(startsForked(`starts-forked-${post}`, (x) => x * 3, post));
      await h.deliver(await h.start(3, 's'));
      // The first window (two items): their forks' branches, sent with the map's start.
      expect(h.queue.sent.map((d) => [d.key, d.lane?.parent])).toEqual([
        ['items[0]/l', 'items[0]/j'],
        ['items[0]/r', 'items[0]/j'],
        ['items[1]/l', 'items[1]/j'],
        ['items[1]/r', 'items[1]/j'],
      ]);
      await h.drain();
      expect(await h.output('s')).toEqual([0, 1, 2].map((x) => x * 5 + (post ? 1 : 0)));
      expect((await h.journal('s')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
      // Item 2 was started by a count: its fork has a look; the first window's do not.
      expect((await h.store.listTimers('s', '')).filter((t) => t.look).map((t) => t.id)).toEqual(['items[2]/j~look~0']);
    }
  });

  it('a branch sent with the map’s start and lost: the map’s look gives its fork a look, which sends it again', async () => {
    const h = harness(startsForked('starts-lost', (x) => x * 3, true));
    let drops = 0;
    h.setLost((d) => d.key === 'items[0]/r' && drops++ === 0);
    await h.drain(await h.start(2, 'l'));
    const s = await h.drive('l', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('l')).toEqual([1, 6]);
    // The map's looks, and nothing of the items.
    expect((await h.journal('l')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
    expect((await h.store.listTimers('l', '')).filter((t) => t.look).map((t) => t.id)).toEqual([
      'items[0]/j~look~0',
      'items[0]/j~look~1',
    ]);
    expect(h.ran.filter((r) => r.startsWith('items[0]/r'))).toEqual(['items[0]/r@1']);
  });

  it('a fork whose branch starts with a delay does not start its item in the lane (its branches cannot start with the item’s dispatch): the run completes', async () => {
    const f = flow<number>('starts-parked-fork')
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        flow<number>('item')
          .fork([
            branch(
              'a',
              flow<number>('a')
                .delay('wait', '1m')
                .then('a1', (x: number) => x + 1)
                .build(),
            ),
            branch('b', (x: number) => x * 2),
          ])
          .join('j', ([a, b]: [number, number]) => a + b)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
    const h = harness(f);
    await h.drain(await h.start(3, 'q'));
    const s = await h.drive('q', 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('q')).toEqual([1, 4, 7]);
    // Each join once: not dispatched as the item's first step.
    expect(h.ran.filter((r) => r.endsWith('/j@1')).sort()).toEqual(['items[0]/j@1', 'items[1]/j@1', 'items[2]/j@1']);
  });

  it('a branch that fails for good: its item starts in the frontier with its fork (`lanes-started`), and the run fails', async () => {
    const h = harness(
      startsForked(
        'starts-doomed',
        () => {
          throw new Error('no');
        },
        true,
      ),
    );
    await h.drain(await h.start(1, 'd'));
    const s = await h.store.get('d');
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[0]/r', message: 'no' });
    expect((await h.journal('d')).map((e) => [e.type, 'key' in e ? e.key : ''])).toEqual([
      ['task-completed', 'items'],
      ['lanes-started', 'items'],
      ['task-failed', 'items[0]/r'],
    ]);
  });
});

describe('a fork after a loop or a route in a map item', () => {
  /** `pre`, a loop that adds 1 until 3 or more, a route on parity (one task a branch), then a fork of `l` and `r`, `post`. */
  const afterLoopAndRoute = (name: string, r: (x: number) => number) =>
    flow<number>(name)
      .map(
        'items',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        flow<number>('item')
          .then('pre', (x: number) => x + 1)
          .loop((x: number) => (x >= 3 ? LoopResult.done(x) : LoopResult.again(x + 1)), {
            id: 'up',
            maxIterations: 5,
          })
          .fork([branch('l', (x: number) => x * 2), branch('r', task('r', r, { retry: { maxAttempts: 1 } }))])
          .join('j', ([l, rr]: [number, number]) => l + rr)
          .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'parity' })
          .branch('even', (x: number) => x / 2)
          .branch('odd', (x: number) => x)
          .done()
          .fork([branch('p', (x: number) => x + 1), branch('q', (x: number) => x - 1)])
          .join('pq', ([p, q]: [number, number]) => p * q)
          .then('post', (x: number) => x + 0)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
  /** Item x: up to max(x + 1, 3) = u; j = 3u; halved when even; then (v + 1)(v - 1). */
  const expected = (x: number) => {
    const u = Math.max(x + 1, 3);
    const v = (3 * u) % 2 === 0 ? (3 * u) / 2 : 3 * u;
    return (v + 1) * (v - 1);
  };

  it('run in the item’s lane, from the loop’s and the route’s outputs, put as their inputs: nothing in the journal', async () => {
    const h = harness(afterLoopAndRoute('after-loop-route', (x) => x));
    await h.drain(await h.start(4, 'a'));
    expect(await h.output('a')).toEqual([0, 1, 2, 3].map(expected));
    expect((await h.journal('a')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    // Item 3 looped once (4 >= 3): its first fork started from that iteration's value; its second from the even branch.
    const inputs = await h.store.getValues('a', [forkInputId('items[3]/j'), forkInputId('items[3]/pq')]);
    expect([...inputs.values()]).toEqual([
      { v: 'out:items[3]/up@0', at: ['value'] },
      { v: 'out:items[3]/parity.even' },
    ]);
  });

  it('the worker whose loop ended died before its fork’s input: the item’s look finds it from the loop', async () => {
    const h = harness(afterLoopAndRoute('loop-input-lost', (x) => x));
    h.setFaults((phase, d) => {
      if (phase === 'checkpointed' && d.key === 'items[0]/up@2') throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(1, 'b'));
    h.setFaults(() => undefined);
    expect(await h.store.listValueIds('b', forkInputId('items[0]/j'))).toEqual([]);
    const s = await h.drive('b', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('b')).toEqual([expected(0)]);
    expect((await h.store.getValues('b', [forkInputId('items[0]/j')])).get(forkInputId('items[0]/j'))).toEqual({
      v: 'out:items[0]/up@2',
      at: ['value'],
    });
  });

  it('a branch that fails for good after the loop: the item joins the frontier with the loop’s last iteration, and the run fails', async () => {
    const h = harness(
      afterLoopAndRoute('after-loop-doomed', () => {
        throw new Error('no');
      }),
    );
    await h.drain(await h.start(1, 'c'));
    const s = await h.store.get('c');
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[0]/r', message: 'no' });
    const events = await h.journal('c');
    expect(events.map((e) => [e.type, 'key' in e ? e.key : ''])).toEqual([
      ['task-completed', 'items'],
      ['task-completed', 'items[0]/up@2'],
      ['task-failed', 'items[0]/r'],
    ]);
    expect(events[1]).toMatchObject({ control: { loop: 'done' }, lane: { parent: 'items' } });
  });
});
