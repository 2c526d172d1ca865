import type { Dispatch, Effect } from '../engine/snapshot.ts';
import type { TaskQueue } from '../ports/task-queue.ts';

/** The dispatches among effects. */
export function dispatchesOf(effects: readonly Effect[]): Dispatch[] {
  return effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
}

/**
 * Carries out the effects that leave the process: sends dispatches to the
 * queue. Timers need no action (the snapshot's `dueAt` is the timer; the
 * reaper fires it); completion and failure are already in the snapshot.
 */
export async function sendDispatches(queue: TaskQueue, effects: readonly Effect[]): Promise<number> {
  const dispatches = dispatchesOf(effects);
  if (dispatches.length > 0) await queue.send(dispatches);
  return dispatches.length;
}
