import type { AnyFlow } from '../engine/definition.ts';
import { DefinitionMismatchError, serializeError } from '../engine/errors.ts';
import { historyOf } from '../engine/history.ts';
import { controlOf, initSnapshot, reduce } from '../engine/reducer.ts';

export { pendingEffects } from '../engine/reducer.ts';

import { inputId, outputId, signalId } from '../engine/refs.ts';
import type { Dispatch, Effect, Reduction, RunEvent, Snapshot } from '../engine/snapshot.ts';
import { InstanceNotFoundError, VersionConflictError } from '../ports/errors.ts';
import type { InstanceStore } from '../ports/instance-store.ts';

/**
 * The engine's write paths over an {@link InstanceStore}, shared by the
 * in-process runner, the API, the worker and the reaper. Each is a handful of
 * single-item conditional writes:
 *
 * - start: put input, put snapshot if absent (already reduced past `start`);
 * - complete: put output if absent, update snapshot if unchanged since read;
 * - everything else: update snapshot if unchanged since read.
 *
 * On a version conflict the snapshot is reloaded and the pure reducer applied
 * again, so concurrent writers never lose each other's events.
 */

const MAX_CONFLICT_RETRIES = 100;

/**
 * Pause after the n-th lost race: full jitter over a doubling window (1 ms
 * to 64 ms), so that many writers of one hot snapshot (a wide map) spread out
 * instead of colliding again in lockstep.
 */
function conflictBackoff(attempt: number): Promise<void> {
  const window = Math.min(64, 2 ** Math.min(attempt, 6));
  return new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * window)));
}

export interface StartResult {
  readonly snapshot: Snapshot;
  readonly effects: readonly Effect[];
}

/**
 * Creates an instance and applies `start`, in one conditional put.
 *
 * @throws {InstanceExistsError} the id is taken.
 */
export async function startInstance(
  store: InstanceStore,
  flow: AnyFlow,
  input: unknown,
  instanceId: string,
  now: number,
  options: { readonly nonce?: string; readonly redispatchAfterMs?: number } = {},
): Promise<StartResult> {
  const init = initSnapshot(flow, instanceId, inputId(options.nonce ?? randomNonce()), now, options.redispatchAfterMs);
  const r = reduce(flow, init, { type: 'start' }, now);
  await store.create(r.snapshot, input);
  await store.appendHistory(instanceId, historyOf({ type: 'start' }, r.snapshot, r.effects, now));
  return { snapshot: r.snapshot, effects: r.effects };
}

/** Throws when a stored instance was started from another definition. */
export function assertSameDefinition(flow: AnyFlow, snapshot: Snapshot): void {
  if (snapshot.defHash !== flow.hash) {
    throw new DefinitionMismatchError(snapshot.instanceId, snapshot.defHash, flow.hash);
  }
}

/**
 * Applies an event with optimistic concurrency: read, reduce, conditional
 * update; on conflict, again. `known` is a snapshot the caller already read
 * (saves the first read; a stale one only costs a conflict and a reload).
 *
 * @throws {InstanceNotFoundError} no such instance.
 * @throws {DefinitionMismatchError} the instance belongs to another definition.
 */
export async function applyEvent(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  event: RunEvent,
  now: () => number,
  known?: Snapshot,
): Promise<Reduction> {
  return applyEvents(store, flow, instanceId, [event], now, known);
}

/**
 * Applies several events in one conditional update (the reaper firing all
 * due timers of an instance at once). The result's `changed` is true when any
 * event changed the snapshot; effects are concatenated in order.
 */
export async function applyEvents(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  events: readonly RunEvent[],
  now: () => number,
  known?: Snapshot,
): Promise<Reduction> {
  let cached = known;
  for (let i = 0; ; i++) {
    const snapshot = cached ?? (await store.get(instanceId));
    cached = undefined;
    if (!snapshot) throw new InstanceNotFoundError(instanceId);
    assertSameDefinition(flow, snapshot);
    const t = now();
    let current = snapshot;
    const effects: Effect[] = [];
    const applied: { event: RunEvent; effects: readonly Effect[] }[] = [];
    for (const event of events) {
      const r = reduce(flow, current, event, t);
      if (r.changed) {
        // Each reduce bumps the version: keep one bump per update.
        current = { ...r.snapshot, version: snapshot.version + 1 };
        effects.push(...r.effects);
        applied.push({ event, effects: r.effects });
      }
    }
    if (current === snapshot) return { snapshot, effects: [], changed: false };
    try {
      await store.update(current);
      // History follows the checkpoint it describes; a crash right here can
      // drop these entries, never the progress (the snapshot is the truth).
      const entries = applied.flatMap((a) => historyOf(a.event, current, a.effects, t));
      if (entries.length > 0) await store.appendHistory(instanceId, entries);
      return { snapshot: current, effects, changed: true };
    } catch (e) {
      if (!(e instanceof VersionConflictError) || i >= MAX_CONFLICT_RETRIES) throw e;
      await conflictBackoff(i);
    }
  }
}

