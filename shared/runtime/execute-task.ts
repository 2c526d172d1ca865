import { compileFlow, taskOf } from '../engine/compile.ts';
import type { AnyFlow } from '../engine/definition.ts';
import { taskTimeoutMs } from '../engine/describe.ts';
import {
  ensureError,
  type SerializedError,
  serializeError,
  TaskSchemaError,
  TaskTimeoutError,
} from '../engine/errors.ts';
import { toJson } from '../engine/json.ts';
import type { Dispatch } from '../engine/snapshot.ts';
import type { TaskContext } from '../engine/task.ts';
import type { Clock } from '../ports/clock.ts';
import type { Secrets } from '../ports/secrets.ts';

/**
 * The reason a settled task's timeout timer is stopped with: a constant, so
 * stopping it costs no `DOMException` (the default reason, which captures a
 * stack) on every task. Nothing reads it.
 */
const SETTLED = Object.freeze({ settled: true });

export type TaskOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: SerializedError };

export interface ExecuteOptions {
  readonly flow: AnyFlow;
  readonly dispatch: Dispatch;
  /** The task's input, already materialized from its ref. */
  readonly input: unknown;
  readonly clock: Clock;
  readonly secrets: Secrets;
  /** Aborts the task from outside (cancellation, lost claim). */
  readonly signal?: AbortSignal;
}

/**
 * Runs one attempt of a task: input schema, the function under its timeout,
 * output schema. Never throws: the outcome says what happened.
 */
export async function executeTask(o: ExecuteOptions): Promise<TaskOutcome> {
  const node = compileFlow(o.flow).nodes.get(o.dispatch.qid);
  if (!node) {
    return {
      ok: false,
      error: {
        name: 'UnknownTaskError',
        message: `flow '${o.flow.name}' has no step '${o.dispatch.qid}'`,
        retryable: false,
      },
    };
  }
  const def = taskOf(node);
  const timeoutMs = taskTimeoutMs(def);
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(o.signal?.reason);
  if (o.signal?.aborted) controller.abort(o.signal.reason);
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const timeoutStop = new AbortController();
  const ctx: TaskContext = {
    workflow: o.flow.name,
    instanceId: o.dispatch.instanceId,
    taskKey: o.dispatch.key,
    taskId: def.id,
    attempt: o.dispatch.attempt,
    idempotencyKey: `${o.dispatch.instanceId}:${o.dispatch.key}`,
    signal: controller.signal,
    secret: (name) => o.secrets.get(name),
  };
  try {
    let input = o.input;
    if (def.options.input) {
      try {
        input = def.options.input.parse(input);
      } catch (e) {
        throw new TaskSchemaError(o.dispatch.key, 'input', e);
      }
    }
    const timeout = o.clock.sleep(timeoutMs, timeoutStop.signal).then(
      () => {
        const err = new TaskTimeoutError(o.dispatch.key, timeoutMs);
        controller.abort(err);
        throw err;
      },
      () => undefined as never,
    );
    const aborted = new Promise<never>((_, reject) => {
      if (controller.signal.aborted) reject(ensureError(controller.signal.reason));
      controller.signal.addEventListener('abort', () => reject(ensureError(controller.signal.reason)), { once: true });
    });
    aborted.catch(() => undefined); // settles after the race when aborted late
    let value = await Promise.race([Promise.resolve().then(() => def.fn(input, ctx)), timeout, aborted]);
    if (def.options.output) {
      try {
        value = def.options.output.parse(value);
      } catch (e) {
        throw new TaskSchemaError(o.dispatch.key, 'output', e);
      }
    }
    // An output JSON cannot express (a BigInt, a cycle, nesting past the stack) would fail every commit
    // and every retry alike: it fails this attempt terminally, naming the cause, before any write.
    toJson(value, `output of task '${o.dispatch.key}'`);
    return { ok: true, value };
  } catch (e) {
    return { ok: false, error: serializeError(e) };
  } finally {
    timeoutStop.abort(SETTLED);
    o.signal?.removeEventListener('abort', onOuterAbort);
  }
}
