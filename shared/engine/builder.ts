import type { AnyFlow, BodyNode, Flow, FlowOptions, StepNode } from './definition.ts';
import { isFlow } from './definition.ts';
import { hashSteps } from './definition-hash.ts';
import { type Duration, toMillis } from './duration.ts';
import { type DurationFormatError, FlowDefinitionError } from './errors.ts';
import { isTaskDef, type LoopResult, type TaskDef, type TaskFn, type TaskOptions, task } from './task.ts';

/** What a branch, a route branch or a map item runs: a task, a plain function or a flow. */
export type Body<I, O> = TaskDef<I, O> | TaskFn<I, O> | Flow<I, O>;

/** A named fork branch; `I` is its input type, `O` its output type. */
export interface BranchDef<I, O> {
  readonly kind: 'branch';
  readonly name: string;
  readonly body: BodyNode;
  /** @internal phantom types */
  readonly __io?: { readonly in: (input: I) => void; readonly out: O };
}

/** Ids name steps and task keys: letters, digits, `_`, `-` and `.` only. */
const ID_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;

function toBody<I, O>(flowName: string, id: string, body: Body<I, O>): BodyNode {
  if (isFlow(body)) return { kind: 'flow', id, flow: body };
  if (isTaskDef(body)) return { kind: 'task', id, task: body as TaskDef<unknown, unknown> };
  if (typeof body === 'function') return { kind: 'task', id, task: task(id, body as TaskFn<unknown, unknown>) };
  throw new FlowDefinitionError(flowName, `step '${id}': expected a task, a function or a flow`);
}

/**
 * Defines a fork branch.
 *
 * @example
 * ```ts
 * flow<Order>('fulfil').fork([branch('email', sendEmail), branch('ship', ship)]).join('done', ([e, s]) => ({ e, s }));
 * ```
 */
export function branch<I, O>(name: string, body: TaskDef<I, O>): BranchDef<I, O>;
export function branch<I, O>(name: string, body: Flow<I, O>): BranchDef<I, O>;
export function branch<I, O>(name: string, body: TaskFn<I, O>): BranchDef<I, Awaited<O>>;
export function branch<I, O>(name: string, body: Body<I, O>): BranchDef<I, unknown> {
  return { kind: 'branch', name, body: toBody('(branch)', name, body) };
}

type BranchOutputs<B extends readonly unknown[]> = {
  -readonly [K in keyof B]: B[K] extends BranchDef<infer _I, infer O> ? O : never;
};

/** Options of `waitForSignal`. */
export interface SignalOptions {
  /** Stop waiting after this long. @default no timeout */
  readonly timeout?: Duration;
  /**
   * On timeout, `fail` fails the run with a `SignalTimeoutError`; `continue`
   * goes on with `null` as the step's output.
   * @default 'fail'
   */
  readonly onTimeout?: 'fail' | 'continue';
}

/** Options of `loop`. */
export interface LoopOptions<M extends 'fail' | 'exit'> {
  /** Step id when the body is a plain function. @default `loop<n>` */
  readonly id?: string;
  /** Required bound on the number of iterations. */
  readonly maxIterations: number;
  /**
   * When the bound is reached: `fail` fails the run; `exit` goes on with the
   * last `again` value.
   * @default 'fail'
   */
  readonly onMax?: M;
}

/** Options of `map`. */
export interface MapOptions extends TaskOptions {
  /** Items running at once. @default 10 */
  readonly maxConcurrency?: number;
}

/** Options of `route`. */
export interface RouteOptions extends TaskOptions {
  /** Step id of the route (its key function runs as a task of that id). @default `route<n>` */
  readonly id?: string;
}

/**
 * Builds a flow step by step; each step's input is the previous step's output.
 * Builders are immutable: every method returns a new builder.
 */
export class FlowBuilder<TIn, TCur> {
  constructor(
    readonly name: string,
    readonly options: FlowOptions<TIn>,
    readonly steps: readonly StepNode[],
  ) {}

  private add<TNext>(step: StepNode): FlowBuilder<TIn, TNext> {
    if (!ID_PATTERN.test(step.id)) {
      throw new FlowDefinitionError(
        this.name,
        `invalid step id ${JSON.stringify(step.id)}: use 1-100 letters, digits, '_', '-' or '.'`,
      );
    }
    return new FlowBuilder<TIn, TNext>(this.name, this.options, [...this.steps, step]);
  }

  private fail(message: string): never {
    throw new FlowDefinitionError(this.name, message);
  }

