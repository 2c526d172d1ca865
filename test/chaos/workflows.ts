import {
  type AnyFlow,
  branch,
  flow,
  LoopResult,
  type TaskContext,
  type TaskOptions,
  task,
} from '../../shared/index.ts';
import { hello } from '../../workflows/hello.ts';
import { fulfil, type Order } from '../../workflows/order.ts';
import type { Prng } from './prng.ts';

/**
 * The workflows the chaos suite runs: the two examples (`hello`, `fulfil`)
 * and flows of its own whose output is a pure function of their input, so
 * the right final state of every run is known before it starts.
 *
 * The tasks of the chaos flows count their executions in an
 * {@link ExecutionLog}, by instance, task key and attempt (all but the route's
 * key function and the map's item list, which the builder wraps itself):
 * that count is exact (a worker killed after running a task still counted
 * it), where the worker's `onTask` reports miss executions whose worker died.
 */

/** Executions of the chaos flows' tasks, by `instanceId`, task key and attempt. */
export class ExecutionLog {
  private readonly runs = new Map<string, Map<number, number>>();

  record(ctx: Pick<TaskContext, 'instanceId' | 'taskKey' | 'attempt'>): void {
    const id = `${ctx.instanceId}\u0000${ctx.taskKey}`;
    const attempts = this.runs.get(id) ?? new Map<number, number>();
    attempts.set(ctx.attempt, (attempts.get(ctx.attempt) ?? 0) + 1);
    this.runs.set(id, attempts);
  }

  /** One entry per (instance, task key): executions in all, and per attempt. */
  entries(): { readonly instanceId: string; readonly key: string; readonly perAttempt: ReadonlyMap<number, number> }[] {
    return [...this.runs].map(([id, perAttempt]) => {
      const [instanceId = '', key = ''] = id.split('\u0000');
      return { instanceId, key, perAttempt };
    });
  }
}

/**
 * What a run must end as. A run designed to fail fails at `taskKey`, with the
 * error of its last attempt: the task's own (`errorName`, `message`), or a
 * `WorkerLostError` when a fault killed the worker running that last attempt
 * (dead workers' attempts count against the retry budget).
 */
export type Expected =
  | { readonly status: 'COMPLETED'; readonly output: unknown }
  | { readonly status: 'FAILED'; readonly taskKey: string; readonly errorName: string; readonly message: RegExp };

/** One run to start: its workflow, input, expected end, and the signal it needs. */
export interface RunPlan {
  readonly instanceId: string;
  readonly workflow: string;
  readonly input: unknown;
  readonly expected: Expected;
  /** Attempts of a task that fail by design (its input says so), by task key. */
  readonly designedFailures?: Readonly<Record<string, number>>;
  /**
   * A signal the run waits for, and whether to send it before the wait is
   * reached (buffered). A wait in a child's lane (`inLane`) is not in the
   * run's snapshot: its signal is sent at the first snapshot seen.
   */
  readonly signal?: {
    readonly name: string;
    readonly payload: unknown;
    readonly early: boolean;
    readonly inLane?: true;
  };
}

/** Thrown by the chaos tasks designed to fail; retryable. */
export class ChaosTaskError extends Error {
  override readonly name = 'ChaosTaskError';
}

/**
 * The chaos tasks' options: a short timeout, so that a worker runs the next
 * one inline within a short invocation, and a retry budget roomy enough for
 * the kills the suite injects (a dead worker's attempt counts as a failed
 * one; see `killBudget` in `chaos.ts`).
 */
const CHAOS_TASK = {
  timeout: '500ms',
  retry: { maxAttempts: 8, initialDelay: '50ms', maxDelay: '200ms' },
} as const satisfies TaskOptions;

/**
 * Builds the chaos flows over an execution log (a log per suite run, so two
 * suites in one process do not mix their counts).
 */
