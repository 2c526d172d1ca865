import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmulatedLocalStack, startLocalStack } from '../../local/stack.ts';
import { countRequests, type RequestCounter } from '../../shared/adapters/aws/request-counter.ts';
import { forkInputId, mapCountId, mapDoneId } from '../../shared/engine/lanes.ts';
import { type AnyFlow, branch, type Flow, flow, LoopResult, task } from '../../shared/index.ts';
import { waitersId } from '../../shared/runtime/lane-signals.ts';
import { laneCounterId } from '../../shared/runtime/lanes.ts';
import { apiClient, waitFor } from '../support/local-api.ts';

const ITEMS = 1_000;
/** The instances table of the local stack's dynalite (see `local/dynalite.ts`). */
const LOCAL_INSTANCES_TABLE = 'sayiir-instances';
/** A map named `name` over the items `0..n-1`, `body` on each, `maxConcurrency` at once, then their sum. */
function summedMap(
  name: string,
  body: Flow<number, number> | ((x: number) => number),
  maxConcurrency = 16,
): Flow<number, number> {
  return flow<number>(name)
    .map('items', (n: number) => Array.from({ length: n }, (_, i) => i), body, { maxConcurrency })
    .then('sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
    .build();
}

const mapped = summedMap('mapped', (x: number) => x * 2);

/**
 * A local stack with AWS emulation that counts its DynamoDB requests and its
 * failed conditional writes, in a folder of its own.
 */
function countingStack(name: string, workflows: AnyFlow[], reaperIntervalMs: number) {
  const t = {
    dir: '',
    stack: undefined as unknown as EmulatedLocalStack,
    dynamo: undefined as unknown as RequestCounter,
    failedConditions: 0,
  };
  beforeAll(async () => {
    t.dir = await mkdtemp(join(tmpdir(), `sayiir-${name}-`));
    t.stack = await startLocalStack({
      emulateAws: true,
      dataDir: t.dir,
      workflows,
      pollerConcurrency: 16,
      reaperIntervalMs,
      instrument: (clients) => {
        t.dynamo = countRequests(clients.dynamo);
        clients.dynamo.middlewareStack.add(
          (next) => async (args) => {
            try {
              return await next(args);
            } catch (e) {
              if ((e as Error).name === 'ConditionalCheckFailedException') t.failedConditions++;
              throw e;
            }
          },
          { step: 'initialize', name: 'failedConditions' },
        );
      },
    });
  });
  afterAll(async () => {
    await t.stack?.stop();
    await rm(t.dir, { recursive: true, force: true });
  });
  return t;
}

describe('maps of no-op items over the wire, 16 batches in flight', () => {
  const t = countingStack('map', [mapped], 60_000);

  it('costs at most 2.2 writes and 0.05 failed conditional writes per item, with the right output', async () => {
    const call = apiClient(t.stack);
    t.dynamo.reset();
    t.failedConditions = 0;
    const started = await call('POST', '/workflows/mapped/instances', { input: ITEMS, instanceId: 'map-1' });
    expect(started.status).toBe(201);
    let view: { status: string; output?: number } = { status: 'RUNNING' };
    while (view.status === 'RUNNING') view = (await call('GET', '/instances/map-1?wait=25')).json;
    expect(view).toMatchObject({ status: 'COMPLETED', output: ITEMS * (ITEMS - 1) });
    const writes = ['PutItemCommand', 'UpdateItemCommand'].reduce((n, c) => n + t.dynamo.count(c), 0);
    console.log(
      `map of ${ITEMS}: ${(writes / ITEMS).toFixed(3)} writes and ${(t.failedConditions / ITEMS).toFixed(3)} failed conditional writes per item; ${JSON.stringify(t.dynamo.snapshot())}`,
    );
    expect(writes / ITEMS).toBeLessThanOrEqual(2.2);
    expect(t.failedConditions / ITEMS).toBeLessThanOrEqual(0.05);
    // The run's journal holds the map's start and end, not one entry per item.
    const history = (await call('GET', '/instances/map-1/history')).json.items as { type: string }[];
    expect(history.filter((e) => e.type === 'task-completed').length).toBeLessThan(10);
  });

  it('runs a map of 10,000 items to the right output, each result committed once, the snapshot item under 8 KB', {
    timeout: 180_000,
  }, async () => {
    const n = 10_000;
    const call = apiClient(t.stack);
    const started = await call('POST', '/workflows/mapped/instances', { input: n, instanceId: 'map-10k' });
    expect(started.status).toBe(201);
    let view: { status: string; output?: number } = { status: 'RUNNING' };
    while (view.status === 'RUNNING') view = (await call('GET', '/instances/map-10k?wait=25')).json;
    expect(view).toMatchObject({ status: 'COMPLETED', output: n * (n - 1) });
    // The snapshot item as DynamoDB holds it: every attribute, names included, in UTF-8.
    const item = await t.stack.dynamo.send(
      new GetItemCommand({
        TableName: LOCAL_INSTANCES_TABLE,
        Key: { pk: { S: 'I#map-10k' }, sk: { S: 'S' } },
        ConsistentRead: true,
      }),
    );
    const bytes = Buffer.byteLength(JSON.stringify(item.Item), 'utf8');
    expect(item.Item).toBeDefined();
    console.log(`map of ${n}: snapshot item ${bytes} bytes (JSON of its attributes, an upper bound)`);
    expect(bytes).toBeLessThan(8 * 1024);
    // One result per item, and the counter moved once per result.
    const results = await t.stack.store.listValueIds('map-10k', 'out:items[');
    expect(new Set(results).size).toBe(n);
    expect(await t.stack.store.getCounter('map-10k', laneCounterId('items'))).toBe(n);
  });
});

/**
 * The same four steps with the delay at three places: second (the items
 * park on lane timers between their lanes' tasks), first (the first window
 * starts in the frontier, the others on lane timers, then all run in
 * lanes) or last (the items park on a lane timer after their last task:
 * its end puts their result and counts them).
 */
type DelayAt = 'second' | 'first' | 'last';
const pre = (x: number) => x + 1;
const post = (x: number) => x * 2;
const last = (x: number) => x - 1;
const parkedBody = (at: DelayAt) => {
  const b = flow<number>(`delay-${at}`);
  if (at === 'first') return b.delay('rest', 10).then('pre', pre).then('post', post).then('last', last).build();
  if (at === 'second') return b.then('pre', pre).delay('rest', 10).then('post', post).then('last', last).build();
  return b.then('pre', pre).then('post', post).then('last', last).delay('rest', 10).build();
};
const parkedMap = (at: DelayAt) => summedMap(`delay-${at}-map`, parkedBody(at));

/**
 * The same result through a route on the item's parity (a branch of one
 * task, a branch of a child flow of two tasks) and a child flow: all in
 * the items' lanes.
 */
const routedMap = summedMap(
  'routed-map',
  flow<number>('routed-item')
    .then('pre', pre)
    .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'parity' })
    .branch('even', task('double', post))
    .branch(
      'odd',
      flow<number>('odd')
        .then('keep', (x: number) => x)
        .then('twice', post)
        .build(),
    )
    .done()
    .thenFlow(flow<number>('tail').then('last', last).build())
    .build(),
);