  /** Runs a task on the current value. */
  then<O>(step: TaskDef<TCur, O>): FlowBuilder<TIn, O>;
  then<O>(id: string, fn: TaskFn<TCur, O>, options?: TaskOptions<TCur, Awaited<O>>): FlowBuilder<TIn, Awaited<O>>;
  then<O>(
    stepOrId: TaskDef<TCur, O> | string,
    fn?: TaskFn<TCur, O>,
    options?: TaskOptions<TCur, Awaited<O>>,
  ): FlowBuilder<TIn, unknown> {
    const def =
      typeof stepOrId === 'string'
        ? fn
          ? task(stepOrId, fn, options)
          : this.fail(`step '${stepOrId}': then(id, fn) needs a function`)
        : stepOrId;
    if (!isTaskDef(def)) this.fail('then() expects a task or an id and a function');
    return this.add({ kind: 'task', id: def.id, task: def as TaskDef<unknown, unknown> });
  }

  /** Runs branches in parallel on the current value; `.join` receives their outputs as a tuple in branch order. */
  fork<const B extends readonly BranchDef<TCur, unknown>[]>(branches: B): ForkBuilder<TIn, TCur, BranchOutputs<B>> {
    if (!Array.isArray(branches) || branches.length === 0) this.fail('fork() needs at least one branch');
    return new ForkBuilder(this, branches as readonly BranchDef<TCur, unknown>[]);
  }

  /** Waits, then passes the current value on unchanged. */
  delay(id: string, duration: Duration): FlowBuilder<TIn, TCur> {
    let ms: number;
    try {
      ms = toMillis(duration);
    } catch (e) {
      this.fail(`delay '${id}': ${(e as DurationFormatError).message}`);
    }
    return this.add({ kind: 'delay', id, ms });
  }

  /**
   * Waits for a signal sent to the instance; its payload becomes the current
   * value. A signal sent before the wait is reached is buffered, not lost.
   */
  waitForSignal<T>(
    id: string,
    signalName: string,
    options: SignalOptions & { readonly onTimeout: 'continue'; readonly timeout: Duration },
  ): FlowBuilder<TIn, T | null>;
  waitForSignal<T>(
    id: string,
    signalName: string,
    options?: SignalOptions & { readonly onTimeout?: 'fail' },
  ): FlowBuilder<TIn, T>;
  waitForSignal<T>(id: string, signalName: string, options: SignalOptions = {}): FlowBuilder<TIn, T | null> {
    if (!signalName || typeof signalName !== 'string') this.fail(`waitForSignal '${id}': a signal name is required`);
    let timeoutMs: number | undefined;
    if (options.timeout !== undefined) {
      try {
        timeoutMs = toMillis(options.timeout);
      } catch (e) {
        this.fail(`waitForSignal '${id}': timeout: ${(e as DurationFormatError).message}`);
      }
    }
    if (options.onTimeout === 'continue' && timeoutMs === undefined) {
      this.fail(`waitForSignal '${id}': onTimeout 'continue' needs a timeout`);
    }
    return this.add({
      kind: 'signal',
      id,
      signal: signalName,
      onTimeout: options.onTimeout ?? 'fail',
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
  }

  /**
   * Picks one branch by a key computed from the current value; the chosen
   * branch receives the current value.
   *
   * @example
   * ```ts
   * .route((o: Order) => (o.total > 100 ? 'big' : 'small'), ['big', 'small'] as const)
   * .branch('big', review).branch('small', approve).done()
   * ```
   */
  route<const K extends string>(
    keyFn: (input: TCur) => NoInfer<K> | Promise<NoInfer<K>>,
    keys: readonly K[],
    options: RouteOptions = {},
  ): RouteBuilder<TIn, TCur, K, never> {
    const { id = `route${this.steps.length}`, ...taskOptions } = options;
    if (!Array.isArray(keys) || keys.length === 0) this.fail(`route '${id}': needs at least one key`);
    if (new Set(keys).size !== keys.length) this.fail(`route '${id}': duplicate keys`);
    const keyTask = task(id, (input: TCur) => keyFn(input), taskOptions as TaskOptions<TCur, unknown> as never);
    return new RouteBuilder(this, id, keyTask as TaskDef<unknown, unknown>, keys, [], undefined);
  }

  /**
   * Repeats a task until it returns `LoopResult.done(value)`; `LoopResult.again(next)` feeds `next` back in.
   */
  loop<O, M extends 'fail' | 'exit' = 'fail'>(
    body: TaskDef<TCur, LoopResult<TCur, O>> | TaskFn<TCur, LoopResult<TCur, O>>,
    options: LoopOptions<M>,
  ): FlowBuilder<TIn, M extends 'exit' ? O | TCur : O> {
    const id = isTaskDef(body) ? body.id : (options?.id ?? `loop${this.steps.length}`);
    const max = options?.maxIterations;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      this.fail(`loop '${id}': maxIterations must be a positive integer (a loop needs a bound)`);
    }
    const onMax = options.onMax ?? 'fail';
    if (onMax !== 'fail' && onMax !== 'exit') this.fail(`loop '${id}': onMax must be 'fail' or 'exit'`);
    const def = isTaskDef(body) ? body : task(id, body as TaskFn<TCur, LoopResult<TCur, O>>);
    return this.add({ kind: 'loop', id, body: def as TaskDef<unknown, unknown>, maxIterations: max, onMax });
  }

  /** Runs a child flow on the current value. */
  thenFlow<O>(child: Flow<TCur, O>, options: { readonly id?: string } = {}): FlowBuilder<TIn, O> {
    if (!isFlow(child)) this.fail('thenFlow() expects a built flow');
    return this.add({ kind: 'child', id: options.id ?? child.name, flow: child });
  }

  /**
   * Runs a task or flow for every item of an array computed from the current
   * value; the output is the array of results in item order.
   */
  map<E, O>(
    id: string,
    itemsFn: (input: TCur) => readonly E[] | Promise<readonly E[]>,
    body: TaskDef<E, O> | Flow<E, O> | TaskFn<E, O>,
    options: MapOptions = {},
  ): FlowBuilder<TIn, Awaited<O>[]> {
    const { maxConcurrency = 10, ...taskOptions } = options;
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) {
      this.fail(`map '${id}': maxConcurrency must be a positive integer`);
    }
    const items = task(id, itemsFn, taskOptions as TaskOptions<TCur, readonly E[]>);
    return this.add({
      kind: 'map',
      id,
      items: items as TaskDef<unknown, unknown>,
      body: toBody(this.name, `${id}[]`, body),
      maxConcurrency,
    });
  }

