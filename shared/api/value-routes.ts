import { materialize, outputId, type Ref, refValueIds, ValueMissingError } from '../engine/refs.ts';
import { journalValueId } from '../ports/instance-store.ts';
import { instanceOr404, type RouteHandler } from './context.ts';
import { HttpError, jsonResponse } from './errors.ts';
import { MAX_VIEW_OUTPUT_VALUES, refValueCount } from './views.ts';

/**
 * A run's values, read on demand (the web UI asks for them when a step is
 * selected): the run's input, and a task's input (while it is in the
 * frontier: ready, dispatched, in backoff or failed) and output (once it
 * completed or was skipped). Offloaded values are read from the payload
 * store like any other.
 */

/** Longest task key accepted in a path. */
const MAX_TASK_KEY = 1_000;

/** A value read through its ref, or why it was not: made of more stored values than a view reads. */
async function readRef(
  ctx: Parameters<RouteHandler>[0],
  instanceId: string,
  ref: Ref,
): Promise<{ value: unknown } | { omitted: { values: number; limit: number } }> {
  const values = refValueCount(ref);
  if (values > MAX_VIEW_OUTPUT_VALUES) return { omitted: { values, limit: MAX_VIEW_OUTPUT_VALUES } };
  return { value: materialize(ref, await ctx.store.getValues(instanceId, refValueIds(ref))) ?? null };
}

/** One stored value, or `undefined` when there is none (not reached, not completed, or gone). */
async function readValue(ctx: Parameters<RouteHandler>[0], instanceId: string, id: string): Promise<unknown> {
  try {
    const values = await ctx.store.getValues(instanceId, [id]);
    return values.has(id) ? (values.get(id) ?? null) : undefined;
  } catch (e) {
    if (e instanceof ValueMissingError) return undefined;
    throw e;
  }
}

/** Most history pages read to find where a task's output is stored. */
const MAX_HISTORY_PAGES = 10;

/**
 * Where a task's output is stored: beside the journal entry that completed
 * (or skipped) it, the last one in the history; or, for a map item's result,
 * under the item's template id.
 */
async function outputIdsOf(ctx: Parameters<RouteHandler>[0], instanceId: string, key: string): Promise<string[]> {
  let done: number | undefined;
  let cursor: string | undefined;
  for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
    const read = await ctx.store.readHistory(instanceId, { limit: 1_000, ...(cursor ? { cursor } : {}) });
    for (const e of read.entries) {
      if (e.key === key && (e.type === 'task-completed' || e.type === 'task-skipped')) done = e.version;
    }
    cursor = read.cursor;
    if (!cursor) break;
  }
  return done === undefined ? [outputId(key)] : [journalValueId(done), outputId(key)];
}

/** `GET /v1/instances/{id}/input`: `{ instanceId, input }`. */
export const getRunInput: RouteHandler = async (ctx, req) => {
  const snapshot = await instanceOr404(ctx, req.params.get('id'));
  const input = await readValue(ctx, snapshot.instanceId, snapshot.inputId);
  return jsonResponse(200, { instanceId: snapshot.instanceId, input: input ?? null });
};

/**
 * `GET /v1/instances/{id}/tasks/{key}`: `{ instanceId, taskKey, state?,
 * attempt?, input? | inputOmitted?, output? }`; each field present only when
 * known. 404 when the run knows nothing of the key.
 */
export const getTaskValues: RouteHandler = async (ctx, req) => {
  const snapshot = await instanceOr404(ctx, req.params.get('id'));
  const key = req.params.get('key');
  if (key.length > MAX_TASK_KEY)
    throw new HttpError(400, 'invalid_request', `task key: at most ${MAX_TASK_KEY} characters`);
  const active = snapshot.tasks[key];
  const input = active ? await readRef(ctx, snapshot.instanceId, active.input) : undefined;
  let output: unknown;
  for (const id of await outputIdsOf(ctx, snapshot.instanceId, key)) {
    output = await readValue(ctx, snapshot.instanceId, id);
    if (output !== undefined) break;
  }
  if (!active && output === undefined) {
    throw new HttpError(
      404,
      'task_not_found',
      `instance '${snapshot.instanceId}' has no task '${key.slice(0, 100)}' in progress or completed`,
    );
  }
  return jsonResponse(200, {
    instanceId: snapshot.instanceId,
    taskKey: key,
    ...(active ? { state: active.state, attempt: active.attempt } : {}),
    ...(input && 'value' in input ? { input: input.value } : {}),
    ...(input && 'omitted' in input ? { inputOmitted: input.omitted } : {}),
    ...(output === undefined ? {} : { output }),
  });
};