/** Who ran a task attempt and when it started, for the history. */
export interface TaskMeta {
  readonly worker?: string;
  readonly startedAt?: number;
}

/**
 * Commits a task's output (once: the first commit wins) and applies the
 * completion. When an earlier attempt already committed, the stored output
 * is the one that counts, and the control data is read from it.
 */
export async function completeTask(
  store: InstanceStore,
  flow: AnyFlow,
  dispatch: Dispatch,
  value: unknown,
  now: () => number,
  onCommitted?: () => void | Promise<void>,
  known?: Snapshot,
  meta: TaskMeta = {},
): Promise<Reduction & { readonly committed: 'created' | 'exists' }> {
  const id = outputId(dispatch.key);
  const committed = await store.putValue(dispatch.instanceId, id, value);
  await onCommitted?.();
  const stored = committed === 'created' ? value : (await store.getValues(dispatch.instanceId, [id])).get(id);
  let control: ReturnType<typeof controlOf>;
  try {
    control = controlOf(flow, dispatch.qid, stored);
  } catch (e) {
    const r = await applyEvent(
      store,
      flow,
      dispatch.instanceId,
      { type: 'task-failed', key: dispatch.key, attempt: dispatch.attempt, error: serializeError(e), ...meta },
      now,
      known,
    );
    return { ...r, committed };
  }
  const r = await applyEvent(
    store,
    flow,
    dispatch.instanceId,
    { type: 'task-completed', key: dispatch.key, attempt: dispatch.attempt, control, ...meta },
    now,
    known,
  );
  return { ...r, committed };
}

/** Stores a signal's payload, then delivers it (buffered if nothing waits for it yet). */
export async function deliverSignal(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  name: string,
  payload: unknown,
  deliveryId: string,
  now: () => number,
): Promise<Reduction> {
  const valueId = signalId(deliveryId);
  await store.putValue(instanceId, valueId, payload);
  return applyEvent(store, flow, instanceId, { type: 'signal', name, valueId }, now);
}

function randomNonce(): string {
  return globalThis.crypto.randomUUID();
}

/** The task's output is already committed: there is nothing left to skip. */
export class TaskAlreadyCompletedError extends Error {
  override readonly name = 'TaskAlreadyCompletedError';
  constructor(
    readonly instanceId: string,
    readonly taskKey: string,
  ) {
    super(`task '${taskKey}' of '${instanceId}' already has a committed output`);
  }
}

/** The task is not in a state the operation applies to. */
export class TaskStateError extends Error {
  override readonly name = 'TaskStateError';
  constructor(
    readonly instanceId: string,
    readonly taskKey: string,
    message: string,
  ) {
    super(`task '${taskKey}' of '${instanceId}': ${message}`);
  }
}

/**
 * Skips a task with an operator-supplied output: stores it as the task's
 * output (on condition that none is committed) and applies `skip`.
 *
 * @throws {TaskStateError} the task is not in the frontier (or the run is over).
 * @throws {TaskAlreadyCompletedError} an output was committed first.
 */
export async function skipTask(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  taskKey: string,
  output: unknown,
  now: () => number,
): Promise<Reduction> {
  const snapshot = await store.get(instanceId);
  if (!snapshot) throw new InstanceNotFoundError(instanceId);
  assertSameDefinition(flow, snapshot);
  const t = snapshot.tasks[taskKey];
  if (!t || snapshot.status === 'COMPLETED' || snapshot.status === 'CANCELLED') {
    throw new TaskStateError(instanceId, taskKey, 'is not pending in this run');
  }
  if (snapshot.status === 'FAILED' && t.state !== 'failed') {
    throw new TaskStateError(instanceId, taskKey, 'the run failed on another task; retry or skip that one');
  }
  const control = controlOf(flow, t.qid, output);
  if ((await store.putValue(instanceId, outputId(taskKey), output)) === 'exists') {
    throw new TaskAlreadyCompletedError(instanceId, taskKey);
  }
  const r = await applyEvent(store, flow, instanceId, { type: 'skip', key: taskKey, control }, now, snapshot);
  if (!r.changed) throw new TaskStateError(instanceId, taskKey, 'could not be skipped');
  return r;
}

/**
 * Retries a task the run failed on, with a fresh attempt budget.
 *
 * @throws {TaskStateError} the run did not fail on this task.
 */
export async function retryTask(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  taskKey: string,
  now: () => number,
): Promise<Reduction> {
  const r = await applyEvent(store, flow, instanceId, { type: 'retry', key: taskKey }, now);
  if (!r.changed) throw new TaskStateError(instanceId, taskKey, 'the run did not fail on this task');
  return r;
}