export function chaosFlows(log: ExecutionLog) {
  const counted = <I, O>(
    id: string,
    fn: (input: I, ctx: TaskContext) => O,
    options: TaskOptions<I, Awaited<O>> = CHAOS_TASK as TaskOptions<I, Awaited<O>>,
  ) =>
    task(
      id,
      (input: I, ctx: TaskContext) => {
        log.record(ctx);
        return fn(input, ctx);
      },
      options,
    );

  /**
   * then (inline), a fork in lanes over two pools and priorities (two
   * one-task branches, one of two tasks that hops pools), join, delay, then
   * a low-priority task.
   */
  const pipeline = flow<{ n: number }>('chaos-pipeline')
    .then(counted('double', ({ n }: { n: number }) => n * 2))
    .fork([
      branch(
        'square',
        counted('square', (x: number) => x * x),
      ),
      branch(
        'succ',
        counted('succ', (x: number) => x + 1, { ...CHAOS_TASK, pool: 'side', priority: 'high' }),
      ),
      branch(
        'shift',
        flow<number>('chaos-shift')
          .then(counted('add3', (x: number) => x + 3, { ...CHAOS_TASK, pool: 'side' }))
          .then(counted('twice', (x: number) => x * 2))
          .build(),
      ),
    ])
    .join(counted('sum', ([a, b, c]: [number, number, number]) => a + b + c))
    .delay('pause', '300ms')
    .then(counted('label', (s: number) => `total:${s}`, { ...CHAOS_TASK, priority: 'low' }))
    .build();

  /**
   * A dynamic map (bounded concurrency) whose items park on a lane timer (a
   * delay between two tasks), then route on their sign (a child flow on one
   * branch), all in their lanes, the route ending each item (its result put
   * apart); then a child flow and a sum. (A map's look
   * at a stalled item waits for the longest an item may run: its body stays
   * short, so a fault costs a run seconds, not its deadline.)
   */
  const negate = flow<number[]>('chaos-negate')
    .then(counted('negate', (xs: number[]) => xs.map((x) => -x)))
    .build();
  const settled = flow<number>('chaos-settled')
    .then(counted('settled', (x: number) => x))
    .then(counted('kept', (x: number) => x))
    .build();
  const cubeItem = flow<number>('chaos-cube')
    .then(counted('cube-item', (x: number) => x * x * x))
    .delay('settle', '100ms')
    .route((x: number) => (x >= 0 ? 'plus' : 'minus'), ['plus', 'minus'] as const, { ...CHAOS_TASK, id: 'sign' })
    .branch('plus', settled)
    .branch(
      'minus',
      counted('negative', (x: number) => x),
    )
    .done()
    .build();
  const fanout = flow<{ items: number[] }>('chaos-map')
    .map('cube', ({ items }: { items: number[] }) => items, cubeItem, { ...CHAOS_TASK, maxConcurrency: 3 })
    .thenFlow(negate, { id: 'child' })
    .then(counted('total', (xs: number[]) => xs.reduce((a, b) => a + b, 0)))
    .build();

  /** A task failing `failures` times before succeeding (retried with backoff), a loop, then a route. */
  const retries = flow<{ failures: number; rounds: number }>('chaos-retry')
    .then(
      counted(
        'flaky',
        (input: { failures: number; rounds: number }, ctx) => {
          if (ctx.attempt <= input.failures) throw new ChaosTaskError(`transient failure at attempt ${ctx.attempt}`);
          return { left: input.rounds, acc: 0 };
        },
        CHAOS_TASK as TaskOptions<{ failures: number; rounds: number }, { left: number; acc: number }>,
      ),
    )
    .loop(
      counted('countdown', (s: { left: number; acc: number }) =>
        s.left <= 0 ? LoopResult.done(s.acc) : LoopResult.again({ left: s.left - 1, acc: s.acc + s.left }),
      ),
      { maxIterations: 20 },
    )
    .route((acc: number) => (acc % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const, { ...CHAOS_TASK, id: 'parity' })
    .branch(
      'even',
      counted('halve', (acc: number) => acc / 2),
    )
    .branch(
      'odd',
      counted('triple', (acc: number) => 3 * acc + 1),
    )
    .done()
    .build();

  /** Designed to fail: a step, then a task that always fails, retried once. */
  const doomed = flow<{ n: number }>('chaos-doomed')
    .then(counted('prepare', ({ n }: { n: number }) => n + 1))
    .then(
      counted(
        'explode',
        (n: number): number => {
          throw new ChaosTaskError(`boom ${n}`);
        },
        { retry: { maxAttempts: 2, initialDelay: '50ms' }, timeout: '500ms' },
      ),
    )
    .build();

  /**
   * A fork whose first branch retries its first task once in its lane (on a
   * lane timer) for an odd input, waits in its lane for the `gate` signal
   * (which carries the branch's number on), then runs a nested fork (in a child flow)
   * in its lane, as a group of lanes of its own; beside a branch that runs
   * in its lane and loops twice there first, then runs a fork after its
   * loop in its lane, then joins the frontier for a route whose branch
   * starts with a delay (a step that needs the reducer), and ends there,
   * through a map followed by a fork (the join before the route, and the
   * branch's last task, put their outputs by id before their commits: the
   * `stored` phase); the map's items end with a fork over two pools, run in
   * the items' lanes.
   */
  const gateCheck = flow<number>('chaos-gate-check')
    .fork([
      branch(
        'gate-mid',
        counted('gate-mid', (x: number) => x * 2),
      ),
    ])
    .join(counted('gate-joined', ([x]: [number]) => x))
    .build();
  const gate = flow<{ n: number }>('chaos-gate')
    .fork([
      branch(
        'in',
        flow<{ n: number }>('chaos-gate-in')
          .then(
            counted('gate-in', ({ n }: { n: number }, ctx: TaskContext) => {
              if (ctx.attempt === 1 && n % 2 !== 0) throw new ChaosTaskError('an odd gate fails once');
              return n + 1;
            }),
          )
          .waitForSignal<{ n: number }>('gate-wait', 'gate')
          .then(counted('gate-open', ({ n }: { n: number }) => n))
          .thenFlow(gateCheck, { id: 'gate-check' })
          .then(counted('gate-out', (x: number) => x + 5))
          .build(),
      ),
      branch(
        'other',
        flow<{ n: number }>('chaos-gate-other')
          .loop(
            counted('gate-twice', (input: { n: number }, ctx: TaskContext) =>
              ctx.taskKey.endsWith('@0') ? LoopResult.again(input) : LoopResult.done(input),
            ),
            { maxIterations: 3 },
          )
          .fork([
            branch(
              'gate-other',
              counted('gate-other', ({ n }: { n: number }) => n * 3),
            ),
          ])
          .join(counted('gate-other-joined', ([x]: [number]) => x))
          .route(() => 'wait', ['wait'] as const, { ...CHAOS_TASK, id: 'gate-way' })
          .branch(
            'wait',
            flow<number>('chaos-gate-wait')
              .delay('gate-pause', '50ms')
              .then(counted('gate-waited', (x: number) => x))
              .build(),
          )
          .done()
          .map(
            'gate-spread',
            (x: number) => [x],
            flow<number>('chaos-gate-item')
              .then(counted('gate-item', (x: number) => x))
              .fork([
                branch(
                  'gate-kept',
                  counted('gate-kept', (x: number) => x),
                ),
                branch(
                  'gate-nil',
                  counted('gate-nil', (x: number) => x * 0, { ...CHAOS_TASK, pool: 'side' }),
                ),
              ])
              .join(counted('gate-item-joined', ([a, b]: [number, number]) => a + b))
              .build(),
          )
          .fork([
            branch(
              'gate-back',
              counted('gate-back', ([x]: number[]) => x as number),
            ),
          ])
          .join(counted('gate-back-joined', ([x]: [number]) => x))
          .then(counted('gate-end', (x: number) => x))
          .build(),
      ),
    ])
    .join(counted('gate-sum', ([a, b]: [number, number]) => a + b))
    .build();

  return { pipeline, fanout, retries, doomed, gate };
}

/** Every workflow the chaos stack serves. */
export function chaosWorkflows(log: ExecutionLog): AnyFlow[] {
  const f = chaosFlows(log);
  return [hello, fulfil, f.pipeline, f.fanout, f.retries, f.doomed, f.gate];
}

/** The workflow mix, with relative weights. */
const MIX = [
  ['hello', 2],
  ['fulfil', 3],
  ['chaos-pipeline', 3],
  ['chaos-map', 2],
  ['chaos-retry', 2],
  ['chaos-doomed', 2],
  ['chaos-gate', 2],
] as const;

/**
 * The plan of run `index`: a workflow drawn from the mix, an input drawn
 * from `prng`, and the final state that input must lead to.
 */
export function planRun(prefix: string, index: number, prng: Prng): RunPlan {
  const total = MIX.reduce((a, [, w]) => a + w, 0);
  let pick = prng.next() * total;
  let workflow: string = MIX[0][0];
  for (const [name, weight] of MIX) {
    if (pick < weight) {
      workflow = name;
      break;
    }
    pick -= weight;
  }
  const instanceId = `${prefix}-${String(index).padStart(4, '0')}-${workflow}`;
  switch (workflow) {
    case 'hello': {
      const name = `n${prng.int(1000)}`;
      return {
        instanceId,
        workflow,
        input: { name },
        expected: { status: 'COMPLETED', output: { greeting: `Hello, ${name}!` } },
      };
    }
    case 'fulfil': {
      // One order in six is empty: the charge fails terminally, and so does the run.
      const empty = prng.next() < 1 / 6;
      const items = empty
        ? []
        : Array.from({ length: 1 + prng.int(3) }, (_, i) => ({
            sku: `s${i}`,
            qty: 1 + prng.int(3),
            price: 1 + prng.int(20),
          }));
      // At most one failed payment: with `maxAttempts: 4`, that leaves room for a restart and a slow start.
      const flakyPayments = prng.int(2);
      const order: Order = { orderId: instanceId, customer: 'chaos', items, flakyPayments };
      return {
        instanceId,
        workflow,
        input: order,
        designedFailures: { charge: empty ? Number.POSITIVE_INFINITY : flakyPayments },
        expected: empty
          ? { status: 'FAILED', taskKey: 'charge', errorName: 'TerminalError', message: /no items/ }
          : { status: 'COMPLETED', output: { approved: true } },
        signal: { name: 'manager-approval', payload: { ok: true }, early: prng.next() < 0.3 },
      };
    }
    case 'chaos-pipeline': {
      const n = prng.int(100);
      const d = 2 * n;
      return {
        instanceId,
        workflow,
        input: { n },
        expected: { status: 'COMPLETED', output: `total:${d * d + (d + 1) + (d + 3) * 2}` },
      };
    }
    case 'chaos-map': {
      const items = Array.from({ length: 2 + prng.int(6) }, () => prng.int(20) - 5);
      // Subtracted from 0, not negated: JSON has no -0, and -0 is not 0 to a deep equality.
      const sum = items.reduce((a, x) => a - x * x * x, 0);
      return { instanceId, workflow, input: { items }, expected: { status: 'COMPLETED', output: sum } };
    }
    case 'chaos-gate': {
      const n = prng.int(100);
      return {
        instanceId,
        workflow,
        input: { n },
        expected: { status: 'COMPLETED', output: (n + 1) * 2 + 5 + n * 3 },
        // The gate's branch waits for it in its lane, and goes on with the number it carries.
        signal: { name: 'gate', payload: { n: n + 1 }, early: n % 3 === 0, inLane: true },
      };
    }
    case 'chaos-retry': {
      const failures = prng.int(3);
      const rounds = prng.int(5);
      const acc = (rounds * (rounds + 1)) / 2;
      return {
        instanceId,
        workflow,
        input: { failures, rounds },
        designedFailures: { flaky: failures },
        expected: { status: 'COMPLETED', output: acc % 2 === 0 ? acc / 2 : 3 * acc + 1 },
      };
    }
    default: {
      const n = prng.int(100);
      return {
        instanceId,
        workflow,
        input: { n },
        expected: {
          status: 'FAILED',
          taskKey: 'explode',
          errorName: 'ChaosTaskError',
          message: new RegExp(`^boom ${n + 1}$`),
        },
      };
    }
  }
}
