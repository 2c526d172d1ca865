import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { workflowView } from '../../../shared/api/views.ts';
import type { StepNode } from '../../../shared/engine/definition.ts';
import { definitionStructure, hashSteps } from '../../../shared/engine/definition-hash.ts';
import { type AnyFlow, branch, type Duration, describeFlow, flow, LoopResult, task } from '../../../shared/index.ts';

/**
 * The API view of a flow grows a field in this file: every described step
 * carries `addedLater`. The golden hashes below must hold regardless, which
 * proves the hash is not computed from the view.
 */
vi.mock(import('../../../shared/engine/describe.ts'), async (importOriginal) => {
  const original = await importOriginal();
  const grow = (json: ReturnType<typeof original.describeSteps>) => ({
    ...json,
    steps: json.steps.map((s) => ({ ...s, addedLater: 'a field the view gained after instances were started' })),
  });
  return {
    ...original,
    describeSteps: (name: string, steps: readonly StepNode[]) => grow(original.describeSteps(name, steps)),
    describeFlow: (f: AnyFlow) => grow(original.describeFlow(f)),
  };
});

// The golden values: a change to any of them makes every stored instance of
// such a flow refuse to resume (DefinitionMismatchError). Updating one is a
// decision to strand those runs, not a way to make this test pass.
const GOLDEN = {
  sequence: '1551ea626d87b0e0',
  fan: 'efce574077dba23c',
  routing: 'c685343e31d20ca8',
  loops: '33fa580260858f24',
  nested: 'd5309677ede8054c',
  everything: 'bead372a638d7d5d',
} as const;

const id = <T>(x: T): T => x;

/** `then`, `delay` and `waitForSignal`. */
const sequence = () =>
  flow<number>('sequence')
    .then('start', id)
    .delay('pause', '1m')
    .waitForSignal<number>('approval', 'approved')
    .then('finish', id)
    .build();

/** fork/join with a task branch, a function branch and a flow branch. */
const fan = () => {
  const sub = flow<number>('fan-sub').then('inner', id).build();
  return flow<number>('fan')
    .fork([branch('email', task('send-email', id)), branch('sms', id), branch('sub', sub)])
    .join('joined', ([a]) => a)
    .build();
};

/** A route with explicit branches, a flow branch and a default branch. */
const routing = () => {
  const review = flow<number>('review').then('check', id).build();
  return flow<number>('routing')
    .route((n: number) => (n > 100 ? 'big' : n > 10 ? 'medium' : 'small'), ['big', 'medium', 'small'] as const, {
      id: 'size',
    })
    .branch('big', review)
    .branch('medium', (n: number) => n)
    .defaultBranch('fallback', (n: number) => n)
    .done()
    .build();
};

/** A loop, a map over a task and a map over a flow. */
const loops = () => {
  const perItem = flow<number>('per-item').then('step1', id).then('step2', id).build();
  return flow<number>('loops')
    .loop((n: number) => (n > 3 ? LoopResult.done(n) : LoopResult.again(n + 1)), { id: 'count', maxIterations: 10 })
    .map(
      'double',
      (n) => [n, n],
      (n: number) => n * 2,
    )
    .map('deep', (ns: number[]) => ns, perItem)
    .build();
};

/** A child flow, itself holding a child flow. */
const nested = () => {
  const grandchild = flow<number>('grandchild').then('leaf', id).build();
  const child = flow<number>('child').then('c1', id).thenFlow(grandchild).build();
  return flow<number>('nested').thenFlow(child, { id: 'sub' }).then('after', id).build();
};

/** Everything a running instance can absorb: none of it may change the hash. */
interface Tuning {
  readonly attempts?: number;
  readonly timeout?: Duration;
  readonly priority?: 'high' | 'normal' | 'low';
  readonly pool?: string;
  readonly schemas?: boolean;
  readonly delay?: Duration;
  readonly signalTimeout?: Duration;
  readonly onTimeout?: 'fail' | 'continue';
  readonly maxIterations?: number;
  readonly onMax?: 'fail' | 'exit';
  readonly maxConcurrency?: number;
  readonly description?: string;
  readonly deadline?: Duration;
}

/** Structural choices: each one must change the hash. */
interface Shape {
  readonly flowName?: string;
  readonly taskId?: string;
  readonly extraStep?: boolean;
  readonly branchOrder?: 'ab' | 'ba';
  readonly branchName?: string;
  readonly joinId?: string;
  readonly delayBecomesSignal?: boolean;
  readonly signalName?: string;
  readonly signalId?: string;
  readonly routeKeys?: readonly ['yes', 'no'] | readonly ['no', 'yes'];
  readonly routeBranchOrder?: 'yes-first' | 'no-first';
  readonly defaultId?: string;
  readonly loopId?: string;
  readonly childName?: string;
  readonly childStepId?: string;
  readonly childExtraStep?: boolean;
  readonly mapId?: string;
  readonly mapBodyIsFlow?: boolean;
}