/** The same result through a route on the item's parity, then a fork after it (from the branch's output), in the items' lanes. */
const routedForkMap = summedMap(
  'routed-fork-map',
  flow<number>('routed-fork-item')
    .then('pre', pre)
    .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'parity' })
    .branch('even', task('double', post))
    .branch('odd', task('twice', post))
    .done()
    .fork([branch('kept', (x: number) => x), branch('none', (x: number) => x * 0)])
    .join('both', ([a, b]: [number, number]) => a + b)
    .then('last', last)
    .build(),
);

/** The same result through a fork in each item (`post` beside a branch of nothing), in the items' lanes. */
const forkedMap = summedMap(
  'forked-map',
  flow<number>('forked-item')
    .then('pre', pre)
    .fork([branch('twice', task('double', post)), branch('none', (x: number) => x * 0)])
    .join('both', ([a, b]: [number, number]) => a + b)
    .then('last', last)
    .build(),
);

/** The same result through a map in each item (of one element, doubled), in the items' lanes. */
const mapsInMap = summedMap(
  'maps-in-map',
  flow<number>('mapping-item')
    .then('pre', pre)
    .map('inner', (x: number) => [x], task('double', post))
    .then('last', ([x]: number[]) => last(x as number))
    .build(),
);

/** The same result through a loop that ends each item (doubles once, then takes one off), its result put apart. */
const loopLastMap = summedMap(
  'loop-last-map',
  flow<number>('loop-last-item')
    .then('pre', (x: number) => ({ v: x + 1, left: 1 }))
    .loop(
      (s: { v: number; left: number }) =>
        s.left > 0 ? LoopResult.again({ v: post(s.v), left: s.left - 1 }) : LoopResult.done(last(s.v)),
      { id: 'twice', maxIterations: 3 },
    )
    .build(),
);

