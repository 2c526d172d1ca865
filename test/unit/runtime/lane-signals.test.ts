import { describe, expect, it } from 'vitest';
import type { AnyFlow } from '../../../shared/engine/definition.ts';
import { outputId } from '../../../shared/engine/refs.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { branch, type Duration, flow, LoopResult } from '../../../shared/index.ts';
import { deliverSignal, deliveryIdOf } from '../../../shared/runtime/instances.ts';
import { deliverSignalToLanes, ticketId, waitersId } from '../../../shared/runtime/lane-signals.ts';
import { WorkerKilledError } from '../../../shared/runtime/worker.ts';
import { harness, REDISPATCH_MS } from './lane-harness.ts';

/**
 * A signal wait in a map item or fork branch run in lanes, right after a
 * task and before a task, waits in the child's lane: the child parks with
 * no commit to the run's journal (a ticket of the signal's waiter queue,
 * its record, a lane timer), and each signal is one journal entry that
 * gives it to a wait (see `runtime/lane-signals.ts`).
 */

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

type Go = { readonly k: number };

/** Each item `x`: `pre` (x + 1), a wait for `go`, then `post` (the signal's `k` * 100 + pre, read back from `pre`'s output). */
const waitingItems = (name: string, wait: { timeout?: Duration; onTimeout?: 'continue' | 'fail' } = {}) => {
  const item = flow<number>('item').then('pre', (x: number) => x + 1);
  const waited = (
    wait.onTimeout === 'continue'
      ? item.waitForSignal<Go>('go', 'go', { timeout: wait.timeout ?? '1h', onTimeout: 'continue' })
      : item.waitForSignal<Go>('go', 'go', wait.timeout ? { timeout: wait.timeout } : {})
  ) as ReturnType<typeof item.waitForSignal<Go | null>>;
  return flow<number>(name)
    .map('items', range, waited.then('post', (g: Go | null) => (g === null ? -1 : g.k * 100)).build(), {
      maxConcurrency: 2,
    })
    .build();
};

function signals(h: ReturnType<typeof harness>, f: AnyFlow) {
  return async (id: string, payload: unknown) => {
    const r = await deliverSignalToLanes(h.store, f, id, 'go', payload, { now: () => h.clock.now() });
    await h.drain([...r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])), ...r.dispatches]);
    return r;
  };
}

