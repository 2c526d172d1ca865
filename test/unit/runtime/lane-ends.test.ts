import { describe, expect, it } from 'vitest';
import { branch, flow, LoopResult, task } from '../../../shared/index.ts';
import { WorkerKilledError } from '../../../shared/runtime/worker.ts';
import { harness, REDISPATCH_MS } from './lane-harness.ts';

/**
 * A child run in lanes may end with a loop or a route run in its lane:
 * the output id of the step that ends it varies (`<loop>@<n>`, the chosen
 * branch's last task), so its result has an id of its own,
 * `<loop or route's output id>:result`, put after that step's output by
 * the writer of that step; only the writer whose result put created it
 * counts the child. Nothing of such a child reaches the run's journal
 * while it goes well.
 */

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Counts `left` down to 0, adding each value to `acc`. */
const countdown = (s: { left: number; acc: number }) =>
  s.left <= 0 ? LoopResult.done(s.acc) : LoopResult.again({ left: s.left - 1, acc: s.acc + s.left });

/** Each item `x`: `pre`, then a loop that sums `x + 1 .. 1` (the loop is the item's last step), two items at a time. */
const endsLooping = (
  name: string,
  body: (s: { left: number; acc: number }) => LoopResult<{ left: number; acc: number }, number>,
  maxAttempts = 1,
) =>
  flow<number>(name)
    .map(
      'items',
      range,
      flow<number>('item')
        .then('pre', (x: number) => ({ left: x + 1, acc: 0 }))
        .loop(task('sum', body, { timeout: '10s', retry: { maxAttempts, initialDelay: '1s', jitter: 'none' } }), {
          maxIterations: 10,
        })
        .build(),
      { maxConcurrency: 2 },
    )
    .build();

/** What item `x` of {@link endsLooping} makes: 1 + … + (x + 1). */
const sumTo = (x: number) => ((x + 1) * (x + 2)) / 2;

/** Each item `x`: `pre` (x + 1), then a route on parity that ends the item: halve an even, or `odd1` then `odd2` (3x + 1). */
const endsRouting = (name: string, odd2: (x: number) => number = (x) => x + 1) =>
  flow<number>(name)
    .map(
      'items',
      range,
      flow<number>('item')
        .then('pre', (x: number) => x + 1)
        .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'parity' })
        .branch('even', (x: number) => x / 2)
        .branch(
          'odd',
          flow<number>('odd')
            .then('odd1', (x: number) => x * 3)
            .then(task('odd2', odd2, { retry: { maxAttempts: 1 } }))
            .build(),
        )
        .done()
        .build(),
      { maxConcurrency: 2 },
    )
    .build();

/** What item `x` of {@link endsRouting} makes. */
const routed = (x: number) => (x % 2 === 1 ? (x + 1) / 2 : 3 * (x + 1) + 1);