/** The same result through a route on the item's parity that ends each item, its result put apart. */
const routeLastMap = summedMap(
  'route-last-map',
  flow<number>('route-last-item')
    .then('pre', pre)
    .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'parity' })
    .branch(
      'even',
      task('both', (x: number) => last(post(x))),
    )
    .branch('odd', flow<number>('odd').then('twice', post).then('last', last).build())
    .done()
    .build(),
);

/** The same result through a map of one element that ends each item: the item's result is the inner map's results. */
const mapLastMap = flow<number>('map-last-map')
  .map(
    'items',
    (n: number) => Array.from({ length: n }, (_, i) => i),
    flow<number>('map-last-item')
      .then('pre', pre)
      .map(
        'inner',
        (x: number) => [x],
        task('double', (x: number) => last(post(x))),
      )
      .build(),
    { maxConcurrency: 16 },
  )
  .then('sum', (xs: number[][]) => xs.flat().reduce((a, b) => a + b, 0))
  .build();

/** The same result through a map in each item, then a fork on its results (started by the map's end), in the lanes. */
const mapForkMap = summedMap(
  'map-fork-map',
  flow<number>('map-fork-item')
    .then('pre', pre)
    .map('inner', (x: number) => [x], task('double', post))
    .fork([branch('kept', ([x]: number[]) => x as number), branch('none', () => 0)])
    .join('both', ([a, b]: [number, number]) => a + b)
    .then('last', last)
    .build(),
);

/** The same result through a map in each item whose items start with a delay: they park on lane timers. */
const parkedInnerMap = summedMap(
  'parked-inner-map',
  flow<number>('parked-inner-item')
    .then('pre', pre)
    .map('inner', (x: number) => [x], flow<number>('cell').delay('tick', 10).then('double', post).build())
    .then('last', ([x]: number[]) => last(x as number))
    .build(),
);