describe('a signal wait in a map item waits in the item’s lane', () => {
  it('children park with nothing in the journal; each signal is one entry, given to the oldest waiter', async () => {
    const f = waitingItems('signals-in-items');
    const h = harness(f);
    const send = signals(h, f);
    await h.drain(await h.start(4, 'a'));
    // Two items park (the window), nothing committed but the items task.
    expect((await h.journal('a')).map((e) => e.type)).toEqual(['task-completed']);
    expect(await h.store.getCounter('a', waitersId('go'))).toBe(2);
    for (const k of [1, 2, 3, 4]) await send('a', { k });
    expect(await h.output('a')).toEqual([100, 200, 300, 400]);
    const events = await h.journal('a');
    expect(events.map((e) => e.type)).toEqual([
      'task-completed',
      'signal',
      'signal',
      'signal',
      'signal',
      'lanes-joined',
    ]);
    // Each signal named its waiter in its own entry: the queue's order is the items' order of arrival.
    expect(events.flatMap((e) => (e.type === 'signal' ? [e.toLane?.wait] : []))).toEqual(
      range(4).map((i) => `items[${i}]/go`),
    );
    // Each task once.
    expect(h.ran.filter((r) => r.endsWith('/post@1')).length).toBe(4);
    expect(new Set(h.ran).size).toBe(h.ran.length);
    // History: one received signal per wait, each naming it.
    const history = (await h.store.readJournal('a', 0)).flatMap((e) => e.history);
    expect(history.filter((x) => x.type === 'signal-received').map((x) => x.key)).toEqual(
      range(4).map((i) => `items[${i}]/go`),
    );
    // The run's snapshot forgot the waits it gave signals to once their outputs were put.
    const s = await h.store.get('a');
    expect(Object.keys(s?.laneSignals?.given ?? {}).length).toBeLessThanOrEqual(1);
    expect(s?.laneSignals?.served.go).toBe(4);
  });

  it('signals sent before any item waits wait in the buffer; each arriving item takes the oldest, one entry each', async () => {
    const f = waitingItems('buffered-signals');
    const h = harness(f);
    const send = signals(h, f);
    const first = await h.start(3, 'b');
    await send('b', { k: 1 });
    await send('b', { k: 2 });
    expect((await h.store.get('b'))?.signals.go?.length).toBe(2);
    await h.drain(first);
    // Items 0 and 1 took the two signals as they parked; item 2 waits for a third.
    expect((await h.store.get('b'))?.status).toBe('RUNNING');
    const taken = (await h.journal('b')).flatMap((e) => (e.type === 'signal-taken' ? [e.wait] : []));
    expect(taken).toEqual(['items[0]/go', 'items[1]/go']);
    await send('b', { k: 3 });
    expect(await h.output('b')).toEqual([100, 200, 300]);
    const history = (await h.store.readJournal('b', 0)).flatMap((e) => e.history);
    expect(history.filter((x) => x.type === 'signal-consumed').map((x) => x.key)).toEqual([
      'items[0]/go',
      'items[1]/go',
    ]);
  });

  it('a wait whose timeout passes goes on with null (onTimeout: continue), through one entry', async () => {
    const f = waitingItems('timeout-continue', { timeout: '10m', onTimeout: 'continue' });
    const h = harness(f);
    const send = signals(h, f);
    await h.drain(await h.start(2, 'c'));
    await send('c', { k: 7 });
    const s = await h.drive('c', 10 * 60_000);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('c')).toEqual([700, -1]);
    expect((await h.journal('c')).filter((e) => e.type === 'signal-timed-out').length).toBe(1);
  });

  it('a wait whose timeout passes fails the run (onTimeout: fail)', async () => {
    const f = waitingItems('timeout-fail', { timeout: '10m' });
    const h = harness(f);
    await h.drain(await h.start(1, 'd'));
    const s = await h.drive('d', 10 * 60_000);
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ name: 'SignalTimeoutError', taskKey: 'items[0]/go' });
    expect((await h.journal('d')).map((e) => e.type)).toEqual(['task-completed', 'signal-timed-out']);
  });
});

describe('a lane signal wait survives crashes', () => {
  it('a signal given in the journal whose deliverer died before putting it: the reaper puts it and sends the item on', async () => {
    const f = waitingItems('given-not-put');
    const h = harness(f);
    await h.drain(await h.start(1, 'e'));
    // The delivery's entry names the waiter, and nothing after it ran.
    await deliverSignal(
      h.store,
      f,
      'e',
      'go',
      { k: 5 },
      {
        now: () => h.clock.now(),
        toLane: { head: 0, served: 1, wait: 'items[0]/go' },
      },
    );
    expect((await h.store.get('e'))?.laneSignals?.given['items[0]/go']).toBeTypeOf('string');
    const s = await h.drive('e', REDISPATCH_MS);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('e')).toEqual([500]);
  });

  it('a waiter that died between its ticket and its record leaves a hole: the next delivery passes over it', async () => {
    const f = waitingItems('hole');
    const h = harness(f);
    const send = signals(h, f);
    const first = await h.start(1, 'g');
    // Ticket 0 taken by a child that died before its record.
    await h.store.addToCounter('g', waitersId('go'), 1);
    await h.drain(first);
    await send('g', { k: 4 });
    expect(await h.output('g')).toEqual([400]);
    expect((await h.store.getValues('g', [ticketId('go', 0)])).get(ticketId('go', 0))).toEqual({ passed: true });
  });

  it('a ticket passed over before its child put its record: the child takes another, and is given the next signal', async () => {
    const f = waitingItems('late-record');
    const h = harness(f);
    const send = signals(h, f);
    const first = await h.start(1, 'k');
    // A scanner tombstoned ticket 0 before the child's record: its put finds it taken.
    await h.store.putValue('k', ticketId('go', 0), { passed: true });
    await h.drain(first);
    expect(await h.store.getCounter('k', waitersId('go'))).toBe(2);
    await send('k', { k: 9 });
    expect(await h.output('k')).toEqual([900]);
  });

  it('the message after the wait was lost: the map’s look sends it again from the wait’s output', async () => {
    const f = waitingItems('lost-after-wait');
    const h = harness(f);
    const send = signals(h, f);
    await h.drain(await h.start(1, 'l'));
    h.setLost((d) => d.key === 'items[0]/post');
    await send('l', { k: 3 });
    h.setLost(() => false);
    expect((await h.store.get('l'))?.status).toBe('RUNNING');
    expect((await h.store.getValues('l', [outputId('items[0]/go')])).get(outputId('items[0]/go'))).toEqual({ k: 3 });
    const s = await h.drive('l', REDISPATCH_MS, 60);
    expect(s?.status).toBe('COMPLETED');
    expect(await h.output('l')).toEqual([300]);
  });
});

