import { describe, expect, it } from 'vitest';
import { forkInputId, mapCountId, mapDoneId } from '../../../shared/engine/lanes.ts';
import { branch, flow, task } from '../../../shared/index.ts';
import { WorkerKilledError } from '../../../shared/runtime/worker.ts';
import { harness } from './lane-harness.ts';

/**
 * A map that is a step of a map item or a fork branch run in lanes, with a
 * step that runs in the lane after it, runs in that child's lane
 * (`laneMap`): its items task runs there as a task, its items start as a
 * group of lanes of their own (its count put beside them), and when the
 * last is counted the step after the map follows in the child's lane, on
 * the items' results. Nothing of it is committed to the run's journal.
 */

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Each item `x`: `pre` (x + 1), then a map over `[pre, 2 pre]` squaring each (one at a time), then their `sum`. */
const mapOfMaps = (name: string, sq: (y: number) => number = (y) => y * y) =>
  flow<number>(name)
    .map(
      'items',
      range,
      flow<number>('item')
        .then('pre', (x: number) => x + 1)
        .map('inner', (x: number) => [x, 2 * x], task('sq', sq, { retry: { maxAttempts: 1 } }), { maxConcurrency: 1 })
        .then('sum', (ys: number[]) => ys.reduce((a, b) => a + b, 0))
        .build(),
      { maxConcurrency: 2 },
    )
    .build();

/** What item `x` makes: (x + 1)² + (2 (x + 1))². */
const itemOutput = (x: number) => 5 * (x + 1) ** 2;