/** One flow with every construct, every tuning knob and every structural choice exposed. */
const everything = (shape: Shape = {}, tuning: Tuning = {}) => {
  const tuned = {
    retry: { maxAttempts: tuning.attempts ?? 3 },
    timeout: tuning.timeout ?? '30s',
    priority: tuning.priority ?? 'normal',
    pool: tuning.pool ?? 'default',
  } as const;
  const options = { ...tuned, ...(tuning.schemas ? { input: z.number(), output: z.number() } : {}) };
  const joinOptions = {
    ...tuned,
    ...(tuning.schemas ? { input: z.tuple([z.number(), z.number()]), output: z.number() } : {}),
  };
  const child = flow<number>(shape.childName ?? 'child')
    .then(shape.childStepId ?? 'c1', id, options)
    .build();
  const a = branch('a', task('a', id, options));
  const b = branch(shape.branchName ?? 'b', (n: number) => n * 2);
  const yes = (n: number) => n;
  const no = (n: number) => -n;
  let f = flow<number>(shape.flowName ?? 'everything', {
    ...(tuning.description === undefined ? {} : { description: tuning.description }),
    ...(tuning.deadline === undefined ? {} : { deadline: tuning.deadline }),
  })
    .then(task(shape.taskId ?? 'start', id, options))
    .fork(shape.branchOrder === 'ba' ? [b, a] : [a, b])
    .join(shape.joinId ?? 'joined', ([x, y]) => x + y, joinOptions);
  const afterDelay = shape.delayBecomesSignal
    ? f.waitForSignal<number>('pause', 'pause-signal')
    : f.delay('pause', tuning.delay ?? '1m');
  const signalled =
    tuning.onTimeout === 'continue'
      ? afterDelay
          .waitForSignal<number>(shape.signalId ?? 'approval', shape.signalName ?? 'approved', {
            timeout: tuning.signalTimeout ?? '1h',
            onTimeout: 'continue',
          })
          .then('unwrap', (n: number | null) => n ?? 0)
      : afterDelay
          .waitForSignal<number>(shape.signalId ?? 'approval', shape.signalName ?? 'approved', {
            timeout: tuning.signalTimeout ?? '1h',
          })
          .then('unwrap', (n: number | null) => n ?? 0);
  const routed = signalled.route((n: number) => (n > 0 ? 'yes' : 'no'), shape.routeKeys ?? (['yes', 'no'] as const), {
    id: 'decide',
    ...options,
  });
  const withBranches =
    shape.routeBranchOrder === 'no-first' ? routed.branch('no', no).branch('yes', yes) : routed.branch('yes', yes);
  f = (
    shape.routeBranchOrder === 'no-first' ? withBranches : withBranches.defaultBranch(shape.defaultId ?? 'other', no)
  )
    .done()
    .loop((n: number) => LoopResult.done(n), {
      id: shape.loopId ?? 'spin',
      maxIterations: tuning.maxIterations ?? 5,
      onMax: tuning.onMax ?? 'fail',
    })
    .then('list', (n: number) => n)
    .map(shape.mapId ?? 'each', (n: number) => [n], shape.mapBodyIsFlow ? child : (n: number) => n + 1, {
      maxConcurrency: tuning.maxConcurrency ?? 10,
      ...options,
    })
    .then('sum', (ns: number[]) => ns.length)
    .thenFlow(
      shape.childExtraStep
        ? flow<number>(shape.childName ?? 'child')
            .then(shape.childStepId ?? 'c1', id, options)
            .then('c2', id)
            .build()
        : child,
      { id: 'sub' },
    );
  if (shape.extraStep) f = f.then('extra', id);
  return f.build();
};

describe('definition hash: golden values', () => {
  it.each([
    ['sequence', sequence],
    ['fan', fan],
    ['routing', routing],
    ['loops', loops],
    ['nested', nested],
    ['everything', everything],
  ] as const)('keeps the hash of the %s flow at its golden value', (name, make) => {
    expect(make().hash).toBe(GOLDEN[name]);
  });
});

