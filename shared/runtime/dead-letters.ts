import type { AnyFlow } from '../engine/definition.ts';
import { truncateText } from '../engine/errors.ts';
import { isCurrentDispatch, pendingEffects, reduce } from '../engine/reducer.ts';
import type { Dispatch, RunError, RunEvent, Snapshot } from '../engine/snapshot.ts';
import type { Clock } from '../ports/clock.ts';
import {
  type DeadLetter,
  type DeadLetterStore,
  type FailedAttempt,
  MAX_RECORDED_ATTEMPTS,
  type TaskDeadLetter,
} from '../ports/dead-letter-store.ts';
import type { DeadLetterQueue, ReceivedDeadLetter } from '../ports/dead-letters.ts';
import type { InstanceStore } from '../ports/instance-store.ts';

/**
 * The engine's side of dead letters (see `ports/dead-letter-store.ts` for
 * who writes and removes a record): the record a worker puts when a failure
 * fails its run, the reaper's drain of the SQS DLQs into the store, and the
 * state of a record, computed from its run when read.
 */

/** Longest body of a malformed DLQ message kept in its record. */
export const MAX_DEAD_LETTER_BODY_CHARS = 2_000;

/**
 * The record of a task whose failure failed its run.
 *
 * @example
 * ```ts
 * await letters.put(engineDeadLetter(dispatch, fail.error, clock.now()));
 * ```
 */
export function engineDeadLetter(
  dispatch: Dispatch,
  error: RunError,
  at: number,
  attemptHistory?: readonly FailedAttempt[],
): TaskDeadLetter {
  return {
    origin: 'engine',
    dispatch,
    at,
    reason: truncateText(`${error.name}: ${error.message}`),
    attempts: error.attempts ?? dispatch.attempt,
    error: { name: truncateText(error.name, 200), message: truncateText(error.message) },
    ...(attemptHistory ? { attemptHistory } : {}),
  };
}

/**
 * Puts the record of a task whose failure fails its run: its attempt
 * history read from the run's history, with the failing attempt (not
 * committed yet) last. The one way the workers and the reaper record one.
 */
export async function putEngineDeadLetter(
  store: Pick<DeadLetterStore, 'put'>,
  instances: Pick<InstanceStore, 'readHistory' | 'listTimers'>,
  dispatch: Dispatch,
  error: RunError,
  failing: { readonly at: number; readonly worker?: string },
): Promise<void> {
  const current: FailedAttempt = {
    attempt: dispatch.attempt,
    ...failing,
    error: { name: error.name, message: error.message },
  };
  const attempts = await failedAttemptsOf(instances, dispatch.instanceId, dispatch.key, current);
  await store.put(engineDeadLetter(dispatch, error, failing.at, attempts));
}

/** A failed attempt as a record keeps it: long texts cut. */
function failedAttempt(a: FailedAttempt): FailedAttempt {
  return {
    ...(a.attempt === undefined ? {} : { attempt: a.attempt }),
    at: a.at,
    ...(a.worker === undefined ? {} : { worker: truncateText(a.worker, 200) }),
    ...(a.error ? { error: { name: truncateText(a.error.name, 200), message: truncateText(a.error.message) } } : {}),
  };
}

/**
 * A task's failed attempts, oldest first, from its run's history and the
 * retries of its lane timers (a task of a map item or fork branch retried
 * in its lane; two reads, when the record is made), then `current`: a
 * failure about to be committed with the record's put (see
 * `putDeadLettersOf`), not in the history yet. At most the latest
 * {@link MAX_RECORDED_ATTEMPTS}.
 */