  /** Validates the whole definition and returns the flow. */
  build(): Flow<TIn, TCur> {
    if (this.steps.length === 0) this.fail('a flow needs at least one step');
    validateSteps(this.name, this.steps);
    return {
      kind: 'flow',
      name: this.name,
      steps: this.steps,
      options: this.options,
      hash: hashSteps(this.name, this.steps),
    };
  }
}

/** A fork waiting for its join. */
export class ForkBuilder<TIn, TCur, TOuts extends readonly unknown[]> {
  constructor(
    private readonly parent: FlowBuilder<TIn, TCur>,
    private readonly branches: readonly BranchDef<TCur, unknown>[],
  ) {}

  /** Joins the branches: `fn` receives their outputs as a tuple in branch order. */
  join<O>(id: string, fn: TaskFn<TOuts, O>, options?: TaskOptions<TOuts, Awaited<O>>): FlowBuilder<TIn, Awaited<O>>;
  join<O>(step: TaskDef<TOuts, O>): FlowBuilder<TIn, O>;
  join<O>(
    idOrTask: string | TaskDef<TOuts, O>,
    fn?: TaskFn<TOuts, O>,
    options?: TaskOptions<TOuts, Awaited<O>>,
  ): FlowBuilder<TIn, unknown> {
    const def = typeof idOrTask === 'string' ? (fn ? task(idOrTask, fn, options) : undefined) : idOrTask;
    if (!def) throw new FlowDefinitionError(this.parent.name, `join '${String(idOrTask)}' needs a function`);
    const names = new Set<string>();
    for (const b of this.branches) {
      if (b?.kind !== 'branch')
        throw new FlowDefinitionError(this.parent.name, 'fork() expects branch(name, body) items');
      if (names.has(b.name)) throw new FlowDefinitionError(this.parent.name, `fork: duplicate branch name '${b.name}'`);
      names.add(b.name);
    }
    return (this.parent as unknown as { add(step: StepNode): FlowBuilder<TIn, unknown> }).add({
      kind: 'fork',
      id: def.id,
      branches: this.branches.map((b) => b.body),
      join: def as TaskDef<unknown, unknown>,
    });
  }
}

/** A route collecting its branches; `done()` returns to the flow. */
export class RouteBuilder<TIn, TCur, K extends string, TOut> {
  constructor(
    private readonly parent: FlowBuilder<TIn, TCur>,
    private readonly id: string,
    private readonly keyTask: TaskDef<unknown, unknown>,
    private readonly keys: readonly K[],
    private readonly branches: readonly { readonly key: string; readonly body: BodyNode }[],
    private readonly fallback: BodyNode | undefined,
  ) {}

  private fail(message: string): never {
    throw new FlowDefinitionError(this.parent.name, `route '${this.id}': ${message}`);
  }