/** Tuning changes, one knob at a time, each away from the default used by `everything()`. */
const TUNINGS: readonly (readonly [string, Tuning])[] = [
  ['retry attempts', { attempts: 9 }],
  ['task timeouts', { timeout: '10m' }],
  ['priorities', { priority: 'high' }],
  ['worker pools', { pool: 'gpu' }],
  ['input and output schemas', { schemas: true }],
  ['a delay duration', { delay: '3d' }],
  ['a signal timeout', { signalTimeout: '2h' }],
  ['what a signal timeout does', { onTimeout: 'continue' }],
  ['a loop bound', { maxIterations: 50 }],
  ['what a loop does at its bound', { onMax: 'exit' }],
  ['map concurrency', { maxConcurrency: 2 }],
  ['the flow description', { description: 'now with a description' }],
  ['the flow deadline', { deadline: '7d' }],
];

/** Structural changes, one at a time. */
const SHAPES: readonly (readonly [string, Shape])[] = [
  ['the flow name', { flowName: 'everything2' }],
  ['a renamed task', { taskId: 'begin' }],
  ['an extra step', { extraStep: true }],
  ['reordered fork branches', { branchOrder: 'ba' }],
  ['a renamed fork branch', { branchName: 'bb' }],
  ['a renamed join', { joinId: 'merged' }],
  ['a delay turned into a signal wait of the same id', { delayBecomesSignal: true }],
  ['a different signal name', { signalName: 'rejected' }],
  ['a renamed signal step', { signalId: 'consent' }],
  ['reordered route keys', { routeKeys: ['no', 'yes'] }],
  ['a route branch replacing the default', { routeBranchOrder: 'no-first' }],
  ['a renamed default branch', { defaultId: 'otherwise' }],
  ['a renamed loop', { loopId: 'twirl' }],
  ['a renamed map', { mapId: 'every' }],
  ['a map body turned from a task into a flow', { mapBodyIsFlow: true }],
  ['a renamed child flow', { childName: 'kid' }],
  ['a renamed step in the child flow', { childStepId: 'k1' }],
  ['an extra step in the child flow', { childExtraStep: true }],
];

describe('definition hash: tuning', () => {
  it.each(TUNINGS)('does not change when %s change', (_what, tuning) => {
    expect(everything({}, tuning).hash).toBe(everything().hash);
  });

  it('does not change when every tuning knob changes at once', () => {
    const all = Object.assign({}, ...TUNINGS.map(([, t]) => t)) as Tuning;
    expect(everything({}, all).hash).toBe(everything().hash);
  });
});

describe('definition hash: structure', () => {
  it.each(SHAPES)('changes with %s', (_what, shape) => {
    expect(everything(shape).hash).not.toBe(everything().hash);
  });

  it('gives every structural variant a hash of its own', () => {
    const hashes = SHAPES.map(([, shape]) => everything(shape).hash);
    expect(new Set([everything().hash, ...hashes]).size).toBe(SHAPES.length + 1);
  });

  it('is 16 lowercase hex digits', () => {
    for (const h of Object.values(GOLDEN)) expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(everything({ extraStep: true }).hash).toMatch(/^[0-9a-f]{16}$/);
  });
});

const EXTRA = 'addedLater';

/**
 * A copy of a step tree where every plain object (step and body nodes, task
 * definitions and their options, nested flows) carries one more property.
 * Functions and class instances are kept as they are.
 */
function withExtraProperty<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withExtraProperty) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const copy = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withExtraProperty(v)]));
    return { ...copy, [EXTRA]: { nested: true } } as T;
  }
  return value;
}

describe('definition hash: reads only allowlisted fields', () => {
  it('does not change when every node of the step tree gains a property', () => {
    const f = everything();
    const grown = withExtraProperty(f.steps);
    expect(JSON.stringify(grown.map((s) => Object.keys(s)))).toContain(EXTRA);
    expect(hashSteps(f.name, grown)).toBe(GOLDEN.everything);
  });

  it('leaves extra properties out of the hashed structure', () => {
    const f = everything();
    const structure = definitionStructure(f.name, withExtraProperty(f.steps));
    expect(structure).toEqual(definitionStructure(f.name, f.steps));
    expect(JSON.stringify(structure)).not.toContain(EXTRA);
  });

  it('is the hash the builder stores', () => {
    for (const f of [sequence(), fan(), routing(), loops(), nested(), everything()]) {
      expect(hashSteps(f.name, f.steps)).toBe(f.hash);
    }
  });

  it('does not change when the API view gains a field', () => {
    // describe.ts is mocked above: every described step has `addedLater`.
    const f = everything();
    const view = workflowView(f, 'forever');
    expect(describeFlow(f).steps.every((s) => EXTRA in s)).toBe(true);
    expect(view.dag.steps.every((s) => EXTRA in s)).toBe(true);
    expect(view.definitionHash).toBe(GOLDEN.everything);
    expect(hashSteps(f.name, f.steps)).toBe(GOLDEN.everything);
  });
});
