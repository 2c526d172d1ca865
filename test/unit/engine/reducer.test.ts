import { describe, expect, it } from 'vitest';
import { initSnapshot, reduce } from '../../../shared/engine/reducer.ts';
import type { Effect, Snapshot } from '../../../shared/engine/snapshot.ts';
import { branch, flow, task } from '../../../shared/index.ts';

const f = flow<number>('pure')
  .then(task('a', (n: number) => n, { priority: 'high', pool: 'gpu', retry: { maxAttempts: 2, jitter: 'none' } }))
  .fork([branch('x', (n: number) => n), branch('y', (n: number) => n)])
  .join('j', ([x, y]) => x + y)
  .build();

/** A fork with a branch that ends with a wait: not in lanes, so its branches go through the frontier. */
const waits = flow<number>('pure-wait')
  .then('a', (n: number) => n)
  .fork([
    branch('x', (n: number) => n),
    branch(
      'y',
      // A branch that ends with two delays (a last delay after a task would end a lane): the fork is not in lanes.
      flow<number>('y')
        .then('last', (n: number) => n)
        .delay('nap', '1s')
        .delay('doze', '1s')
        .build(),
    ),
  ])
  .join('j', ([x, y]) => x + y)
  .build();

const start = (): Snapshot => reduce(f, initSnapshot(f, 'i-1', 'input:n', 1000), { type: 'start' }, 1000).snapshot;
const dispatched = (effects: readonly Effect[]) =>
  effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch.key] : []));

