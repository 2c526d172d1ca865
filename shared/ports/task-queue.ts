import type { Dispatch } from '../engine/snapshot.ts';
import type { Priority } from '../engine/task.ts';

/**
 * Where dispatched tasks go. A message is a wake-up hint, not the truth:
 * losing one delays the task until the reaper re-dispatches it, and a
 * duplicate is absorbed by the claim and the conditional output commit.
 */
export interface TaskQueue {
  /**
   * Sends dispatches (batched by the adapter). Resolves once every one is
   * accepted by the queue.
   *
   * @throws an error naming the dispatches that were not accepted; the
   *   caller may resend them all (the queue deduplicates).
   */
  send(dispatches: readonly Dispatch[]): Promise<void>;

  /**
   * About how many messages wait in the queue of a pool and priority, not
   * yet received (approximate, eventually consistent). The reaper asks
   * before it re-dispatches a dispatch that no worker took: while messages
   * wait, it may merely be queued behind them, not lost.
   */
  waiting(pool: string, priority: Priority): Promise<number>;
}