export async function failedAttemptsOf(
  store: Pick<InstanceStore, 'readHistory' | 'listTimers'>,
  instanceId: string,
  taskKey: string,
  current?: FailedAttempt,
): Promise<FailedAttempt[]> {
  const [history, timers] = await Promise.all([
    store.readHistory(instanceId, { limit: 1_000 }),
    store.listTimers(instanceId, `${taskKey}#`),
  ]);
  const journalled: FailedAttempt[] = history.entries
    .filter((e) => e.key === taskKey && e.type === 'task-failed')
    .map((e) => ({
      ...(e.attempt === undefined ? {} : { attempt: e.attempt }),
      at: e.at,
      ...(e.worker === undefined ? {} : { worker: e.worker }),
      ...(e.error ? { error: e.error } : {}),
    }));
  // A lapse (see `LaneRetry.lapse`) failed no attempt.
  const inLane: FailedAttempt[] = timers.flatMap((t) =>
    t.retry?.task === taskKey && !t.retry.lapse
      ? [
          {
            attempt: t.retry.attempt - 1,
            at: t.retry.failedAt,
            ...(t.retry.worker === undefined ? {} : { worker: t.retry.worker }),
            error: t.retry.error,
          },
        ]
      : [],
  );
  const failed = [...journalled, ...inLane].sort((a, b) => a.at - b.at).map(failedAttempt);
  if (current) failed.push(failedAttempt(current));
  return failed.slice(-MAX_RECORDED_ATTEMPTS);
}

/**
 * Puts the record of each dispatched task whose failure, among `events`,
 * will fail the run (a dry run of the reducer from `before`), before the
 * caller commits the events: the reaper's commit of an attempt whose worker
 * died (`WorkerLostError`) when it was the last one. The same rule as the
 * worker's: a crash after the put leaves a resolved record, never a failed
 * run without one. `lanes`: the dispatches of steps of children in lanes
 * among the failures (they are not in the frontier `before`).
 */
export async function putDeadLettersOf(
  store: DeadLetterStore,
  instances: Pick<InstanceStore, 'readHistory' | 'listTimers'>,
  flow: AnyFlow,
  before: Snapshot,
  events: readonly RunEvent[],
  now: number,
  lanes: readonly Dispatch[] = [],
): Promise<void> {
  const dispatched = new Map<string, Dispatch>(lanes.map((d) => [d.key, d]));
  for (const e of pendingEffects(flow, before)) if (e.type === 'dispatch') dispatched.set(e.dispatch.key, e.dispatch);
  let s = before;
  for (const event of events) {
    const r = reduce(flow, s, event, now);
    s = r.snapshot;
    for (const effect of r.effects) {
      const d = effect.type === 'fail' && effect.error.taskKey ? dispatched.get(effect.error.taskKey) : undefined;
      if (d && effect.type === 'fail') {
        await putEngineDeadLetter(store, instances, d, effect.error, { at: now });
      }
    }
  }
}

/** The record of a message drained from a pool's DLQ. */
export function drainedDeadLetter(pool: string, message: ReceivedDeadLetter, at: number): DeadLetter {
  if (message.kind === 'malformed') {
    return {
      origin: 'malformed',
      pool,
      messageId: message.messageId,
      at,
      body: truncateText(message.body, MAX_DEAD_LETTER_BODY_CHARS),
      reason: truncateText(`not a dispatch: ${message.error.message}`),
    };
  }
  return movedDeadLetter(message.dispatch, at);
}

/**
 * The record of a dispatch the queue gave up on after `maxReceiveCount`
 * receives (its workers kept failing or dying): SQS's redrive to a DLQ, or
 * the embedded queue's move, which puts it in the store at once.
 */
export function movedDeadLetter(dispatch: Dispatch, at: number): DeadLetter {
  return {
    origin: 'redrive',
    dispatch,
    at,
    reason: 'the queue gave up on the dispatch after maxReceiveCount receives (its workers kept failing or dying)',
    attempts: dispatch.attempt,
  };
}

/** What the drain uses. */
export interface DrainDeps {
  readonly queue: DeadLetterQueue;
  readonly store: DeadLetterStore;
  readonly clock: Clock;
  /** Where a record's attempt history is read from when it is made. @default none: a view reads it later */
  readonly instances?: Pick<InstanceStore, 'readHistory' | 'listTimers'>;
  /**
   * Fault injection: called once a message's record is put, before the
   * message is deleted. Throwing there is a reaper dying between the two.
   */
  readonly faults?: (phase: 'recorded', message: ReceivedDeadLetter) => void;
}

export interface DrainOptions {
  /** Messages at most, per call. @default 100 */
  readonly max?: number;
  /** How long a received message stays hidden if the drain dies before deleting it (s). @default 30 */
  readonly holdSeconds?: number;
}

/**
 * Moves a pool's SQS DLQ into the dead-letter store: receive, put each
 * record (a no-op when it is there already), then delete the messages whose
 * record is put. A drain that dies after a put and before the delete leaves
 * the message to come back when its hold ends, and the next drain puts the
 * same record again, which changes nothing; a message whose put failed is
 * not deleted.
 *
 * @returns how many messages left the queue.
 */
