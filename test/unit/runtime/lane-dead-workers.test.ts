import { describe, expect, it } from 'vitest';
import type { AnyFlow } from '../../../shared/engine/definition.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { branch, flow, type MemoryInstanceStore, task } from '../../../shared/index.ts';
import { WorkerKilledError } from '../../../shared/runtime/worker.ts';
import { harness } from './lane-harness.ts';

/**
 * A step of a child in its lane whose worker dies is counted as in the
 * frontier: a lapsed reservation sends the same attempt again (twice), a
 * lost lease, or a third lapse, fails the attempt (`WorkerLostError`), and
 * the retry policy decides. Before this, the look at the parent started the
 * child again at the same attempt, forever.
 */

/** A fork in lanes of branch `a` (one task, the default timeout: its claim is started) and branch `b`. */
const forkOf = (name: string, maxAttempts: number) =>
  flow<number>(name)
    .fork([
      branch(
        'a',
        task('a1', (x: number) => x + 1, { retry: { maxAttempts } }),
      ),
      branch('b', (x: number) => -x),
    ])
    .join('join', ([a, b]: [number, number]) => a + b)
    .build();

/** Its branch `a` kills every worker that runs it. */
const poisonFork = forkOf('poison-fork', 2);
/** Its branch `a` dies once, then runs: its second attempt completes the run. */
const flakyFork = forkOf('flaky-lane', 3);
let flakyDeaths = 0;

/** A fork in lanes whose branch `a` is two short tasks (its chain's claim stays a reservation); the second kills every worker. */
const poisonSecond = flow<number>('poison-second')
  .fork([
    branch(
      'a',
      flow<number>('a')
        .then(task('a1', (x: number) => x + 1, { timeout: '2s' }))
        .then(task('a2', (x: number) => x * 2, { timeout: '2s', retry: { maxAttempts: 2 } }))
        .build(),
    ),
    branch('b', (x: number) => -x),
  ])
  .join('join', ([a, b]: [number, number]) => a + b)
  .build();

/** A map in lanes whose item 1 (a short task: its claim stays a reservation) kills every worker that runs it. */
const poisonMap = flow<number[]>('poison-map')
  .map(
    'items',
    (xs) => xs,
    task('double', (x: number) => x * 2, { timeout: '2s', retry: { maxAttempts: 2 } }),
  )
  .build();

/** Item 1 of the poisoned map, run by its workers: each of its two attempts three times (two lapses, then the failure). */
const THREE_RUNS_PER_ATTEMPT = ['items[1]@1', 'items[1]@1', 'items[1]@1', 'items[1]@2', 'items[1]@2', 'items[1]@2'];

/** The lane harness, whose worker dies after running each dispatch `dies` picks; `drive` delivers `first`, then reaps every `ms`. */
function dying(f: AnyFlow, dies: (d: Dispatch) => boolean) {
  const h = harness(f);
  h.setFaults((phase, d) => {
    if (phase === 'executed' && dies(d)) throw new WorkerKilledError('executed', d.key);
  });
  const drive = async (id: string, first: readonly Dispatch[], ms: number, cycles = 40) => {
    await h.drain(first);
    return h.drive(id, ms, cycles);
  };
  return { ...h, drive };
}