describe('a map in a map item runs in the item’s lane', () => {
  it('with nothing of it in the journal: its items count on a counter of their own, and the step after it follows in the lane', async () => {
    const h = harness(mapOfMaps('maps-in-items'));
    await h.drain(await h.start(3, 'a'));
    expect(await h.output('a')).toEqual([0, 1, 2].map(itemOutput));
    expect((await h.journal('a')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    for (let i = 0; i < 3; i++) {
      const key = `items[${i}]/inner`;
      expect(await h.store.getCounter('a', `lanes:${key}`)).toBe(2);
      const marks = await h.store.getValues('a', [mapCountId(key), mapDoneId(key)]);
      expect([...marks.values()]).toEqual([2, true]);
    }
    // Each task once: `items`, and per item `pre`, its map's items task, two squares and `sum`.
    expect(h.ran.length).toBe(1 + 3 * 5);
    expect(new Set(h.ran).size).toBe(h.ran.length);
  });

  it('a map first in the item, and one of no items', async () => {
    const f = flow<number>('map-first')
      .map(
        'items',
        range,
        flow<number>('item')
          .map(
            'inner',
            (x: number) => range(x),
            (y: number) => y + 1,
          )
          .then('sum', (ys: number[]) => ys.reduce((a, b) => a + b, 0))
          .build(),
      )
      .build();
    const h = harness(f);
    await h.drain(await h.start(4, 'f'));
    // Item x sums 1..x; item 0's map has no items: `sum` runs at once on [].
    expect(await h.output('f')).toEqual([0, 1, 3, 6]);
    expect((await h.journal('f')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    expect((await h.store.getValues('f', [mapCountId('items[0]/inner')])).get(mapCountId('items[0]/inner'))).toBe(0);
  });

  it('an item of the inner map whose message was lost is started again by that map’s look, once its counter stood still', async () => {
    const h = harness(mapOfMaps('lost-inner'));
    let drops = 0;
    h.setLost((d) => d.key === 'items[1]/inner[0]' && drops++ === 0);
    await h.drain(await h.start(2, 'l'));
    expect((await h.store.get('l'))?.status).toBe('RUNNING');
    // The inner map's look: every check period (longer than an item may run), started again once it stood still.
    const s = await h.drive('l', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('l')).toEqual([0, 1].map(itemOutput));
    expect((await h.journal('l')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
    expect(h.ran.filter((r) => r === 'items[1]/inner[0]@1')).toHaveLength(1);
  });

  it('the worker that put the items died before their count: the item’s look finds the count from the items, and starts them', async () => {
    const h = harness(mapOfMaps('count-lost'));
    h.setFaults((phase, d) => {
      if (phase === 'checkpointed' && d.key === 'items[0]/inner') throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(1, 'c'));
    h.setFaults(() => undefined);
    expect(await h.store.listValueIds('c', 'out:items[0]/inner')).toEqual(['out:items[0]/inner']);
    const s = await h.drive('c', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('c')).toEqual([itemOutput(0)]);
    expect(h.ran.filter((r) => r.startsWith('items[0]/inner'))).toEqual([
      'items[0]/inner@1',
      'items[0]/inner[0]@1',
      'items[0]/inner[1]@1',
    ]);
  });

  it('an inner item that fails for good: the map joins the frontier with its items task (and count), then the failure fails the run; a retry finishes it', async () => {
    let fail = true;
    const f = mapOfMaps('inner-doomed', (y) => {
      if (fail && y === 2) throw new Error('two');
      return y * y;
    });
    const h = harness(f);
    await h.drain(await h.start(1, 'd'));
    const s = await h.store.get('d');
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[0]/inner[1]', message: 'two' });
    const events = await h.journal('d');
    expect(events.map((e) => [e.type, 'key' in e ? e.key : ''])).toEqual([
      ['task-completed', 'items'],
      ['task-completed', 'items[0]/inner'],
      ['task-failed', 'items[0]/inner[1]'],
    ]);
    expect(events[1]).toMatchObject({ control: { count: 2 }, lane: { parent: 'items' } });
    fail = false;
    await h.control('d', { type: 'retry', key: 'items[0]/inner[1]' });
    expect(await h.output('d')).toEqual([itemOutput(0)]);
  });

  it('a fork in an item of a map in a fork branch: three groups deep, nothing in the journal but the fork’s end', async () => {
    const f = flow<number>('deep-map')
      .fork([
        branch(
          'a',
          flow<number>('a')
            .then('a1', (x: number) => x + 1)
            .map(
              'm',
              (x: number) => [x, x + 1],
              flow<number>('m-item')
                .then('p', (y: number) => y * 2)
                .fork([branch('u', (y: number) => y + 1), branch('v', (y: number) => y - 1)])
                .join('uv', ([u, v]: [number, number]) => u * v)
                .build(),
            )
            .then('a2', (ys: number[]) => ys.reduce((s, y) => s + y, 0))
            .build(),
        ),
        branch('b', (x: number) => -x),
      ])
      .join('ab', ([a, b]: [number, number]) => ({ a, b }))
      .build();
    const h = harness(f);
    await h.drain(await h.start(1, 'n'));
    // a1 = 2; items 2 and 3: p = 4, 6; uv = 5·3 = 15, 7·5 = 35; a2 = 50.
    expect(await h.output('n')).toEqual({ a: 50, b: -1 });
    expect((await h.journal('n')).map((e) => e.type)).toEqual(['lanes-joined', 'task-completed']);
  });
});

describe('a map whose last count was lost with its writer', () => {
  it('ends at the look that finds every result there, not a look later once its counter stood still', async () => {
    const f = flow<number>('count-lost-last')
      .map('items', range, (x: number) => x * 2)
      .build();
    const h = harness(f);
    h.setFaults((phase, d) => {
      if (phase === 'checkpointed' && d.key === 'items[1]') throw new WorkerKilledError(phase, d.key);
    });
    await h.drain(await h.start(2, 'e'));
    expect(await h.store.getCounter('e', 'lanes:items')).toBe(1);
    expect(await h.store.listValueIds('e', 'out:items[1]')).toEqual(['out:items[1]']);
    // The map's first look: its counter moved since the start (0 to 1), and every result is there.
    h.clock.advance(5 * 60_000 + 1_000);
    await h.reap();
    expect(await h.output('e')).toEqual([0, 2]);
  });
});

/**
 * A map that ends a map item (or is the whole item) runs in the item's
 * lane too: the item's result is the inner map's results, put under an id
 * of its own (`<map's output id>:result`) by whoever ends the inner map
 * (the writer whose add reached its count, or its look), in place of its
 * done mark; only the writer whose put created it counts the item.
 */
describe('a map that ends a map item', () => {
  /** Each item `x`: `pre` (x + 1), then a map over `[pre, 2 pre]` squaring each, one at a time: the item's last step. */
  const endsMapping = (name: string, sq: (y: number) => number = (y) => y * y) =>
    flow<number>(name)
      .map(
        'items',
        range,
        flow<number>('item')
          .then('pre', (x: number) => x + 1)
          .map('inner', (x: number) => [x, 2 * x], task('sq', sq, { retry: { maxAttempts: 1 } }), {
            maxConcurrency: 1,
          })
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
  const itemResult = (x: number) => [(x + 1) ** 2, (2 * (x + 1)) ** 2];

  it('runs in the item’s lane: its results are the item’s result, put once, and nothing reaches the journal', async () => {
    const h = harness(endsMapping('ends-mapping'));
    await h.drain(await h.start(3, 'a'));
    expect(await h.output('a')).toEqual([0, 1, 2].map(itemResult));
    expect((await h.journal('a')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    expect(await h.store.getCounter('a', 'lanes:items')).toBe(3);
    for (let i = 0; i < 3; i++) {
      expect(h.store.commits.get(`a|out:items[${i}]/inner:result`)).toBe(1);
      expect(await h.store.listValueIds('a', mapDoneId(`items[${i}]/inner`))).toEqual([]);
    }
    // Each task once: `items`, and per item `pre`, its map's items task and two squares.
    expect(h.ran.length).toBe(1 + 3 * 4);
    expect(new Set(h.ran).size).toBe(h.ran.length);
  });

  it('a map that is the whole item, and one of no items', async () => {
    const f = flow<number>('whole-map')
      .map(
        'items',
        range,
        flow<number>('item')
          .map(
            'inner',
            (x: number) => range(x),
            (y: number) => y + 1,
          )
          .build(),
      )
      .build();
    const h = harness(f);
    await h.drain(await h.start(3, 'w'));
    expect(await h.output('w')).toEqual([[], [1], [1, 2]]);
    expect((await h.journal('w')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
  });

  it('the writer that counted the inner map’s last item died before the item’s result: the map’s look puts it', async () => {
    const h = harness(endsMapping('map-result-lost'));
    const put = h.store.putValue.bind(h.store);
    let deaths = 0;
    h.store.putValue = async (id, valueId, value) => {
      if (valueId === 'out:items[1]/inner:result' && deaths++ === 0) throw new WorkerKilledError('stored', valueId);
      return put(id, valueId, value);
    };
    await h.drain(await h.start(2, 'r'));
    expect(await h.store.getCounter('r', 'lanes:items[1]/inner')).toBe(2);
    expect(await h.store.getCounter('r', 'lanes:items')).toBe(1);
    const s = await h.drive('r', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('r')).toEqual([0, 1].map(itemResult));
    expect(h.store.commits.get('r|out:items[1]/inner:result')).toBe(1);
    expect(new Set(h.ran).size).toBe(h.ran.length);
    expect((await h.journal('r')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
  });

  it('an inner item that fails for good fails the run; retried, the inner map ends in the frontier and counts the item', async () => {
    let fail = true;
    const f = endsMapping('ends-mapping-doomed', (y) => {
      if (fail && y === 2) throw new Error('two');
      return y * y;
    });
    const h = harness(f);
    await h.drain(await h.start(1, 'd'));
    const s = await h.store.get('d');
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[0]/inner[1]', message: 'two' });
    fail = false;
    await h.control('d', { type: 'retry', key: 'items[0]/inner[1]' });
    expect(await h.output('d')).toEqual([itemResult(0)]);
    expect((await h.journal('d')).map((e) => [e.type, 'key' in e ? e.key : ''])).toEqual([
      ['task-completed', 'items'],
      ['task-completed', 'items[0]/inner'],
      ['task-failed', 'items[0]/inner[1]'],
      ['retry', 'items[0]/inner[1]'],
      ['task-completed', 'items[0]/inner[1]'],
      ['lanes-joined', 'items[0]/inner'],
      ['lanes-joined', 'items'],
    ]);
  });

  it('a fork branch that ends with a map: the join reads the map’s results as the branch’s', async () => {
    const f = flow<number>('branch-maps')
      .fork([
        branch(
          'a',
          flow<number>('a')
            .then('a1', (x: number) => x + 1)
            .map(
              'm',
              (x: number) => range(x),
              (y: number) => y * 10,
            )
            .build(),
        ),
        branch('b', (x: number) => -x),
      ])
      .join('ab', ([a, b]: [number[], number]) => ({ a, b }))
      .build();
    const h = harness(f);
    await h.drain(await h.start(2, 'b'));
    expect(await h.output('b')).toEqual({ a: [0, 10, 20], b: -2 });
    expect((await h.journal('b')).map((e) => e.type)).toEqual(['lanes-joined', 'task-completed']);
  });
});

/**
 * A map run in an item's lane followed by a fork run in the lane: the
 * map's end (the add that counts its last item, or its look) puts its done
 * mark, then starts the fork from its items' results. Followed by a step
 * that does not run in the lane (here a delay that no task precedes), the
 * item joins the frontier with the map's end: one journal entry, its items
 * task and its `lanes-joined`, and none for its items or its looks.
 */
describe('a map followed by a fork, or by a step that does not run in the lane', () => {
  /** Each item `x`: `pre` (x + 1), a map over `[pre, 2 pre]` squaring each, then a fork of their sum and max, joined by `j`. */
  const mapThenFork = (name: string, mx: (ys: number[]) => number = (ys) => Math.max(...ys)) =>
    flow<number>(name)
      .map(
        'items',
        range,
        flow<number>('item')
          .then('pre', (x: number) => x + 1)
          .map(
            'inner',
            (x: number) => [x, 2 * x],
            (y: number) => y * y,
          )
          .fork([
            branch('s', (ys: number[]) => ys.reduce((a, b) => a + b, 0)),
            branch('m', task('m', mx, { retry: { maxAttempts: 1 } })),
          ])
          .join('j', ([s, m]: [number, number]) => s - m)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
  /** (x + 1)² + (2 (x + 1))² - (2 (x + 1))². */
  const forked = (x: number) => (x + 1) ** 2;

  it('the map’s end starts the fork in the item’s lane, from the items’ results: nothing reaches the journal', async () => {
    const h = harness(mapThenFork('map-then-fork'));
    await h.drain(await h.start(3, 'a'));
    expect(await h.output('a')).toEqual([0, 1, 2].map(forked));
    expect((await h.journal('a')).map((e) => e.type)).toEqual(['task-completed', 'lanes-joined']);
    const input = forkInputId('items[2]/j');
    expect((await h.store.getValues('a', [input])).get(input)).toEqual({ each: 'out:items[2]/inner[]', n: 2 });
    expect(new Set(h.ran).size).toBe(h.ran.length);
  });

  it('the map’s end died between its done mark and the fork’s start: the item’s look starts the fork from the map’s results', async () => {
    const h = harness(mapThenFork('fork-start-lost'));
    const put = h.store.putValue.bind(h.store);
    let deaths = 0;
    h.store.putValue = async (id, valueId, value) => {
      if (valueId === forkInputId('items[1]/j') && deaths++ === 0) throw new WorkerKilledError('stored', valueId);
      return put(id, valueId, value);
    };
    await h.drain(await h.start(2, 'f'));
    expect(await h.store.listValueIds('f', mapDoneId('items[1]/inner'))).toEqual([mapDoneId('items[1]/inner')]);
    expect(await h.store.listValueIds('f', 'out:items[1]/s')).toEqual([]);
    const s = await h.drive('f', 6 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('f')).toEqual([0, 1].map(forked));
    expect(new Set(h.ran).size).toBe(h.ran.length);
    expect((await h.journal('f')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
  });

  it('a branch of the fork that fails for good: the map joins the frontier and ends there, which starts the fork there; the run fails, a retry finishes it', async () => {
    let fail = true;
    const f = mapThenFork('map-then-fork-doomed', (ys) => {
      if (fail) throw new Error('no max');
      return Math.max(...ys);
    });
    const h = harness(f);
    await h.drain(await h.start(1, 'd'));
    const s = await h.store.get('d');
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[0]/m', message: 'no max' });
    const entries = await h.store.readJournal('d', 0);
    expect(entries.map((e) => e.events.map((x) => `${x.type} ${'key' in x ? x.key : ''}`))).toEqual([
      ['task-completed items'],
      ['task-completed items[0]/inner', 'lanes-joined items[0]/inner'],
      ['task-failed items[0]/m'],
    ]);
    fail = false;
    await h.control('d', { type: 'retry', key: 'items[0]/m' });
    expect(await h.output('d')).toEqual([forked(0)]);
    // The map's items ran once each, though it started again in the frontier.
    expect(h.ran.filter((r) => r.startsWith('items[0]/inner['))).toEqual([
      'items[0]/inner[0]@1',
      'items[0]/inner[1]@1',
    ]);
  });

  /** Each item `x`: `pre`, a map of squares, a delay (the step after the map does not run in the lane), then `sum`. */
  const mapThenDelay = flow<number>('map-then-delay')
    .map(
      'items',
      range,
      flow<number>('item')
        .then('pre', (x: number) => x + 1)
        .map(
          'inner',
          (x: number) => [x, 2 * x],
          (y: number) => y * y,
        )
        .delay('rest', '1m')
        .then('sum', (ys: number[]) => ys.reduce((a, b) => a + b, 0))
        .build(),
      { maxConcurrency: 2 },
    )
    .build();

  it('a step after the map that does not run in the lane: the item joins the frontier with the map’s end, one entry', async () => {
    const h = harness(mapThenDelay);
    await h.drain(await h.start(2, 'g'));
    const s = await h.drive('g', 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('g')).toEqual([0, 1].map((x) => 5 * (x + 1) ** 2));
    const entries = (await h.store.readJournal('g', 0)).map((e) => e.events.map((x) => x.type).join('+'));
    expect(entries.filter((e) => e === 'task-completed+lanes-joined')).toHaveLength(2);
    // Nothing of the inner maps' items, and no look at them, in the journal.
    const keys = (await h.journal('g')).flatMap((e) => ('key' in e ? [e.key] : []));
    expect(keys.filter((k) => k.includes('inner['))).toEqual([]);
    expect(keys.filter((k) => k.endsWith('/inner'))).toEqual([
      'items[0]/inner',
      'items[0]/inner',
      'items[1]/inner',
      'items[1]/inner',
    ]);
  });

  it('three groups deep: a map followed by a delay in an item of a map in a fork branch joins the frontier with both maps', async () => {
    const f = flow<number>('deep-map-end')
      .fork([
        branch(
          'a',
          flow<number>('a')
            .then('a1', (x: number) => x + 1)
            .map(
              'm',
              (x: number) => [x, x + 1],
              flow<number>('m-item')
                .then('p', (y: number) => y * 2)
                .map(
                  'q',
                  (y: number) => [y],
                  (z: number) => z + 1,
                )
                .delay('rest', '1m')
                .then('r', ([z]: number[]) => z as number)
                .build(),
            )
            .then('a2', (ys: number[]) => ys.reduce((t, y) => t + y, 0))
            .build(),
        ),
        branch('b', (x: number) => -x),
      ])
      .join('ab', ([a, b]: [number, number]) => ({ a, b }))
      .build();
    const h = harness(f);
    await h.drain(await h.start(1, 'n'));
    const s = await h.drive('n', 60_000);
    expect(s?.status).toBe('COMPLETED');
    // a1 = 2; items 2 and 3: p = 4, 6; q = [5], [7]; r = 5, 7; a2 = 12.
    expect(await h.output('n')).toEqual({ a: 12, b: -1 });
    // The branch's map joined the frontier with its items task first; each item's map, with its end.
    const entries = (await h.store.readJournal('n', 0)).map((e) => e.events.map((x) => x.type).join('+'));
    expect(entries.slice(0, 3)).toEqual([
      'task-completed',
      'task-completed+lanes-joined',
      'task-completed+lanes-joined',
    ]);
  });

  it('the writer that joined the item to the frontier died before the map’s done mark: a later look, after the item went past the map, commits nothing', async () => {
    const h = harness(mapThenDelay);
    const put = h.store.putValue.bind(h.store);
    let deaths = 0;
    h.store.putValue = async (id, valueId, value) => {
      if (valueId === mapDoneId('items[0]/inner') && deaths++ === 0) throw new WorkerKilledError('stored', valueId);
      return put(id, valueId, value);
    };
    // Twelve items, two at a time, a minute each: the run outlasts item 0's map's first look (five minutes), which
    // comes after item 0 went past that map.
    await h.drain(await h.start(12, 'm'));
    const s = await h.drive('m', 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('m')).toEqual(range(12).map((x) => 5 * (x + 1) ** 2));
    const entries = (await h.store.readJournal('m', 0)).map((e) => e.events.map((x) => x.type).join('+'));
    expect(entries.filter((e) => e === 'task-completed+lanes-joined')).toHaveLength(12);
    expect(new Set(h.ran).size).toBe(h.ran.length);
    // The look that found the item past its map put the mark, so no look follows.
    expect(await h.store.listValueIds('m', mapDoneId('items[0]/inner'))).toEqual([mapDoneId('items[0]/inner')]);
  });

  it('the writer that counted the map’s last item died before the item joined the frontier: the map’s look commits it', async () => {
    const h = harness(mapThenDelay);
    const append = h.store.append.bind(h.store);
    let deaths = 0;
    h.store.append = async (id, entry) => {
      if (entry.events.some((e) => e.type === 'lanes-joined' && e.key === 'items[1]/inner') && deaths++ === 0)
        throw new WorkerKilledError('checkpointed', 'items[1]/inner');
      return append(id, entry);
    };
    await h.drain(await h.start(2, 'k'));
    expect(await h.store.getCounter('k', 'lanes:items[1]/inner')).toBe(2);
    const s = await h.drive('k', 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('k')).toEqual([0, 1].map((x) => 5 * (x + 1) ** 2));
    // Each item joined once, with its map's end; no task ran twice (the look that came after item 0 went past it did nothing).
    const entries = (await h.store.readJournal('k', 0)).map((e) => e.events.map((x) => x.type).join('+'));
    expect(entries.filter((e) => e === 'task-completed+lanes-joined')).toHaveLength(2);
    expect(new Set(h.ran).size).toBe(h.ran.length);
  });
});

/**
 * A map or fork run in a child's lane whose own children start with a
 * delay: its first window starts on lane timers (as the children its
 * counts start), not in the frontier. Nothing of it reaches the journal.
 */
describe('a map or fork in an item whose children start with a delay', () => {
  /** Each item `x`: `pre` (x + 1), a fork of `a` (a minute's wait, then `a1`) and `b` (-x), joined by their sum. */
  const parkedBranch = (name: string, a1: (x: number) => number) =>
    flow<number>(name)
      .map(
        'items',
        range,
        flow<number>('item')
          .then('pre', (x: number) => x + 1)
          .fork([
            branch(
              'a',
              flow<number>('a')
                .delay('wait', '1m')
                .then(task('a1', a1, { retry: { maxAttempts: 1 } }))
                .build(),
            ),
            branch('b', (x: number) => -x),
          ])
          .join('j', ([a, b]: [number, number]) => a + b)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();

  /** Each item `x`: `pre` (x + 1), a map over `[pre, 2 pre]` each waiting a minute then squared, then their `sum`. */
  const parkedInner = (name: string, sq: (y: number) => number = (y) => y * y) =>
    flow<number>(name)
      .map(
        'items',
        range,
        flow<number>('item')
          .then('pre', (x: number) => x + 1)
          .map(
            'inner',
            (x: number) => [x, 2 * x],
            flow<number>('cell')
              .delay('wait', '1m')
              .then(task('sq', sq, { retry: { maxAttempts: 1 } }))
              .build(),
          )
          .then('sum', (ys: number[]) => ys.reduce((a, b) => a + b, 0))
          .build(),
        { maxConcurrency: 2 },
      )
      .build();

  it('the inner map’s items park on lane timers, then run in their lanes: nothing of them reaches the journal', async () => {
    const h = harness(parkedInner('parked-inner'));
    await h.drain(await h.start(2, 'a'));
    // Each item's map started its two items on their delays' lane timers.
    const timers = await h.store.listTimers('a', 'items[');
    expect(timers.filter((t) => !t.look).map((t) => [t.id, t.parent, t.item])).toEqual([
      ['items[0]/inner[0]/wait', 'items[0]/inner', 0],
      ['items[0]/inner[1]/wait', 'items[0]/inner', 1],
      ['items[1]/inner[0]/wait', 'items[1]/inner', 0],
      ['items[1]/inner[1]/wait', 'items[1]/inner', 1],
    ]);
    const s = await h.drive('a', 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('a')).toEqual([0, 1].map(itemOutput));
    expect((await h.journal('a')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
    expect(new Set(h.ran).size).toBe(h.ran.length);
  });

  it('an inner item whose task after its delay was lost is started again by its map’s look, after its delay', async () => {
    const h = harness(parkedInner('parked-inner-lost'));
    let drops = 0;
    h.setLost((d) => d.key === 'items[1]/inner[0]/sq' && drops++ === 0);
    await h.drain(await h.start(2, 'l'));
    const s = await h.drive('l', 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('l')).toEqual([0, 1].map(itemOutput));
    expect(h.ran.filter((r) => r === 'items[1]/inner[0]/sq@1')).toHaveLength(1);
  });

  it('an inner item that fails for good after its delay fails the run at once, with that item’s error', async () => {
    const h = harness(
      parkedInner('parked-inner-doomed', (y) => {
        if (y === 4) throw new Error('four');
        return y * y;
      }),
    );
    await h.drain(await h.start(2, 'd'));
    const s = await h.drive('d', 60_000);
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[1]/inner[1]/sq', message: 'four' });
    const letters = await h.deadLetters.ofInstance('d');
    expect(letters.map((x) => x.dispatch.key)).toEqual(['items[1]/inner[1]/sq']);
    // The map joined the frontier with its items task, which parks its first window there again; the failing item,
    // past its delay, leaves it for its failure, which fails the run at once: no task ran twice.
    const entries = (await h.store.readJournal('d', 0)).map((e) =>
      e.events.map((x) => `${x.type} ${'key' in x ? x.key : ''}`),
    );
    expect(entries).toEqual([
      ['task-completed items'],
      ['task-completed items[1]/inner'],
      ['task-failed items[1]/inner[1]/sq'],
    ]);
    expect(new Set(h.ran).size).toBe(h.ran.length);
  });

  it('a fork after a task whose branch starts with a delay runs in the item’s lane, the branch on a lane timer', async () => {
    const f = parkedBranch('parked-branch', (x) => x * 10);
    const h = harness(f);
    await h.drain(await h.start(3, 'f'));
    expect((await h.store.listTimers('f', 'items[0]/a')).map((t) => [t.id, t.parent, t.item])).toEqual([
      ['items[0]/a/wait', 'items[0]/j', 0],
    ]);
    const s = await h.drive('f', 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('f')).toEqual([9, 18, 27]);
    expect((await h.journal('f')).filter((e) => e.type !== 'lanes-checked').map((e) => e.type)).toEqual([
      'task-completed',
      'lanes-joined',
    ]);
  });

  it('a branch that fails for good after its delay: the fork joins the frontier with the task before it, and the run fails at once', async () => {
    const h = harness(
      parkedBranch('parked-branch-doomed', () => {
        throw new Error('a1 down');
      }),
    );
    await h.drain(await h.start(1, 'e'));
    const s = await h.drive('e', 60_000);
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[0]/a/a1', message: 'a1 down' });
    const entries = (await h.store.readJournal('e', 0)).map((e) =>
      e.events.map((x) => `${x.type} ${'key' in x ? x.key : ''}`),
    );
    expect(entries).toEqual([['task-completed items'], ['task-completed items[0]/pre'], ['task-failed items[0]/a/a1']]);
    expect(h.ran.filter((r) => r.startsWith('items[0]/a/a1'))).toEqual(['items[0]/a/a1@1']);
  });
});