describe('a signal wait after a loop, a route or a fork run in the lane', () => {
  it('waits in the item’s lane, the journal holding nothing of the items but the signals', async () => {
    const f = flow<number>('after-lane-steps')
      .map(
        'items',
        range,
        flow<number>('item')
          .loop((x: number) => (x >= 3 ? LoopResult.done(x) : LoopResult.again(x + 1)), { id: 'up', maxIterations: 5 })
          .waitForSignal<Go>('w1', 'go')
          .route((g: Go) => (g.k % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'parity' })
          .branch('even', (g: Go) => g.k)
          .branch('odd', (g: Go) => -g.k)
          .done()
          .waitForSignal<Go>('w2', 'go')
          .then('pre', (g: Go) => g.k)
          .fork([branch('twice', (k: number) => 2 * k), branch('same', (k: number) => k)])
          .join('both', ([a, b]: [number, number]) => a + b)
          .waitForSignal<Go>('w3', 'go')
          .then('post', (g: Go) => g.k)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
    const h = harness(f);
    const send = signals(h, f);
    await h.drain(await h.start(2, 'n'));
    for (let k = 1; k <= 6; k++) await send('n', { k });
    // Each item took three signals, in the order they parked: item 0 k = 1, 3, 5; item 1 k = 2, 4, 6.
    expect(await h.output('n')).toEqual([5, 6]);
    const events = await h.journal('n');
    expect(events.map((e) => e.type)).toEqual(['task-completed', ...Array(6).fill('signal'), 'lanes-joined']);
  });
});

describe('a signal wait before the step that ends a child', () => {
  it('a map that ends the item after its wait runs in the item’s lane too: nothing of the items in the journal', async () => {
    const f = flow<number>('wait-then-map')
      .map(
        'items',
        range,
        flow<number>('item')
          .then('pre', (x: number) => x)
          .waitForSignal<Go>('w', 'go')
          .map(
            'inner',
            (g: Go) => range(g.k),
            (y: number) => y + 1,
          )
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
    const h = harness(f);
    const send = signals(h, f);
    await h.drain(await h.start(2, 'p'));
    await send('p', { k: 2 });
    await send('p', { k: 3 });
    expect(await h.output('p')).toEqual([
      [1, 2],
      [1, 2, 3],
    ]);
    expect((await h.journal('p')).map((e) => e.type)).toEqual(['task-completed', 'signal', 'signal', 'lanes-joined']);
  });
});

describe('a signal wait in a fork branch run in lanes', () => {
  it('waits in the branch’s lane, with nothing in the journal but the signal', async () => {
    const f = flow<number>('fork-wait')
      .fork([
        branch(
          'a',
          flow<number>('a')
            .then('a1', (x: number) => x + 1)
            .waitForSignal<Go>('ok', 'go')
            .then('a2', (g: Go) => g.k)
            .build(),
        ),
        branch(
          'b',
          flow<number>('b')
            .then('b1', (x: number) => x * 2)
            .build(),
        ),
      ])
      .join('j', ([a, b]: [number, number]) => a + b)
      .build();
    const h = harness(f);
    const send = signals(h, f);
    await h.drain(await h.start(5, 'm'));
    expect((await h.journal('m')).map((e) => e.type)).toEqual([]);
    await send('m', { k: 1 });
    expect(await h.output('m')).toBe(11);
    expect((await h.journal('m')).map((e) => e.type)).toEqual(['signal', 'lanes-joined', 'task-completed']);
  });
});

/**
 * Kills whatever process makes the `at`-th write (to the store, the claims
 * or the queue): that write and every later call of the process fail, as
 * if it died there, until `revive` (the next process).
 */
function killer() {
  const WRITES = new Set([
    'putValue',
    'addToCounter',
    'putTimer',
    'fireTimer',
    'append',
    'compact',
    'unwatch',
    'create',
    'send',
    'reserve',
    'start',
    'renew',
    'release',
  ]);
  let writes = 0;
  let at = Number.POSITIVE_INFINITY;
  let dead = false;
  const wrap = <T extends object>(part: T): T =>
    new Proxy(part, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          // Calls of the store, the claims and the queue are asynchronous: a dead process's fail as theirs would.
          if (dead) return Promise.reject(new WorkerKilledError('dispatched', 'dead process'));
          if (typeof prop === 'string' && WRITES.has(prop) && ++writes === at) {
            dead = true;
            return Promise.reject(new WorkerKilledError('dispatched', `killed before write ${at} (${prop})`));
          }
          return value.apply(target, args);
        };
      },
    });
  return {
    wrap,
    killAt: (n: number) => {
      at = n;
    },
    revive: () => {
      dead = false;
    },
    get writes() {
      return writes;
    },
  };
}