describe('reducer', () => {
  it('starts by dispatching the first task with its priority, pool and input ref', () => {
    const r = reduce(f, initSnapshot(f, 'i-1', 'input:n', 1000), { type: 'start' }, 1000);
    expect(r.snapshot.version).toBe(1);
    expect(r.effects).toEqual([
      {
        type: 'dispatch',
        dispatch: {
          instanceId: 'i-1',
          workflow: 'pure',
          key: 'a',
          qid: 'a',
          input: { v: 'input:n' },
          attempt: 1,
          gen: 1,
          priority: 'high',
          pool: 'gpu',
        },
      },
    ]);
  });

  it('applying the same completion twice changes nothing', () => {
    const s1 = start();
    const once = reduce(f, s1, { type: 'task-completed', key: 'a', attempt: 1 }, 2000);
    expect(dispatched(once.effects).sort()).toEqual(['x', 'y']);
    const twice = reduce(f, once.snapshot, { type: 'task-completed', key: 'a', attempt: 1 }, 3000);
    expect(twice.changed).toBe(false);
    expect(twice.effects).toEqual([]);
    expect(twice.snapshot).toBe(once.snapshot);
  });

  it('joins a fork not in lanes only when every branch completed, with the outputs in branch order', () => {
    const begun = reduce(waits, initSnapshot(waits, 'i-1', 'input:n', 1000), { type: 'start' }, 1000).snapshot;
    let s = reduce(waits, begun, { type: 'task-completed', key: 'a', attempt: 1 }, 2000).snapshot;
    expect(s.forks.j).toMatchObject({ remaining: 2 });
    expect(s.forks.j?.lanes).toBeUndefined();
    s = reduce(waits, s, { type: 'task-completed', key: 'y/last', attempt: 1 }, 2500).snapshot;
    s = reduce(waits, s, { type: 'timer-fired', key: 'y/nap' }, 3500).snapshot;
    const afterY = reduce(waits, s, { type: 'timer-fired', key: 'y/doze' }, 4500);
    expect(dispatched(afterY.effects)).toEqual([]);
    s = afterY.snapshot;
    const afterX = reduce(waits, s, { type: 'task-completed', key: 'x', attempt: 1 }, 4502);
    const join = afterX.effects.find((e) => e.type === 'dispatch');
    expect(join?.type === 'dispatch' && join.dispatch.input).toEqual({ all: [{ v: 'out:x' }, { v: 'out:y/last' }] });
  });

  it('starts the branches of a fork of tasks in lanes: none in the frontier, each dispatch naming its lane', () => {
    const r = reduce(f, start(), { type: 'task-completed', key: 'a', attempt: 1, valueId: 'j:1' }, 2000);
    expect(r.snapshot.tasks).toEqual({});
    const fork = Object.values(r.snapshot.forks)[0];
    expect(fork?.lanes).toMatchObject({ qid: 'j', idx: [], input: { v: 'j:1' }, window: 2, seen: 0 });
    const lanes = r.effects.flatMap((e) => (e.type === 'dispatch' ? [[e.dispatch.key, e.dispatch.lane]] : []));
    expect(lanes).toEqual([
      ['x', { parent: 'j', item: 0 }],
      ['y', { parent: 'j', item: 1 }],
    ]);
    // A branch's completion in its lane is not an event of the run: the journal sees the fork joined, once.
    expect(reduce(f, r.snapshot, { type: 'task-completed', key: 'x', attempt: 1 }, 2001).changed).toBe(false);
  });

  it('joins a fork in lanes on lanes-joined, on the branch results by their ids, and never twice', () => {
    const s = reduce(f, start(), { type: 'task-completed', key: 'a', attempt: 1 }, 2000).snapshot;
    const joined = reduce(f, s, { type: 'lanes-joined', key: 'j', chain: { key: 'j', claim: 'y' } }, 2001);
    expect(joined.snapshot.forks).toEqual({});
    expect(joined.snapshot.tasks.j).toMatchObject({
      qid: 'j',
      state: 'dispatched',
      claim: 'y',
      input: { all: [{ v: 'out:x' }, { v: 'out:y' }] },
    });
    expect(dispatched(joined.effects)).toEqual(['j']);
    expect(reduce(f, joined.snapshot, { type: 'lanes-joined', key: 'j' }, 2002).changed).toBe(false);
  });

  it('a child goes on in the frontier from one step only: a late failure of a step it passed changes nothing', () => {
    const two = flow<number>('two-steps')
      .fork([
        branch('one', (n: number) => n),
        branch(
          'two',
          flow<number>('two')
            .then(task('first', (n: number) => n, { retry: { maxAttempts: 2, jitter: 'none' } }))
            .then(task('second', (n: number) => n, { retry: { maxAttempts: 2, jitter: 'none' } }))
            .build(),
        ),
      ])
      .join('j2', ([a, b]) => a + b)
      .build();
    const begun = reduce(two, initSnapshot(two, 'i-2', 'input:n', 1000), { type: 'start' }, 1000).snapshot;
    const error = { name: 'E', message: 'm', retryable: true };
    const lane = (qid: string, v: string) => ({ parent: 'j2', qid, idx: [], input: { v } });
    const second = reduce(
      two,
      begun,
      { type: 'task-failed', key: 'two/second', attempt: 1, error, lane: lane('two/second', 'out:two/first') },
      2000,
    );
    expect(Object.keys(second.snapshot.tasks)).toEqual(['two/second']);
    // A duplicate message of the first step, run again, fails late.
    const late = reduce(
      two,
      second.snapshot,
      { type: 'task-failed', key: 'two/first', attempt: 1, error, lane: lane('two/first', 'input:n') },
      2001,
    );
    expect(late.changed).toBe(false);
    expect(Object.keys(late.snapshot.tasks)).toEqual(['two/second']);
  });

  it('a failing branch in its lane joins the frontier with its failure, and the retry policy takes it from there', () => {
    const s = reduce(f, start(), { type: 'task-completed', key: 'a', attempt: 1, valueId: 'j:1' }, 2000).snapshot;
    const failed = reduce(
      f,
      s,
      {
        type: 'task-failed',
        key: 'y',
        attempt: 1,
        error: { name: 'E', message: 'm', retryable: false },
        lane: { parent: 'j', qid: 'y', idx: [], input: { v: 'j:1' } },
      },
      2001,
    );
    expect(failed.snapshot.status).toBe('FAILED');
    expect(failed.snapshot.tasks.y).toMatchObject({ state: 'failed', input: { v: 'j:1' } });
    expect(failed.snapshot.forks.j?.lanes).toBeDefined();
  });

  it('ignores a failure of a stale attempt', () => {
    const s1 = start();
    const failed = reduce(
      f,
      s1,
      { type: 'task-failed', key: 'a', attempt: 1, error: { name: 'E', message: 'm', retryable: true } },
      1000,
    );
    expect(failed.snapshot.tasks.a).toMatchObject({ attempt: 2, state: 'backoff', dueAt: 2000 });
    expect(failed.effects).toEqual([{ type: 'timer', key: 'a', dueAt: 2000 }]);
    const stale = reduce(
      f,
      failed.snapshot,
      { type: 'task-failed', key: 'a', attempt: 1, error: { name: 'E', message: 'm', retryable: true } },
      1500,
    );
    expect(stale.changed).toBe(false);
  });

  it('does not fire a timer early', () => {
    const s1 = start();
    const failed = reduce(
      f,
      s1,
      { type: 'task-failed', key: 'a', attempt: 1, error: { name: 'E', message: 'm', retryable: true } },
      1000,
    ).snapshot;
    expect(reduce(f, failed, { type: 'timer-fired', key: 'a' }, 1999).changed).toBe(false);
    const fired = reduce(f, failed, { type: 'timer-fired', key: 'a' }, 2000);
    expect(dispatched(fired.effects)).toEqual(['a']);
    expect(fired.snapshot.tasks.a?.attempt).toBe(2);
    // Due again when the dispatch is old enough for the reaper to check it.
    expect(fired.snapshot.dueAt).toBe(2000 + fired.snapshot.redispatchAfterMs);
  });

  it('ignores every event once the run is final', () => {
    const cancelled = reduce(f, start(), { type: 'cancel' }, 1000);
    expect(cancelled.snapshot.status).toBe('CANCELLED');
    expect(cancelled.effects).toEqual([{ type: 'abort', keys: ['a'], claims: ['a'] }]);
    for (const e of [
      { type: 'task-completed', key: 'a', attempt: 1 },
      { type: 'resume' },
      { type: 'cancel' },
    ] as const) {
      expect(reduce(f, cancelled.snapshot, e, 2000).changed).toBe(false);
    }
  });

  it('a completion of attempt 1 is stale while attempt 2 waits out its backoff, and once attempt 2 is dispatched', () => {
    const failed = reduce(
      f,
      start(),
      { type: 'task-failed', key: 'a', attempt: 1, error: { name: 'E', message: 'boom', retryable: true } },
      2000,
    );
    expect(failed.snapshot.tasks.a?.state).toBe('backoff');
    const late = reduce(f, failed.snapshot, { type: 'task-completed', key: 'a', attempt: 1 }, 2500);
    expect(late.changed).toBe(false);
    expect(dispatched(late.effects)).toEqual([]);
    const due = failed.snapshot.tasks.a?.dueAt as number;
    const retried = reduce(f, failed.snapshot, { type: 'timer-fired', key: 'a' }, due);
    expect(retried.snapshot.tasks.a).toMatchObject({ state: 'dispatched', attempt: 2 });
    expect(reduce(f, retried.snapshot, { type: 'task-completed', key: 'a', attempt: 1 }, due + 1).changed).toBe(false);
    const current = reduce(f, retried.snapshot, { type: 'task-completed', key: 'a', attempt: 2 }, due + 1);
    expect(current.changed).toBe(true);
    expect(dispatched(current.effects).sort()).toEqual(['x', 'y']);
  });

  it('records the value id a completion names, and the claim a chained successor runs under', () => {
    const begun = reduce(waits, initSnapshot(waits, 'i-1', 'input:n', 1000), { type: 'start' }, 1000).snapshot;
    const r = reduce(
      waits,
      begun,
      { type: 'task-completed', key: 'a', attempt: 1, valueId: 'j:7', chain: { key: 'x', claim: 'a' } },
      2000,
    );
    expect(r.snapshot.tasks.x).toMatchObject({ state: 'dispatched', claim: 'a', input: { v: 'j:7' } });
    expect(r.snapshot.tasks['y/last']).toMatchObject({ state: 'dispatched' });
    expect(r.snapshot.steps).toBe(1);
  });

  it('goes on through the journal with a map that an earlier version started there, though its body runs in lanes now', () => {
    const parked = flow<number>('parked')
      .map(
        'm',
        (n: number) => [n, n + 1],
        flow<number>('item')
          .then('a', (x: number) => x)
          .delay('nap', '1s')
          .then('b', (x: number) => x)
          .build(),
        { maxConcurrency: 2 },
      )
      .build();
    const begun = reduce(parked, initSnapshot(parked, 'i-1', 'input:n', 1000), { type: 'start' }, 1000).snapshot;
    const opened = reduce(parked, begun, { type: 'task-completed', key: 'm', attempt: 1, control: { count: 2 } }, 1100);
    const m = opened.snapshot.maps.m;
    expect(m?.lanes).toBeDefined();
    // The state an earlier version left: the map without lanes, its items' first tasks in the frontier.
    const { lanes: _lanes, ...journalled } = m as NonNullable<typeof m>;
    let s: Snapshot = {
      ...opened.snapshot,
      maps: { m: journalled },
      tasks: Object.fromEntries(
        [0, 1].map((i) => [
          `m[${i}]/a`,
          { qid: 'm[]/a', idx: [i], input: { v: 'out:m', at: [i] }, attempt: 1, state: 'dispatched' as const },
        ]),
      ),
    };
    for (const i of [0, 1])
      s = reduce(parked, s, { type: 'task-completed', key: `m[${i}]/a`, attempt: 1 }, 1200).snapshot;
    expect(Object.keys(s.waits).sort()).toEqual(['m[0]/nap', 'm[1]/nap']);
    const fired = reduce(parked, s, { type: 'timer-fired', key: 'm[0]/nap' }, 2200);
    // No lane to go back to: b waits in the frontier, as the earlier version ran it.
    expect(fired.effects.flatMap((e) => (e.type === 'dispatch' ? [[e.dispatch.key, e.dispatch.lane]] : []))).toEqual([
      ['m[0]/b', undefined],
    ]);
    s = reduce(parked, fired.snapshot, { type: 'timer-fired', key: 'm[1]/nap' }, 2201).snapshot;
    s = reduce(parked, s, { type: 'task-completed', key: 'm[0]/b', attempt: 1 }, 2300).snapshot;
    const done = reduce(parked, s, { type: 'task-completed', key: 'm[1]/b', attempt: 1 }, 2301);
    expect(done.snapshot.status).toBe('COMPLETED');
    expect(done.snapshot.output).toEqual({ each: 'out:m[]/b', n: 2 });
  });

  it('is pure: the input snapshot is not mutated', () => {
    const s1 = start();
    const copy = structuredClone(s1);
    reduce(f, s1, { type: 'task-completed', key: 'a', attempt: 1 }, 2000);
    reduce(f, s1, { type: 'signal', name: 'x', valueId: 'sig:1' }, 2000);
    expect(s1).toEqual(copy);
  });
});