describe('a dead worker in a lane', () => {
  it('a fork branch whose task kills every worker: each lost lease fails an attempt, and the run fails after the last', async () => {
    const h = dying(poisonFork, (d) => d.key === 'a');
    const s = await h.drive('p', await h.start(1, 'p'), 30_000);
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ name: 'WorkerLostError', taskKey: 'a', attempts: 2 });
    expect(h.ran.filter((r) => r.startsWith('a@'))).toEqual(['a@1', 'a@2']);
    const letters = await h.deadLetters.ofInstance('p');
    expect(letters.map((x) => [x.dispatch.key, x.dispatch.attempt, x.error?.name])).toEqual([
      ['a', 2, 'WorkerLostError'],
    ]);
    // The retry's lane timer carries the failure, for the operator's view.
    const timers = await h.store.listTimers('p', 'a#');
    expect(timers.map((t) => [t.id, t.retry?.attempt, t.retry?.error.name])).toEqual([['a#2', 2, 'WorkerLostError']]);
  });

  it('a map item whose short task kills every worker: two lapses send the same attempt again, the third fails it', async () => {
    const h = dying(poisonMap, (d) => d.key === 'items[1]');
    const s = await h.drive('m', await h.start([1, 2, 3], 'm'), 10_000);
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ name: 'WorkerLostError', taskKey: 'items[1]', attempts: 2 });
    expect(h.ran.filter((r) => r.startsWith('items[1]'))).toEqual(THREE_RUNS_PER_ATTEMPT);
    // Two lapses per attempt, marked as such; the death of attempt 1 is the retry to attempt 2.
    const timers = await h.store.listTimers('m', 'items[1]#');
    expect(timers.map((t) => [t.retry?.attempt, t.retry?.lapse ?? false])).toEqual([
      [1, true],
      [1, true],
      [2, false],
      [2, true],
      [2, true],
    ]);
    // The dead letter's attempts are the two that failed, not the lapses.
    const [letter] = await h.deadLetters.ofInstance('m');
    expect(letter?.attemptHistory?.map((a) => a.attempt)).toEqual([1, 2]);
    // The map's items task and the other items ran once each.
    expect(h.ran.filter((r) => !r.startsWith('items[1]')).sort()).toEqual(['items@1', 'items[0]@1', 'items[2]@1']);
  });

  /** Makes the reaper die right after each lane timer's first put: before its commit, its compaction and the claim's release. */
  function dyingAfterEachPut(store: MemoryInstanceStore): Set<string> {
    const put = store.putTimer.bind(store);
    const died = new Set<string>();
    store.putTimer = async (instanceId, timer) => {
      const r = await put(instanceId, timer);
      if (died.has(timer.id)) return r;
      died.add(timer.id);
      throw new Error('the reaper died here');
    };
    return died;
  }

  it('a reaper that dies right after putting each lane timer: the next pass puts none twice, and each lapse sends the step once', async () => {
    const h = dying(poisonMap, (d) => d.key === 'items[1]');
    const died = dyingAfterEachPut(h.store);
    const s = await h.drive('m', await h.start([1, 2, 3], 'm'), 10_000);
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ taskKey: 'items[1]', attempts: 2 });
    expect(died.size).toBe(5);
    expect(h.ran.filter((r) => r.startsWith('items[1]'))).toEqual(THREE_RUNS_PER_ATTEMPT);
    expect((await h.store.listTimers('m', 'items[1]#')).length).toBe(5);
  });

  it('and after putting the retry of a death inline past the first step: the attempt is counted once', async () => {
    const h = dying(poisonSecond, (d) => d.key === 'a/a2');
    dyingAfterEachPut(h.store);
    const s = await h.drive('s', await h.start(1, 's'), 10_000);
    expect(s?.error).toMatchObject({ taskKey: 'a/a2', attempts: 2 });
    expect(h.ran.filter((r) => r.startsWith('a/'))).toEqual(['a/a1@1', 'a/a2@1', 'a/a2@2', 'a/a2@2', 'a/a2@2']);
  });

  it('a lapse is sent again by the pass that finds it, not the next', async () => {
    let deaths = 0;
    const h = dying(poisonMap, (d) => d.key === 'items[1]' && deaths++ === 0);
    await h.deliver(await h.start([1, 2, 3], 'once'));
    await h.deliver(h.queue.sent.splice(0));
    h.clock.advance(10_000);
    await h.reap();
    expect(h.queue.sent.map((d) => [d.key, d.attempt])).toEqual([['items[1]', 1]]);
    const [lapse] = await h.store.listTimers('once', 'items[1]#');
    expect(lapse).toMatchObject({ retry: { lapse: true, attempt: 1 }, firedAt: h.clock.now() });
  });

  it("a reservation that lapsed past its chain's first step is a death, not a lapse: the worker was running", async () => {
    const h = dying(poisonSecond, (d) => d.key === 'a/a2');
    const s = await h.drive('s', await h.start(1, 's'), 10_000);
    expect(s?.status).toBe('FAILED');
    expect(s?.error).toMatchObject({ name: 'WorkerLostError', taskKey: 'a/a2', attempts: 2 });
    // Attempt 1 died inline after a1: counted at once. Attempt 2 starts a chain of its own at a2: two lapses, then counted.
    expect(h.ran.filter((r) => r.startsWith('a/'))).toEqual(['a/a1@1', 'a/a2@1', 'a/a2@2', 'a/a2@2', 'a/a2@2']);
  });

  it('a branch whose worker died once goes on at its next attempt, and the run completes', async () => {
    flakyDeaths = 0;
    const h = dying(flakyFork, (d) => d.key === 'a' && flakyDeaths++ === 0);
    const s = await h.drive('f', await h.start(1, 'f'), 30_000);
    expect(s?.status).toBe('COMPLETED');
    expect(h.ran.filter((r) => r.startsWith('a@'))).toEqual(['a@1', 'a@2']);
  });
});