describe('map items that park on a delay, over the wire', () => {
  const PARKED = 300;
  const t = countingStack(
    'parked',
    [
      parkedMap('second'),
      parkedMap('first'),
      parkedMap('last'),
      routedMap,
      routedForkMap,
      forkedMap,
      mapsInMap,
      loopLastMap,
      routeLastMap,
      mapLastMap,
      mapForkMap,
      parkedInnerMap,
    ],
    100,
  );

  async function measure(workflow: string, instanceId: string) {
    const call = apiClient(t.stack);
    t.dynamo.reset();
    t.failedConditions = 0;
    expect((await call('POST', `/workflows/${workflow}/instances`, { input: PARKED, instanceId })).status).toBe(201);
    let view: { status: string; output?: number } = { status: 'RUNNING' };
    while (view.status === 'RUNNING') view = (await call('GET', `/instances/${instanceId}?wait=25`)).json;
    const expected = Array.from({ length: PARKED }, (_, i) => (i + 1) * 2 - 1).reduce((a, b) => a + b, 0);
    expect(view).toMatchObject({ status: 'COMPLETED', output: expected });
    const writes = ['PutItemCommand', 'UpdateItemCommand'].reduce((n, c) => n + t.dynamo.count(c), 0);
    const events = (await t.stack.store.readJournal(instanceId, 0)).flatMap((e) => e.events);
    const entries = events.flatMap((e) => (e.type === 'task-completed' && e.key.startsWith('items[') ? [e] : []));
    // Any other entry about one item (a timer, a start), by its type.
    const perItem = events.flatMap((e) =>
      e.type !== 'task-completed' && 'key' in e && e.key.startsWith('items[') ? [e.type] : [],
    );
    const figures = {
      writes: writes / PARKED,
      failed: t.failedConditions / PARKED,
      journalled: entries.length / PARKED,
    };
    console.log(
      `${workflow}, ${PARKED} items: ${figures.writes.toFixed(2)} writes, ${figures.failed.toFixed(3)} failed conditional writes and ${figures.journalled.toFixed(2)} task completions in the journal per item`,
    );
    return { figures, entries, perItem };
  }

  it('items park on lane timers: the journal holds nothing per item, and the items do not race for it', async () => {
    const second = await measure('delay-second-map', 'parked-1');
    expect(second.entries).toHaveLength(0);
    expect(second.perItem).toEqual([]);
    const timers = await t.stack.store.listTimers('parked-1', '');
    expect(timers).toHaveLength(PARKED);
    expect(timers.every((x) => x.firedAt !== undefined)).toBe(true);
    // Before lane timers, each item's join and timer raced for the journal: 4.5 failed conditional writes per item.
    expect(second.figures.failed).toBeLessThanOrEqual(0.1);
    const first = await measure('delay-first-map', 'parked-2');
    expect(first.entries).toHaveLength(0);
    // The first window waits in the frontier, started with the map; every later item on its lane timer.
    expect(first.perItem.filter((e) => e !== 'timer-fired')).toEqual([]);
    expect(first.perItem).toHaveLength(16);
    expect(await t.stack.store.listTimers('parked-2', '')).toHaveLength(PARKED - 16);
    expect(first.figures.failed).toBeLessThanOrEqual(0.1);
    // The delay last: each item's result is put when its delay ends, and counted there.
    const last = await measure('delay-last-map', 'parked-3');
    expect(last.entries).toHaveLength(0);
    expect(last.perItem).toEqual([]);
    expect(await t.stack.store.listTimers('parked-3', '')).toHaveLength(PARKED);
    expect(last.figures.failed).toBeLessThanOrEqual(0.1);
  });

  it('items run a route and child flows in their lanes: the journal holds nothing per item', async () => {
    const routed = await measure('routed-map', 'routed-1');
    expect(routed.entries).toHaveLength(0);
    expect(routed.perItem).toEqual([]);
    // Before routes ran in lanes, each item joined the frontier for its route and went on through the journal from
    // there: 4.5 completions, 34.7 writes and 29.4 failed conditional writes per item.
    expect(routed.figures.failed).toBeLessThanOrEqual(0.1);
    // A fork after the route starts from the branch's output (item 3's `pre` is 4: `double`), put beside it as its input.
    const forked = await measure('routed-fork-map', 'routed-2');
    expect(forked.entries).toHaveLength(0);
    expect(forked.perItem).toEqual([]);
    const input = await t.stack.store.getValues('routed-2', [forkInputId('items[3]/both')]);
    expect(input.get(forkInputId('items[3]/both'))).toEqual({ v: 'out:items[3]/double' });
    expect(forked.figures.failed).toBeLessThanOrEqual(0.1);
  });

  it('items run a fork in their lanes, its branches in lanes of their own: the journal holds nothing per item', async () => {
    const forked = await measure('forked-map', 'forked-1');
    expect(forked.entries).toHaveLength(0);
    expect(forked.perItem).toEqual([]);
    // Each item's fork counted its two branches on its own counter, and looked at them once, a lane timer of its item.
    expect(await t.stack.store.getCounter('forked-1', laneCounterId('items[7]/both'))).toBe(2);
    const looks = (await t.stack.store.listTimers('forked-1', '')).filter((x) => x.look);
    expect(looks).toHaveLength(PARKED);
    // Before forks ran in lanes, each item joined the frontier for its fork and went on through the journal from
    // there: 3 completions (`pre`, the join, `last`), 51.1 writes and 28.9 failed conditional writes per item.
    expect(forked.figures.failed).toBeLessThanOrEqual(0.1);
  });

  it('items run a map in their lanes, its items in lanes of their own: the journal holds nothing per item', async () => {
    const mapped = await measure('maps-in-map', 'maps-1');
    expect(mapped.entries).toHaveLength(0);
    expect(mapped.perItem).toEqual([]);
    // Each item's map counted its one item on its own counter, its count and done mark beside its items.
    expect(await t.stack.store.getCounter('maps-1', laneCounterId('items[7]/inner'))).toBe(1);
    const marks = await t.stack.store.getValues('maps-1', [mapCountId('items[7]/inner'), mapDoneId('items[7]/inner')]);
    expect([...marks.values()]).toEqual([1, true]);
    // Before maps ran in lanes, each item joined the frontier for its map and went on through the journal from
    // there: 3 completions (`pre`, the map's items, `last`), 40.7 writes and 27.4 failed conditional writes per item.
    expect(mapped.figures.failed).toBeLessThanOrEqual(0.1);
  });

  it('items that end with a loop, a route or a map, run a fork after a map, or a map whose items start with a delay, stay in their lanes: nothing per item in the journal', async () => {
    // Before, each such item joined the frontier (a loop, a route or a map last; a fork after a map) and went on
    // through the journal from there, its items racing for it.
    for (const [workflow, id, result] of [
      ['loop-last-map', 'ends-1', 'out:items[7]/twice:result'],
      ['route-last-map', 'ends-2', 'out:items[7]/parity:result'],
      ['map-last-map', 'ends-3', 'out:items[7]/inner:result'],
    ] as const) {
      const ended = await measure(workflow, id);
      expect(ended.entries).toHaveLength(0);
      expect(ended.perItem).toEqual([]);
      expect(ended.figures.failed).toBeLessThanOrEqual(0.05);
      // Item 7's result, put under its own id once its last step (or its map) ended: 2 * 8 - 1.
      const stored = await t.stack.store.getValues(id, [result]);
      expect(stored.get(result)).toEqual(workflow === 'map-last-map' ? [15] : 15);
    }
    const forked = await measure('map-fork-map', 'ends-4');
    expect(forked.entries).toHaveLength(0);
    expect(forked.perItem).toEqual([]);
    expect(forked.figures.failed).toBeLessThanOrEqual(0.05);
    // Item 7's fork started from its map's results, put beside it as its input, once its map's done mark was there.
    const input = await t.stack.store.getValues('ends-4', [forkInputId('items[7]/both'), mapDoneId('items[7]/inner')]);
    expect([...input.values()]).toEqual([{ each: 'out:items[7]/inner[]', n: 1 }, true]);
    // An inner map whose items start with a delay: they start on lane timers, not in the frontier.
    const parked = await measure('parked-inner-map', 'ends-5');
    expect(parked.entries).toHaveLength(0);
    expect(parked.perItem).toEqual([]);
    expect(parked.figures.failed).toBeLessThanOrEqual(0.05);
    const timers = (await t.stack.store.listTimers('ends-5', 'items[7]/inner[')).map((x) => [x.id, x.parent]);
    expect(timers).toEqual([['items[7]/inner[0]/tick', 'items[7]/inner']]);
  });
});

