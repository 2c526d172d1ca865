import { describe, expect, it } from 'vitest';
import {
  type AnyFlow,
  branch,
  flow,
  MemoryInstanceStore,
  RunnerCrashedError,
  resumeWorkflow,
  runWorkflow,
  startWorkflow,
  TerminalError,
  task,
} from '../../../shared/index.ts';
import type { InstanceStore } from '../../../shared/ports/instance-store.ts';

/** `then('pre') -> fork of n one-task branches -> join`: branch i adds i. */
function wide(n: number) {
  return flow<number>(`wide-fork-${n}`)
    .then('pre', (x: number) => x * 10)
    .fork(Array.from({ length: n }, (_, i) => branch(`b${i}`, (x: number) => x + i)))
    .join('join', (xs: number[]) => xs)
    .build();
}

/** The journal as `type:key` per event, oldest first. */
async function journal(store: InstanceStore, id: string): Promise<string[]> {
  const entries = await store.readJournal(id, 0);
  return entries.flatMap((e) => e.events.map((ev) => ('key' in ev ? `${ev.type}:${ev.key}` : ev.type)));
}

/** The history's task completions, in order. */
async function completions(store: InstanceStore, id: string): Promise<string[]> {
  const { entries } = await store.readHistory(id);
  return entries.filter((e) => e.type === 'task-completed').map((e) => e.key as string);
}