  /** The branch taken when the key function returns `key`. */
  branch<O>(
    key: K,
    body: TaskDef<TCur, O> | Flow<TCur, O> | TaskFn<TCur, O>,
  ): RouteBuilder<TIn, TCur, K, TOut | Awaited<O>> {
    if (!this.keys.includes(key)) this.fail(`unknown key '${key}' (keys: ${this.keys.join(', ')})`);
    if (this.branches.some((b) => b.key === key)) this.fail(`duplicate branch for key '${key}'`);
    const bodyId = isTaskDef(body) ? body.id : `${this.id}.${key}`;
    return new RouteBuilder(
      this.parent,
      this.id,
      this.keyTask,
      this.keys,
      [...this.branches, { key, body: toBody(this.parent.name, bodyId, body) }],
      this.fallback,
    );
  }

  /** The branch taken for a key with no branch of its own. */
  defaultBranch<O>(
    id: string,
    body: TaskDef<TCur, O> | Flow<TCur, O> | TaskFn<TCur, O>,
  ): RouteBuilder<TIn, TCur, K, TOut | Awaited<O>> {
    if (this.fallback) this.fail('a route has one default branch');
    return new RouteBuilder(
      this.parent,
      this.id,
      this.keyTask,
      this.keys,
      this.branches,
      toBody(this.parent.name, id, body),
    );
  }

  done(): FlowBuilder<TIn, TOut> {
    if (this.branches.length === 0 && !this.fallback) this.fail('a route needs at least one branch');
    const uncovered = this.keys.filter((k) => !this.branches.some((b) => b.key === k));
    if (uncovered.length > 0 && !this.fallback) {
      this.fail(`keys without a branch and no default branch: ${uncovered.join(', ')}`);
    }
    return (this.parent as unknown as { add(step: StepNode): FlowBuilder<TIn, TOut> }).add({
      kind: 'route',
      id: this.id,
      keyTask: this.keyTask,
      keys: this.keys,
      branches: this.branches,
      ...(this.fallback ? { fallback: this.fallback } : {}),
    });
  }
}

/**
 * Starts a flow definition. `TInput` is the run's input type.
 *
 * @example
 * ```ts
 * export const hello = flow<{ name: string }>('hello')
 *   .then('greet', ({ name }) => `Hello, ${name}!`)
 *   .build();
 * ```
 */
export function flow<TInput>(name: string, options: FlowOptions<TInput> = {}): FlowBuilder<TInput, TInput> {
  if (!/^[A-Za-z0-9_.-]{1,80}$/.test(name)) {
    throw new FlowDefinitionError(String(name), "a flow name is 1-80 letters, digits, '_', '-' or '.'");
  }
  const buffer = options.signalBuffer;
  if (buffer !== undefined && !(Number.isInteger(buffer) && buffer >= 1 && buffer <= MAX_SIGNAL_BUFFER)) {
    throw new FlowDefinitionError(name, `signalBuffer: must be an integer from 1 to ${MAX_SIGNAL_BUFFER}`);
  }
  const retention = options.retention;
  if (retention !== undefined && retention !== 'forever') {
    let ms: number;
    try {
      ms = toMillis(retention);
    } catch {
      ms = Number.NaN;
    }
    if (!(ms >= 60_000)) {
      throw new FlowDefinitionError(name, "retention: must be a duration of at least one minute, or 'forever'");
    }
  }
  return new FlowBuilder<TInput, TInput>(name, options, []);
}

/** Largest {@link FlowOptions.signalBuffer}: a full buffer keeps the snapshot well under an item's size. */
export const MAX_SIGNAL_BUFFER = 1_000;

/** Checks ids are unique within each scope, recursively. */
function validateSteps(flowName: string, steps: readonly StepNode[]): void {
  const seen = new Set<string>();
  const claim = (id: string, what: string) => {
    if (!ID_PATTERN.test(id.replace(/\[\]$/, ''))) {
      throw new FlowDefinitionError(flowName, `invalid id ${JSON.stringify(id)} (${what})`);
    }
    if (seen.has(id)) throw new FlowDefinitionError(flowName, `duplicate id '${id}' (${what})`);
    seen.add(id);
  };
  const body = (b: BodyNode, what: string) => {
    claim(b.id, what);
    if (b.kind === 'flow') validateNested(b.flow);
  };
  for (const s of steps) {
    switch (s.kind) {
      case 'fork':
        for (const b of s.branches) body(b, 'fork branch');
        claim(s.id, 'join');
        break;
      case 'route':
        claim(s.id, 'route');
        for (const b of s.branches) body(b.body, `route branch '${b.key}'`);
        if (s.fallback) body(s.fallback, 'default branch');
        break;
      case 'map':
        claim(s.id, 'map');
        body(s.body, 'map body');
        break;
      case 'child':
        claim(s.id, 'child flow');
        validateNested(s.flow);
        break;
      default:
        claim(s.id, s.kind);
    }
  }
}

function validateNested(f: AnyFlow): void {
  validateSteps(f.name, f.steps);
}