describe('map items that wait for signals in their lanes, over the wire', () => {
  const N = 300;
  /** Each item: `pre`, a wait for `go`, then the signal's `k`; all items at once, so all wait together. */
  const signalMap = summedMap(
    'signal-map',
    flow<number>('signal-item')
      .then('pre', pre)
      .waitForSignal<{ k: number }>('go', 'go')
      .then('got', (g: { k: number }) => g.k)
      .build(),
    N,
  );
  const t = countingStack('signals', [signalMap], 100);
  const writes = () => ['PutItemCommand', 'UpdateItemCommand'].reduce((n, c) => n + t.dynamo.count(c), 0);

  /** Starts a run whose items all park, then sends `N` signals, `senders` at a time; the figures per item. */
  async function measure(instanceId: string, senders: number) {
    const call = apiClient(t.stack);
    t.dynamo.reset();
    t.failedConditions = 0;
    expect((await call('POST', '/workflows/signal-map/instances', { input: N, instanceId })).status).toBe(201);
    await waitFor(
      async () => ((await t.stack.store.getCounter(instanceId, waitersId('go'))) >= N ? true : undefined),
      60_000,
    );
    const parked = { writes: writes() / N, failed: t.failedConditions / N };
    const before = { writes: writes(), failed: t.failedConditions };
    let next = 1;
    const sender = async () => {
      for (let k = next++; k <= N; k = next++) {
        const r = await call('POST', `/instances/${instanceId}/signals/go`, { k });
        expect(r.status, `signal ${k}`).toBe(202);
      }
    };
    await Promise.all(Array.from({ length: senders }, sender));
    let view: { status: string; output?: number } = { status: 'RUNNING' };
    while (view.status === 'RUNNING') view = (await call('GET', `/instances/${instanceId}?wait=25`)).json;
    // Each signal went to one item: the sum of every `k`.
    expect(view).toMatchObject({ status: 'COMPLETED', output: (N * (N + 1)) / 2 });
    const delivered = { writes: (writes() - before.writes) / N, failed: (t.failedConditions - before.failed) / N };
    const events = (await t.stack.store.readJournal(instanceId, 0)).flatMap((e) => e.events);
    console.log(
      `${N} items waiting for signals, ${senders} sender(s): parking ${parked.writes.toFixed(2)} writes and ${parked.failed.toFixed(3)} failed conditional writes per item; delivering ${delivered.writes.toFixed(2)} writes and ${delivered.failed.toFixed(3)} failed conditional writes per signal`,
    );
    return { parked, delivered, events };
  }

  it('items park with nothing in the journal, and do not race for it; each signal is one entry that names its item', async () => {
    const { parked, delivered, events } = await measure('signals-1', 1);
    // The journal: the items, one entry per signal, the end; nothing of an item's own.
    expect(events.filter((e) => e.type === 'task-completed').map((e) => 'key' in e && e.key)).toEqual(['items', 'sum']);
    const signals = events.filter((e) => e.type === 'signal');
    expect(signals).toHaveLength(N);
    // Every item parked before the first signal: each signal's entry named the item it went to.
    expect(new Set(signals.map((e) => e.type === 'signal' && e.toLane?.wait)).size).toBe(N);
    // Before waits in lanes, each item joined the frontier for its wait: all at once, racing for the journal.
    expect(parked.failed).toBeLessThanOrEqual(0.05);
    expect(delivered.failed).toBeLessThanOrEqual(0.05);
  });

  it('signals sent by 8 clients at once race for the journal only with each other, and each goes to one item', async () => {
    const { events } = await measure('signals-8', 8);
    expect(events.filter((e) => e.type === 'signal')).toHaveLength(N);
    expect(events.filter((e) => e.type === 'task-completed')).toHaveLength(2);
  });
});