describe('a child that ends with a loop', () => {
  it('runs in its lane: its result is put under an id of its own, and nothing of it reaches the journal', async () => {
    const h = harness(endsLooping('ends-looping', countdown));
    await h.drain(await h.start(3, 'a'));
    expect(await h.output('a')).toEqual(range(3).map(sumTo));
    expect((await h.journal('a')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    expect(await h.store.getCounter('a', 'lanes:items')).toBe(3);
    // Item 2 ran four iterations (3, 2, 1 left, then done); its result is the last one's value, put once.
    const results = await h.store.getValues('a', ['out:items[2]/sum@3', 'out:items[2]/sum:result']);
    expect([...results.values()]).toEqual([{ loop: 'done', value: 6 }, 6]);
    expect(h.store.commits.get('a|out:items[2]/sum:result')).toBe(1);
    expect(new Set(h.ran).size).toBe(h.ran.length);
  });

  it('the worker that put the last iteration died before the result: the map’s look sends that iteration again, which puts it', async () => {
    const h = harness(endsLooping('result-lost', countdown));
    let deaths = 0;
    h.setFaults((phase, d) => {
      if (phase === 'checkpointed' && d.key === 'items[1]/sum@2' && deaths++ === 0)
        throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(2, 'r'));
    expect(await h.store.listValueIds('r', 'out:items[1]/sum')).toEqual([
      'out:items[1]/sum@0',
      'out:items[1]/sum@1',
      'out:items[1]/sum@2',
    ]);
    const s = await h.drive('r', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('r')).toEqual([1, 3]);
    expect(h.ran.filter((r) => r === 'items[1]/sum@2@1')).toHaveLength(2);
    expect(h.store.commits.get('r|out:items[1]/sum:result')).toBe(1);
    expect(h.store.commits.get('r|out:items[1]/sum@2')).toBe(1);
    expect((await h.journal('r')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
  });

  it('a worker that died running the last iteration: the item goes on from that iteration, not from its start', async () => {
    const h = harness(endsLooping('iteration-dead', countdown, 2));
    let deaths = 0;
    h.setFaults((phase, d) => {
      if (phase === 'executed' && d.key === 'items[0]/sum@1' && deaths++ === 0)
        throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(2, 'l'));
    expect((await h.store.get('l'))?.status).toBe('RUNNING');
    const s = await h.drive('l', REDISPATCH_MS);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('l')).toEqual([1, 3]);
    expect(h.ran.filter((r) => r.startsWith('items[0]/'))).toHaveLength(4);
    expect(h.ran.filter((r) => r.startsWith('items[0]/sum@1'))).toHaveLength(2);
    expect((await h.journal('l')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
  });

  it('an iteration that fails for good joins the frontier and fails the run; retried there, the loop ends and counts the item', async () => {
    let down = true;
    const f = endsLooping('ends-doomed', (s) => {
      if (down && s.left === 1) throw new Error('down');
      return countdown(s);
    });
    const h = harness(f);
    await h.drain(await h.start(1, 'd'));
    const failed = await h.store.get('d');
    expect(failed?.status).toBe('FAILED');
    expect(failed?.error).toMatchObject({ taskKey: 'items[0]/sum@0', message: 'down' });
    down = false;
    await h.control('d', { type: 'retry', key: 'items[0]/sum@0' });
    // The loop went on in the frontier; its last iteration's writer put the result and counted the item.
    expect(await h.output('d')).toEqual([1]);
    expect((await h.journal('d')).map((e) => [e.type, 'key' in e ? e.key : ''])).toEqual([
      ['task-completed', 'items'],
      ['task-failed', 'items[0]/sum@0'],
      ['retry', 'items[0]/sum@0'],
      ['task-completed', 'items[0]/sum@0'],
      ['task-completed', 'items[0]/sum@1'],
      ['lanes-joined', 'items'],
    ]);
    expect((await h.store.getValues('d', ['out:items[0]/sum:result'])).get('out:items[0]/sum:result')).toBe(1);
  });
});

describe('a child that ends with a route run in its lane', () => {
  it('runs in its lane: the chosen branch’s last task puts the result under the route’s own result id', async () => {
    const h = harness(endsRouting('ends-routing'));
    await h.drain(await h.start(4, 'a'));
    expect(await h.output('a')).toEqual(range(4).map(routed));
    expect((await h.journal('a')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    const ids = ['out:items[0]/parity', 'out:items[0]/parity:result', 'out:items[1]/parity:result'];
    expect([...(await h.store.getValues('a', ids)).values()]).toEqual(['odd', 4, 1]);
  });

  it('the worker that put the branch’s last output died before the result: the look sends that task again, which puts it', async () => {
    const h = harness(endsRouting('route-result-lost'));
    let deaths = 0;
    h.setFaults((phase, d) => {
      if (phase === 'checkpointed' && d.key === 'items[0]/parity.odd/odd2' && deaths++ === 0)
        throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(2, 'r'));
    expect(await h.store.listValueIds('r', 'out:items[0]/parity')).toEqual([
      'out:items[0]/parity',
      'out:items[0]/parity.odd/odd1',
      'out:items[0]/parity.odd/odd2',
    ]);
    const s = await h.drive('r', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('r')).toEqual([4, 1]);
    expect(h.ran.filter((r) => r.startsWith('items[0]/parity.odd/odd2'))).toHaveLength(2);
    expect(h.store.commits.get('r|out:items[0]/parity:result')).toBe(1);
    expect((await h.journal('r')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
  });

  it('the branch’s last task failing for good fails the run; skipped by an operator, its given output is the result', async () => {
    const f = endsRouting('route-doomed', () => {
      throw new Error('odd2 down');
    });
    const h = harness(f);
    await h.drain(await h.start(2, 'd'));
    const failed = await h.store.get('d');
    expect(failed?.status).toBe('FAILED');
    expect(failed?.error).toMatchObject({ taskKey: 'items[0]/parity.odd/odd2', message: 'odd2 down' });
    const { skipAndCount } = await import('../../../shared/runtime/lanes.ts');
    const r = await skipAndCount(h.store, f, 'd', 'items[0]/parity.odd/odd2', 40, { now: () => h.clock.now() });
    await h.drain(r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])));
    // Item 1's start was dropped while the run had failed: the map's look starts it again.
    expect((await h.drive('d', 6 * 60_000))?.status).toBe('COMPLETED');
    expect(await h.output('d')).toEqual([40, 1]);
    expect((await h.store.getValues('d', ['out:items[0]/parity:result'])).get('out:items[0]/parity:result')).toBe(40);
  });
});

describe('fork branches that end with a loop and a route', () => {
  const f = flow<number>('branches-end')
    .fork([
      branch(
        'a',
        flow<number>('a')
          .then('a1', (x: number) => ({ left: x, acc: 0 }))
          .loop(countdown, { id: 'down', maxIterations: 10 })
          .build(),
      ),
      branch(
        'b',
        flow<number>('b')
          .then('b1', (x: number) => x)
          .route((x: number) => (x > 2 ? 'big' : 'small'), ['big', 'small'] as const, { id: 'size' })
          .branch('big', (x: number) => x * 100)
          .branch('small', (x: number) => -x)
          .done()
          .build(),
      ),
    ])
    .join('ab', ([a, b]: [number, number]) => ({ a, b }))
    .build();

  it('run in lanes: the join reads each branch’s result from its own result id', async () => {
    const h = harness(f);
    await h.drain(await h.start(3, 'f'));
    expect(await h.output('f')).toEqual({ a: 6, b: 300 });
    expect((await h.journal('f')).map((e) => e.type)).toEqual(['lanes-joined', 'task-completed']);
  });

  it('a branch whose result was lost with its writer is sent again by the look, within a redispatch period', async () => {
    const h = harness(f);
    let deaths = 0;
    h.setFaults((phase, d) => {
      if (phase === 'checkpointed' && d.key === 'b/size.big' && deaths++ === 0)
        throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(3, 'g'));
    expect((await h.store.get('g'))?.status).toBe('RUNNING');
    const s = await h.drive('g', REDISPATCH_MS);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('g')).toEqual({ a: 6, b: 300 });
  });
});
