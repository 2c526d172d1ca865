import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  branch,
  type CheckpointPhase,
  flow,
  LoopResult,
  MemoryInstanceStore,
  RunnerCrashedError,
  resumeWorkflow,
  runWorkflow,
  startWorkflow,
  task,
} from '../../../shared/index.ts';
import type { InstanceStore } from '../../../shared/ports/instance-store.ts';

const child = flow<number>('child')
  .then('c1', (n: number) => n + 100)
  .then('c2', (n: number) => n * 2)
  .build();

/**
 * Every construct that checkpoints: tasks, fork/join (in lanes: a branch of
 * one task, a branch of two tasks in two pools), delay, route, loop, child
 * flow, maps (of one task, of a task, a route, a loop and a child flow, of items that park on a delay
 * between their lanes, of items that start and end with a delay, of items
 * whose first task fails once and is retried in its lane, of items that run
 * a fork and a map in their lanes, of items that end with a route, a loop or a
 * map, of items whose map (its items starting with a delay) is followed by a
 * fork in their lanes, or by a delay they join the frontier for).
 */
const example = flow<{ n: number }>('crashy')
  .then('start', ({ n }) => n)
  .fork([
    branch('left', (n: number) => n + 1),
    branch(
      'right',
      flow<number>('right-body')
        .then('triple', async (n: number) => n * 3)
        .then(task('offset', (n: number) => n - 1, { pool: 'side' }))
        .build(),
    ),
  ])
  .join('join', ([l, r]) => l + r)
  .delay('pause', '1h')
  .route((n) => (n % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const)
  .branch('even', (n: number) => n / 2)
  .branch('odd', (n: number) => n * 5)
  .done()
  .loop((n: number) => (n > 200 ? LoopResult.done(n) : LoopResult.again(n * 2)), { maxIterations: 20 })
  .thenFlow(child)
  .map(
    'spread',
    (n) => [n, n + 1, n + 2],
    (x: number) => x % 7,
    { maxConcurrency: 2 },
  )
  .then('sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .map(
    'steps',
    (n) => [n, n + 1, n + 2],
    flow<number>('item-body')
      .then('plus', (x: number) => x + 1)
      .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'parity' })
      .branch(
        'even',
        flow<number>('evens')
          .then('half', (x: number) => x / 2)
          .then('back', (x: number) => x * 2 + 1)
          .build(),
      )
      .branch('odd', (x: number) => x)
      .done()
      .loop((x: number) => (x % 3 === 0 ? LoopResult.done(x) : LoopResult.again(x + 1)), {
        id: 'to-three',
        maxIterations: 3,
      })
      .thenFlow(
        flow<number>('scaled')
          .then('times', (x: number) => x * 3)
          .build(),
      )
      .build(),
    { maxConcurrency: 2 },
  )
  .then('total', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .map(
    'parked',
    (n) => [n, n + 1, n + 2],
    flow<number>('parked-body')
      .then('before', (x: number) => x + 1)
      .delay('rest', '1m')
      .then('after', (x: number) => x * 2)
      .then('last', (x: number) => x + 3)
      .build(),
    { maxConcurrency: 2 },
  )
  .then('grand', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .map(
    'throttled',
    (n) => [n, n + 1, n + 2],
    flow<number>('throttled-body')
      .delay('throttle', '1m')
      .then('call', (x: number) => x % 11)
      .then('keep', (x: number) => x + 1)
      .delay('cool', '1m')
      .build(),
    { maxConcurrency: 2 },
  )
  .then('end', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .map(
    'flaky',
    (n) => [n, n + 1],
    flow<number>('flaky-body')
      .then(
        task(
          'try',
          (x: number, ctx) => {
            if (ctx.attempt === 1) throw new Error('once');
            return x + 1;
          },
          { retry: { maxAttempts: 3, initialDelay: '1s', jitter: 'none' } },
        ),
      )
      .then('done', (x: number) => x * 2)
      .build(),
    { maxConcurrency: 2 },
  )
  .then('final', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .map(
    'forked',
    (n) => [n, n + 1],
    flow<number>('forked-body')
      .then('pre', (x: number) => x + 1)
      .fork([
        branch('fl', (x: number) => x * 2),
        branch(
          'fr',
          flow<number>('fr')
            .then('fr1', (x: number) => x + 3)
            .then('fr2', (x: number) => x % 5)
            .build(),
        ),
      ])
      .join('fj', ([a, b]: [number, number]) => a + b)
      .map(
        'deep',
        (x: number) => [x, x + 1],
        (y: number) => y * 3,
      )
      .then('post', ([a, b]: number[]) => (a as number) + (b as number) - 1)
      .build(),
    { maxConcurrency: 2 },
  )
  .then('last', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .map(
    'ending',
    (n) => [n, n + 1],
    flow<number>('ending-body')
      .then('lead', (x: number) => x % 4)
      .route((x: number) => (x % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { id: 'split' })
      .branch('even', (x: number) => x + 10)
      .branch('odd', (x: number) => x + 20)
      .done()
      .build(),
    { maxConcurrency: 2 },
  )
  .then('ended', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .map(
    'looping',
    (n) => [n % 3, (n + 1) % 3],
    flow<number>('looping-body')
      .then('seed', (x: number) => x)
      .loop((x: number) => (x >= 3 ? LoopResult.done(x) : LoopResult.again(x + 1)), { id: 'climb', maxIterations: 5 })
      .build(),
    { maxConcurrency: 2 },
  )
  .then('looped', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .map(
    'nested',
    (n) => [n % 3, (n + 1) % 3],
    flow<number>('nested-body')
      .then('width', (x: number) => x + 1)
      .map(
        'cells',
        (x: number) => Array.from({ length: x }, (_, i) => i),
        (y: number) => y * 2,
      )
      .build(),
    { maxConcurrency: 2 },
  )
  .then('flat', (xs: number[][]) => xs.flat().reduce((a, b) => a + b, 0))
  .map(
    'fanned',
    (n) => [n % 2, (n + 1) % 2],
    flow<number>('fanned-body')
      .then('split', (x: number) => x + 1)
      .map(
        'parts',
        (x: number) => [x, x + 1],
        flow<number>('part')
          .delay('tick', '1m')
          .then('triple', (y: number) => y * 3)
          .build(),
      )
      .fork([branch('lo', (ys: number[]) => ys[0] as number), branch('hi', (ys: number[]) => ys[1] as number)])
      .join('pair', ([a, b]: [number, number]) => a + b)
      .map(
        'again',
        (x: number) => [x],
        (y: number) => y + 1,
      )
      .delay('settle', '1m')
      .then('closing', (ys: number[]) => ys[0] as number)
      .build(),
    { maxConcurrency: 2 },
  )
  .then('fanned-sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .build();

/** Every place a worker can die: after reserving, after running, after putting an output by its id, after committing, after dispatching. */
const PHASES: CheckpointPhase[] = ['reserved', 'executed', 'stored', 'checkpointed', 'dispatched'];

async function baseline(n: number) {
  const seen = new Map<CheckpointPhase, number>();
  const r = await runWorkflow(example, { n }, { onCheckpoint: (p) => void seen.set(p, (seen.get(p) ?? 0) + 1) });
  return {
    output: r.output,
    executions: seen.get('executed') ?? 0,
    seen,
    completed: await completions(r.store, r.instanceId),
  };
}

/** The history's task completions, in order (each task once: a map item or fork branch in a lane is not in the history). */
async function completions(store: Pick<InstanceStore, 'readHistory'>, id: string): Promise<string[]> {
  const { entries } = await store.readHistory(id);
  return entries
    .filter((e) => e.type === 'task-completed')
    .map((e) => e.key as string)
    .sort();
}

/** Runs until `crashes` fire (each at the k-th checkpoint phase of that run), resuming after each. */
async function runWithCrashes(n: number, crashes: readonly { k: number; phase: CheckpointPhase }[]) {
  const store = new MemoryInstanceStore();
  const hook = (plan: { k: number; phase: CheckpointPhase } | undefined) => {
    let seen = 0;
    return (phase: CheckpointPhase) => {
      if (plan && phase === plan.phase && ++seen === plan.k) throw new Error(`crash at ${plan.phase} #${plan.k}`);
    };
  };
  const instanceId = 'crash-run';
  let handle = startWorkflow(example, { n }, { store, instanceId, onCheckpoint: hook(crashes[0]) });
  let crashed = 0;
  for (let i = 1; ; i++) {
    try {
      const result = await handle.result();
      return { result, store, crashed };
    } catch (e) {
      expect(e).toBeInstanceOf(RunnerCrashedError);
      crashed++;
      handle = await resumeWorkflow(example, instanceId, { store, onCheckpoint: hook(crashes[i]) });
    }
  }
}

function assertCommittedOnce(store: MemoryInstanceStore) {
  const outputs = [...store.commits.entries()].filter(([k]) => k.includes('|out:'));
  expect(outputs.length).toBeGreaterThan(0);
  for (const [key, count] of outputs) expect(count, key).toBe(1);
}

describe('crash anywhere, resume from the store', () => {
  it('for every k and phase, a crash at the k-th checkpoint then resume gives the uninterrupted output, each output committed once', async () => {
    const { output, executions, seen, completed } = await baseline(4);
    expect(executions).toBeGreaterThan(15);
    // Fewer reservations than executions: a chain runs same-pool successors under one claim.
    expect(seen.get('reserved')).toBeLessThan(executions);
    let runs = 0;
    for (const phase of PHASES) {
      for (let k = 1; k <= (seen.get(phase) ?? 0); k++) {
        const { result, store, crashed } = await runWithCrashes(4, [{ k, phase }]);
        expect(crashed, `k=${k} ${phase}`).toBe(1);
        expect(result.status, `k=${k} ${phase}`).toBe('COMPLETED');
        expect(result.output, `k=${k} ${phase}`).toEqual(output);
        assertCommittedOnce(store);
        // The history is the committed events exactly: every completion once, whatever crashed where.
        expect(await completions(store, 'crash-run'), `k=${k} ${phase}`).toEqual(completed);
        expect(new Set(completed).size).toBe(completed.length);
        runs++;
      }
    }
    expect(runs).toBe(PHASES.reduce((n, p) => n + (seen.get(p) ?? 0), 0));
  });

  it('survives several crashes in a row at random points (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 50 }),
        fc.array(fc.record({ k: fc.integer({ min: 1, max: 12 }), phase: fc.constantFrom(...PHASES) }), {
          minLength: 1,
          maxLength: 4,
        }),
        async (n, crashes) => {
          const { output, completed } = await baseline(n);
          const { result, store } = await runWithCrashes(n, crashes);
          expect(result.output).toEqual(output);
          assertCommittedOnce(store);
          expect(await completions(store, 'crash-run')).toEqual(completed);
        },
      ),
      { numRuns: 40 },
    );
  });
});