describe('map items on lane timers, on the embedded back end (SQLite)', () => {
  let dir = '';
  let stack: Awaited<ReturnType<typeof startLocalStack>>;
  const tries = new Map<number, number>();
  const flaky = flow<number>('timer-item')
    .then('pre', (x: number) => x + 1)
    .delay('rest', 20)
    .then(
      task(
        'call',
        (x: number, ctx) => {
          tries.set(x, ctx.attempt);
          if (x % 3 === 0 && ctx.attempt === 1) throw new Error('rate limited');
          return x * 2;
        },
        { retry: { maxAttempts: 3, initialDelay: '20ms', jitter: 'none' } },
      ),
    )
    .then('last', (x: number) => x - 1)
    .build();
  const timed = summedMap('timer-map', flaky, 8);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-embedded-timers-'));
    stack = await startLocalStack({ dataDir: dir, workflows: [timed], reaperIntervalMs: 50 });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('parks each item on its delay and retries a failed call in its lane: the journal holds nothing per item', async () => {
    const n = 30;
    const call = apiClient(stack);
    expect((await call('POST', '/workflows/timer-map/instances', { input: n, instanceId: 'timed-1' })).status).toBe(
      201,
    );
    let view: { status: string; output?: number } = { status: 'RUNNING' };
    while (view.status === 'RUNNING') view = (await call('GET', '/instances/timed-1?wait=25')).json;
    const expected = Array.from({ length: n }, (_, i) => (i + 1) * 2 - 1).reduce((a, b) => a + b, 0);
    expect(view).toMatchObject({ status: 'COMPLETED', output: expected });
    const timers = await stack.store.listTimers('timed-1', '');
    const retried = Array.from({ length: n }, (_, i) => i).filter((i) => (i + 1) % 3 === 0);
    expect(
      timers
        .filter((t) => t.retry)
        .map((t) => t.item)
        .sort((a, b) => a - b),
    ).toEqual(retried);
    expect(timers.filter((t) => !t.retry)).toHaveLength(n);
    expect(timers.every((t) => t.firedAt !== undefined)).toBe(true);
    const events = (await stack.store.readJournal('timed-1', 0)).flatMap((e) => e.events);
    expect(events.filter((e) => 'key' in e && e.key.startsWith('items['))).toEqual([]);
  });
});