describe('a process killed before any write of a run with lane signal waits', () => {
  /** Three items, a signal sent before they park (it waits in the buffer), two after; each delivery retried until it answers. */
  async function scenario(k: ReturnType<typeof killer>) {
    const f = waitingItems('killed-anywhere');
    const h = harness(f, { wrap: k.wrap });
    const survive = async (op: () => Promise<unknown>) => {
      try {
        await op();
      } catch (e) {
        if (!(e instanceof WorkerKilledError)) throw e;
      } finally {
        k.revive();
      }
    };
    const send = async (n: number) => {
      for (let tries = 0; tries < 5; tries++) {
        let answered = false;
        await survive(async () => {
          const r = await deliverSignalToLanes(
            h.store,
            f,
            'x',
            'go',
            { k: n },
            {
              now: () => h.clock.now(),
              deliveryId: deliveryIdOf(`signal-${n}`),
            },
          );
          answered = true;
          await h.queue.send([
            ...r.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : [])),
            ...r.dispatches,
          ]);
        });
        if (answered) return;
      }
      throw new Error(`signal ${n} never answered`);
    };
    let first: readonly Dispatch[] = [];
    // The client starts again until it has an answer; a start that was made is there (its dispatch is the reaper's).
    while ((await h.store.get('x')) === undefined) {
      await survive(async () => {
        first = await h.start(3, 'x');
      });
    }
    await send(1);
    await survive(() => h.drain(first));
    await send(2);
    await send(3);
    for (let i = 0; i < 400 && (await h.store.get('x'))?.status === 'RUNNING'; i++) {
      h.clock.advance(REDISPATCH_MS);
      await survive(() => h.reap());
      await survive(() => h.drain());
    }
    return h;
  }

  it('for every write: the run ends with each signal taken by one item, once, and each output put once', async () => {
    const clean = killer();
    const h0 = await scenario(clean);
    expect(await h0.output('x')).toEqual([100, 200, 300]);
    const total = clean.writes;
    expect(total).toBeGreaterThan(30);
    for (let at = 1; at <= total; at++) {
      const k = killer();
      k.killAt(at);
      const h = await scenario(k);
      const s = await h.store.get('x');
      expect(s?.status, `killed at write ${at}`).toBe('COMPLETED');
      expect([...((await h.output('x')) as number[])].sort(), `killed at write ${at}`).toEqual([100, 200, 300]);
      const events = await h.journal('x');
      expect(events.filter((e) => e.type === 'signal').length, `killed at write ${at}`).toBe(3);
      const outputs = [...h.store.commits.entries()].filter(([id]) => id.includes('|out:'));
      for (const [id, n] of outputs) expect(n, `${id}, killed at write ${at}`).toBe(1);
    }
  });
});