export async function drainDeadLetters(deps: DrainDeps, pool: string, options: DrainOptions = {}): Promise<number> {
  const max = options.max ?? 100;
  let drained = 0;
  while (drained < max) {
    const held = await deps.queue.receive(pool, {
      maxMessages: Math.min(10, max - drained),
      holdSeconds: options.holdSeconds ?? 30,
    });
    if (held.length === 0) break;
    const recorded: ReceivedDeadLetter[] = [];
    for (const message of held) {
      await deps.store.put(await withAttempts(drainedDeadLetter(pool, message, deps.clock.now()), deps.instances));
      deps.faults?.('recorded', message);
      recorded.push(message);
    }
    await deps.queue.delete(pool, recorded);
    drained += recorded.length;
  }
  return drained;
}

/**
 * Where a record stands, from its run as it is now:
 * - `open`: the run still waits on it. An `engine` record: the run is
 *   FAILED on that task at that attempt. A `redrive` record: that attempt of
 *   the task is still the dispatched one of a RUNNING run. A `malformed` one:
 *   always (nothing can resolve it).
 * - `resolved`: the run moved on (the task was retried or skipped, the run
 *   ended otherwise, or the instance is gone), with the reason.
 *
 * Pure: computed at each read, never stored, so it cannot go stale.
 */
export type LetterState = { readonly state: 'open' } | { readonly state: 'resolved'; readonly why: string };

/**
 * The {@link LetterState} of a record, given its run's current snapshot
 * (`undefined`: no such instance).
 *
 * @example
 * ```ts
 * letterState(letter, await readRun(store, registry, letter.dispatch.instanceId)); // { state: 'open' }
 * ```
 */
export function letterState(letter: DeadLetter, snapshot: Snapshot | undefined): LetterState {
  if (letter.origin === 'malformed') return { state: 'open' };
  if (!snapshot) return { state: 'resolved', why: 'the instance is gone' };
  const { key, attempt } = letter.dispatch;
  const t = Object.hasOwn(snapshot.tasks, key) ? snapshot.tasks[key] : undefined;
  const open =
    letter.origin === 'engine'
      ? snapshot.status === 'FAILED' && t?.state === 'failed' && t.attempt === attempt
      : isCurrentDispatch(snapshot, key, attempt);
  if (open) return { state: 'open' };
  if (t && t.attempt > attempt) return { state: 'resolved', why: 'the task has had a later attempt since' };
  if (snapshot.status === 'COMPLETED' || snapshot.status === 'CANCELLED') {
    return { state: 'resolved', why: `the run is ${snapshot.status}` };
  }
  return {
    state: 'resolved',
    why:
      letter.origin === 'engine'
        ? 'the run no longer fails on this attempt (the task was skipped, or the failure was never committed)'
        : 'this attempt is no longer the dispatched one',
  };
}

/**
 * Where the embedded queue moves a dispatch after too many receives: a
 * `redrive` record put straight into the dead-letter store (there is no DLQ
 * to drain in between). The put is not awaited by the queue; should it fail,
 * the task is only as lost as a lost message: the reaper re-dispatches it.
 *
 * @example
 * ```ts
 * const queue = new InProcessTaskQueue({ deadLetters: storeRedriveTarget(letters, () => Date.now()) });
 * ```
 */
export function storeRedriveTarget(
  store: DeadLetterStore,
  now: () => number,
  instances?: Pick<InstanceStore, 'readHistory' | 'listTimers'>,
) {
  return {
    moved(dispatch: Dispatch): void {
      withAttempts(movedDeadLetter(dispatch, now()), instances)
        .then((letter) => store.put(letter))
        .catch(() => undefined);
    },
  };
}

/** A task's record with its attempt history read from its run (see {@link failedAttemptsOf}); others as they are. */
async function withAttempts(
  letter: DeadLetter,
  instances: Pick<InstanceStore, 'readHistory' | 'listTimers'> | undefined,
): Promise<DeadLetter> {
  if (!instances || letter.origin === 'malformed') return letter;
  const attemptHistory = await failedAttemptsOf(instances, letter.dispatch.instanceId, letter.dispatch.key);
  return { ...letter, attemptHistory };
}