describe('fork branches in lanes', () => {
  for (const n of [2, 8, 40]) {
    it(`a fork of ${n} one-task branches commits 2 journal entries for the fork (its start, its join) and joins in branch order`, async () => {
      const store = new MemoryInstanceStore();
      const r = await runWorkflow(wide(n), 1, { store });
      expect(r.status).toBe('COMPLETED');
      expect(r.output).toEqual(Array.from({ length: n }, (_, i) => 10 + i));
      // The fork starts with pre's completion, ends with lanes-joined; the join task follows.
      expect(await journal(store, r.instanceId)).toEqual([
        'task-completed:pre',
        'lanes-joined:join',
        'task-completed:join',
      ]);
      // Each branch's result put once; the history is the journal: no branch in it.
      for (let i = 0; i < n; i++) expect(store.commits.get(`${r.instanceId}|out:b${i}`), `b${i}`).toBe(1);
      expect(await completions(store, r.instanceId)).toEqual(['pre', 'join']);
    });
  }

  it('runs branches of several tasks in several pools, each step handing its output to the next', async () => {
    const pools: string[] = [];
    const step = (id: string, pool: string, fn: (x: number) => number) =>
      task(
        id,
        (x: number) => {
          pools.push(`${id}@${pool}`);
          return fn(x);
        },
        { pool },
      );
    const f = flow<number>('pipes')
      .fork([
        branch(
          'left',
          flow<number>('left')
            .then(step('l1', 'cpu', (x) => x + 1))
            .then(step('l2', 'gpu', (x) => x * 2))
            .then(step('l3', 'cpu', (x) => x - 3))
            .build(),
        ),
        branch(
          'right',
          step('r1', 'gpu', (x) => x * 100),
        ),
      ])
      .join('join', ([l, r]: [number, number]) => ({ l, r }))
      .build();
    const store = new MemoryInstanceStore();
    const r = await runWorkflow(f, 5, { store });
    expect(r.output).toEqual({ l: 9, r: 500 });
    expect(pools.sort()).toEqual(['l1@cpu', 'l2@gpu', 'l3@cpu', 'r1@gpu']);
    expect(await journal(store, r.instanceId)).toEqual(['lanes-joined:join', 'task-completed:join']);
  });

  it('a branch that fails once is retried in its lane after its backoff, on a lane timer, and the fork joins', async () => {
    const attempts: number[] = [];
    const f = flow<number>('flaky-fork')
      .fork([
        branch('ok', (x: number) => x),
        branch(
          'flaky',
          task(
            'flaky',
            (x: number, ctx) => {
              attempts.push(ctx.attempt);
              if (ctx.attempt === 1) throw new Error('once');
              return x + 1;
            },
            { retry: { maxAttempts: 2, initialDelay: '1s', jitter: 'none' } },
          ),
        ),
      ])
      .join('join', (xs: number[]) => xs)
      .build();
    const store = new MemoryInstanceStore();
    const r = await runWorkflow(f, 1, { store });
    expect(r.output).toEqual([1, 2]);
    expect(attempts).toEqual([1, 2]);
    // The failure waits on a lane timer, with the error it retries after; the journal holds none of it.
    expect(await journal(store, r.instanceId)).toEqual(['lanes-joined:join', 'task-completed:join']);
    const [timer] = await store.listTimers(r.instanceId, '');
    expect(timer).toMatchObject({
      id: 'flaky#2',
      parent: 'join',
      item: 1,
      retry: { task: 'flaky', attempt: 2, error: { name: 'Error', message: 'once' } },
    });
    expect((timer?.dueAt ?? 0) - (timer?.retry?.failedAt ?? 0)).toBe(1_000);
    expect(timer?.firedAt).toBeGreaterThanOrEqual(timer?.dueAt ?? Number.POSITIVE_INFINITY);
  });

  it('a branch that fails for good fails the run naming it; a retry of it joins the fork', async () => {
    let fixed = false;
    const f = flow<number>('broken-fork')
      .fork([
        branch('fine', (x: number) => x),
        branch(
          'broken',
          task('broken', (x: number) => {
            if (!fixed) throw new TerminalError('bad data');
            return -x;
          }),
        ),
      ])
      .join('join', (xs: number[]) => xs)
      .build();
    const h = startWorkflow(f, 7);
    const failed = await h.result();
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatchObject({ taskKey: 'broken', message: 'bad data' });
    fixed = true;
    await h.retryTask('broken');
    const done = await h.result();
    expect(done.status).toBe('COMPLETED');
    expect(done.output).toEqual([7, -7]);
  });

  it('skipping a branch that failed for good counts it: the run reopens and joins with the given output', async () => {
    const f = flow<number>('skipped-fork')
      .fork([
        branch('fine', (x: number) => x),
        branch(
          'broken',
          task('broken', (): number => {
            throw new TerminalError('bad data');
          }),
        ),
      ])
      .join('join', (xs: number[]) => xs)
      .build();
    const h = startWorkflow(f, 7);
    expect((await h.result()).status).toBe('FAILED');
    await h.skipTask('broken', 70);
    const done = await h.result();
    expect(done.status).toBe('COMPLETED');
    expect(done.output).toEqual([7, 70]);
  });

  it('skipping the failed first step of a two-step branch goes on to its second step, and counts the branch once', async () => {
    let seconds = 0;
    const f = flow<number>('skip-first')
      .fork([
        branch('fine', (x: number) => x),
        branch(
          'two',
          flow<number>('two')
            .then(
              task('first', (): number => {
                throw new TerminalError('first fails');
              }),
            )
            .then('second', (x: number) => {
              seconds++;
              return x * 2;
            })
            .build(),
        ),
      ])
      .join('join', (xs: number[]) => xs)
      .build();
    const h = startWorkflow(f, 3);
    expect((await h.result()).error).toMatchObject({ taskKey: 'two/first' });
    await h.skipTask('two/first', 21);
    const done = await h.result();
    expect(done.output).toEqual([3, 42]);
    expect(seconds).toBe(1);
  });

  it('a cancel during a fork stops it: no branch step starts after it', async () => {
    const started: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const f = flow<number>('cancelled-fork')
      .fork([
        branch(
          'a',
          flow<number>('a')
            .then('a1', async (x: number) => {
              started.push('a1');
              await gate;
              return x;
            })
            .then('a2', (x: number) => {
              started.push('a2');
              return x;
            })
            .build(),
        ),
        branch('b', async (x: number) => {
          started.push('b');
          await gate;
          return x;
        }),
      ])
      .join('join', (xs: number[]) => xs)
      .build();
    const h = startWorkflow(f, 1);
    while (started.length < 2) await new Promise((r) => setTimeout(r, 1));
    await h.cancel('enough');
    release();
    const r = await h.result();
    expect(r.status).toBe('CANCELLED');
    await new Promise((res) => setTimeout(res, 50));
    expect(started.sort()).toEqual(['a1', 'b']);
  });

  it('a pause during a fork holds the branch steps that come next; a resume runs them and the fork joins', async () => {
    const ran: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const f = flow<number>('paused-fork')
      .fork([
        branch(
          'a',
          flow<number>('a')
            .then('a1', async (x: number) => {
              ran.push('a1');
              await gate;
              return x + 1;
            })
            .then('a2', (x: number) => {
              ran.push('a2');
              return x + 1;
            })
            .build(),
        ),
        branch('b', async (x: number) => {
          ran.push('b');
          await gate;
          return x * 10;
        }),
      ])
      .join('join', (xs: number[]) => xs)
      .build();
    const store = new MemoryInstanceStore();
    const h = startWorkflow(f, 1, { store });
    while (ran.length < 2) await new Promise((r) => setTimeout(r, 1));
    await h.pause();
    release();
    await h.idle();
    await new Promise((res) => setTimeout(res, 20));
    // a1 and b finished; a2 was held, not run, and the join was not dispatched.
    expect(ran.sort()).toEqual(['a1', 'b']);
    expect((await journal(store, h.instanceId)).filter((e) => e.startsWith('lanes-joined'))).toEqual([]);
    await h.resume();
    const r = await h.result();
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual([3, 10]);
    expect(ran.sort()).toEqual(['a1', 'a2', 'b']);
  });

  it('a crash between a branch result put and its count is repaired by the reaper: the fork joins, the branch ran once', async () => {
    const runs = new Map<string, number>();
    const f: AnyFlow = flow<number>('crash-fork')
      .fork(
        ['b0', 'b1', 'b2'].map((id, i) =>
          branch(id, (x: number) => {
            runs.set(id, (runs.get(id) ?? 0) + 1);
            return x + i;
          }),
        ),
      )
      .join('join', (xs: number[]) => xs)
      .build();
    const store = new MemoryInstanceStore();
    const instanceId = 'crash-fork-1';
    // `checkpointed` of a branch in its lane comes right after its result put, before its count.
    const h = startWorkflow(f, 100, {
      store,
      instanceId,
      onCheckpoint: (phase, d) => {
        if (phase === 'checkpointed' && d.key === 'b1') throw new Error('crash after the put of b1');
      },
    });
    await expect(h.result()).rejects.toBeInstanceOf(RunnerCrashedError);
    expect(store.commits.get(`${instanceId}|out:b1`)).toBe(1);
    const resumed = await resumeWorkflow(f, instanceId, { store });
    const r = await resumed.result();
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual([100, 101, 102]);
    expect(runs.get('b1')).toBe(1);
    for (const id of ['b0', 'b1', 'b2']) expect(store.commits.get(`${instanceId}|out:${id}`), id).toBe(1);
    // Before the join, only the reaper's looks: no branch is a journal entry.
    const entries = await journal(store, instanceId);
    expect(entries.slice(-2)).toEqual(['lanes-joined:join', 'task-completed:join']);
    expect(entries.slice(0, -2).every((e) => e === 'lanes-checked:join')).toBe(true);
  });
});
