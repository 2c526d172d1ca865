import { WORKER_LOST } from './errors.ts';
import type { Effect, RunEvent, Snapshot } from './snapshot.ts';

/**
 * One event of an instance's execution history. The history is append-only:
 * each entry is written with the journal entry that commits its event, and
 * never changed.
 */
export interface HistoryEntry {
  /** When it happened (epoch ms). */
  readonly at: number;
  readonly type:
    | 'run-started'
    | 'task-completed'
    | 'task-failed'
    | 'task-redispatched'
    | 'timer-fired'
    | 'signal-received'
    | 'signal-consumed'
    | 'cancelled'
    | 'paused'
    | 'resumed'
    | 'task-retried'
    | 'task-skipped'
    | 'run-completed'
    | 'run-failed';
  readonly key?: string;
  readonly attempt?: number;
  /** The worker that ran the task. */
  readonly worker?: string;
  /** When the task's attempt started (epoch ms). */
  readonly startedAt?: number;
  readonly error?: { readonly name: string; readonly message: string };
  /** When a failed task's next attempt is due, if it will be retried. */
  readonly retryAt?: number;
  /** A signal's name, a cancel reason. */
  readonly detail?: string;
  /** The name of the API key that made this change (control calls, starts, signals); never the key. */
  readonly actor?: string;
  /** The snapshot version this entry was checkpointed with. */
  readonly version: number;
}

/**
 * The history entries of one applied event. Pure. Housekeeping events (a
 * held task, a checked dispatch) leave no entry.
 */
export function historyOf(event: RunEvent, after: Snapshot, effects: readonly Effect[], at: number): HistoryEntry[] {
  const version = after.version;
  const entries: HistoryEntry[] = [];
  const push = (e: Omit<HistoryEntry, 'at' | 'version'>) => entries.push({ at, version, ...e });
  switch (event.type) {
    case 'start':
      push({ type: 'run-started' });
      break;
    case 'task-completed':
      push({
        type: 'task-completed',
        key: event.key,
        attempt: event.attempt,
        ...(event.worker ? { worker: event.worker } : {}),
        ...(event.startedAt === undefined ? {} : { startedAt: event.startedAt }),
      });
      break;
    case 'task-failed': {
      const next = after.tasks[event.key];
      push({
        type: 'task-failed',
        key: event.key,
        attempt: event.attempt,
        error: { name: event.error.name, message: event.error.message },
        ...(event.worker ? { worker: event.worker } : {}),
        ...(event.startedAt === undefined ? {} : { startedAt: event.startedAt }),
        ...(next?.state === 'backoff' && next.dueAt !== undefined ? { retryAt: next.dueAt } : {}),
      });
      break;
    }
    case 'timer-fired':
      push({ type: 'timer-fired', key: event.key });
      break;
    case 'redispatch': {
      const next = after.tasks[event.key];
      // A lost lease fails the attempt; so does a reservation that lapsed once too often (the task is no longer dispatched).
      const lost =
        event.reason === 'lease-expired'
          ? WORKER_LOST.lease
          : event.reason === 'reservation-expired' && next?.state !== 'dispatched'
            ? WORKER_LOST.reservations
            : undefined;
      if (!lost) {
        push({ type: 'task-redispatched', key: event.key, ...(event.reason ? { detail: event.reason } : {}) });
        break;
      }
      push({
        type: 'task-failed',
        key: event.key,
        ...(next ? { attempt: next.state === 'backoff' ? next.attempt - 1 : next.attempt } : {}),
        error: { name: lost.name, message: lost.message },
        ...(next?.state === 'backoff' && next.dueAt !== undefined ? { retryAt: next.dueAt } : {}),
      });
      break;
    }
    case 'signal': {
      // Given at once to a wait in a child's lane, or to one of the frontier, or buffered.
      const given = event.toLane && Object.hasOwn(after.laneSignals?.given ?? {}, event.toLane.wait);
      push({ type: 'signal-received', detail: event.name, ...(given ? { key: event.toLane?.wait } : {}) });
      break;
    }
    case 'signal-taken':
      // A wait in a child's lane took a signal that waited in the buffer.
      if (event.wait !== undefined) push({ type: 'signal-consumed', key: event.wait, detail: event.name });
      break;
    case 'signal-timed-out':
      push({ type: 'timer-fired', key: event.key, detail: `no signal '${event.name}' within the timeout` });
      break;
    case 'cancel':
      push({ type: 'cancelled', ...(event.reason ? { detail: event.reason } : {}) });
      break;
    case 'pause':
      push({ type: 'paused' });
      break;
    case 'resume':
      push({ type: 'resumed' });
      break;
    case 'retry':
      push({ type: 'task-retried', key: event.key });
      break;
    case 'skip':
      push({ type: 'task-skipped', key: event.key });
      break;
    default:
      break;
  }
  for (const e of effects) {
    if (e.type === 'complete') push({ type: 'run-completed' });
    if (e.type === 'fail') {
      push({
        type: 'run-failed',
        error: { name: e.error.name, message: e.error.message },
        ...(e.error.taskKey ? { key: e.error.taskKey } : {}),
      });
    }
  }
  return entries;
}
