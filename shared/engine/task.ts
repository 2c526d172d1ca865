import type { Duration } from './duration.ts';
import type { RetryPolicy } from './retry.ts';

/** Anything with a `parse` method, such as a zod schema. */
export interface Schema<T> {
  parse(value: unknown): T;
}

export type Priority = 'high' | 'normal' | 'low';
export const PRIORITIES: readonly Priority[] = ['high', 'normal', 'low'];

/** What a running task knows about itself. */
export interface TaskContext {
  readonly workflow: string;
  readonly instanceId: string;
  /** Unique within the instance, across loop iterations and map items. */
  readonly taskKey: string;
  /** The task's id in the flow definition. */
  readonly taskId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /**
   * Stable across attempts of the same task in the same instance: pass it to
   * the systems your task calls so that a re-run does not repeat a side effect.
   */
  readonly idempotencyKey: string;
  /** Fires when the task timed out or the run was cancelled. */
  readonly signal: AbortSignal;
  /** Reads a secret through the secrets port (cached per process). */
  secret(name: string): Promise<string>;
}

export type TaskFn<I, O> = (input: I, ctx: TaskContext) => O | Promise<O>;

/** Options of a task. */
export interface TaskOptions<I = unknown, O = unknown> {
  /** Retry policy. @default { maxAttempts: 3, initialDelay: '1s', backoffMultiplier: 2, maxDelay: '5m', jitter: 'full' } */
  readonly retry?: RetryPolicy;
  /** Limit of one attempt; an attempt past it fails with a retryable `TaskTimeoutError`. @default '5m' */
  readonly timeout?: Duration;
  /** Queue priority. @default 'normal' */
  readonly priority?: Priority;
  /** Worker pool that runs the task: picks its Lambda function and queues. @default 'default' */
  readonly pool?: string;
  /** Validates the input before the task runs; a failure is terminal. */
  readonly input?: Schema<I>;
  /** Validates the output before it is checkpointed; a failure is terminal. */
  readonly output?: Schema<O>;
}

/** A task definition: an id, a function and its options. */
export interface TaskDef<I, O> {
  readonly kind: 'task';
  readonly id: string;
  readonly fn: TaskFn<I, O>;
  readonly options: TaskOptions<I, O>;
}

/**
 * Defines a task.
 *
 * @example
 * ```ts
 * const charge = task('charge', async (order: Order, ctx) => pay(order, ctx.idempotencyKey), {
 *   retry: { maxAttempts: 5 },
 *   timeout: '30s',
 *   priority: 'high',
 * });
 * ```
 */
export function task<I, O>(
  id: string,
  fn: TaskFn<I, O>,
  options: TaskOptions<I, Awaited<O>> = {},
): TaskDef<I, Awaited<O>> {
  return { kind: 'task', id, fn: fn as TaskFn<I, Awaited<O>>, options };
}

export function isTaskDef(value: unknown): value is TaskDef<unknown, unknown> {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'task';
}

/** The result of one loop iteration: go again with a new input, or finish with an output. */
export type LoopResult<A, D> =
  | { readonly loop: 'again'; readonly value: A }
  | { readonly loop: 'done'; readonly value: D };

export const LoopResult = {
  again<A>(value: A): { readonly loop: 'again'; readonly value: A } {
    return { loop: 'again', value };
  },
  done<D>(value: D): { readonly loop: 'done'; readonly value: D } {
    return { loop: 'done', value };
  },
};
