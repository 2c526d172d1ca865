import { MemorySecrets } from '../adapters/memory/secrets.ts';
import { TaskSchemaError } from '../engine/errors.ts';
import type { TaskContext, TaskDef } from '../engine/task.ts';

/** Options of {@link runTask}: what the fake context says about the run. */
export interface RunTaskOptions {
  /** Secrets `ctx.secret(name)` returns; any other name rejects with `SecretNotFoundError`. @default none */
  readonly secrets?: Readonly<Record<string, string>>;
  /** @default 'test' */
  readonly workflow?: string;
  /** @default 'test-instance' */
  readonly instanceId?: string;
  /** @default 1 */
  readonly attempt?: number;
  /** Aborts `ctx.signal` (a test of the task's reaction to a timeout or a cancel). @default never aborted */
  readonly signal?: AbortSignal;
}

/**
 * A task context for a task run outside any workflow: the keys a deployed
 * run would give (`idempotencyKey` is `<instanceId>:<taskId>`, stable across
 * attempts like the engine's), secrets from a plain object.
 *
 * @example
 * ```ts
 * const ctx = fakeTaskContext('charge', { secrets: { stripe: 'sk_test' } });
 * await charge.fn(order, ctx);
 * ```
 */
export function fakeTaskContext(taskId: string, options: RunTaskOptions = {}): TaskContext {
  const secrets = new MemorySecrets(options.secrets ?? {});
  const instanceId = options.instanceId ?? 'test-instance';
  return {
    workflow: options.workflow ?? 'test',
    instanceId,
    taskKey: taskId,
    taskId,
    attempt: options.attempt ?? 1,
    idempotencyKey: `${instanceId}:${taskId}`,
    signal: options.signal ?? new AbortController().signal,
    secret: (name) => secrets.get(name),
  };
}

/**
 * Runs one task with a fake context, no workflow, store or queue: its input
 * and output schemas are applied as the worker applies them (a failure throws
 * `TaskSchemaError`), and an error the task throws is thrown as is.
 *
 * @example
 * ```ts
 * import { runTask } from 'sayiir-aws/testing';
 * const receipt = await runTask(charge, { id: 'o-1', amount: 42 }, { secrets: { stripe: 'sk_test' } });
 * ```
 */
export async function runTask<I, O>(def: TaskDef<I, O>, input: I, options: RunTaskOptions = {}): Promise<O> {
  const ctx = fakeTaskContext(def.id, options);
  let value: I = input;
  if (def.options.input) {
    try {
      value = def.options.input.parse(value);
    } catch (e) {
      throw new TaskSchemaError(def.id, 'input', e);
    }
  }
  const output = await def.fn(value, ctx);
  if (!def.options.output) return output;
  try {
    return def.options.output.parse(output);
  } catch (e) {
    throw new TaskSchemaError(def.id, 'output', e);
  }
}
