import type { Dispatch } from '../engine/snapshot.ts';

/** What every message received from a pool's DLQ has. */
export interface DeadLetterMessage {
  /** Stable across receives of the same message. */
  readonly messageId: string;
  /** Needed to delete the message; valid while it is held. */
  readonly receiptHandle: string;
  /** How many times it was received. */
  readonly receiveCount: number;
}

/** A message received from a pool's DLQ: a dispatch SQS moved there, or something that is no dispatch. */
export type ReceivedDeadLetter = DeadLetterMessage &
  (
    | { readonly kind: 'dispatch'; readonly dispatch: Dispatch }
    | { readonly kind: 'malformed'; readonly body: string; readonly error: Error }
  );

/**
 * A pool's SQS dead-letter queue, as the reaper drains it. Only SQS puts
 * messages there (its redrive policy, after `maxReceiveCount` receives); the
 * engine sends nothing to it and nobody reads it to inspect: the reaper
 * receives each message, puts its record in the `DeadLetterStore`, then
 * deletes it. A message received and not deleted (the reaper died between
 * the two) comes back when its hold ends, and is put again (a no-op).
 *
 * @example
 * ```ts
 * const held = await dlq.receive('default', { maxMessages: 10, holdSeconds: 30 });
 * for (const m of held) await letters.put(recordOf(m));
 * await dlq.delete('default', held);
 * ```
 */
export interface DeadLetterQueue {
  /** Receives up to `maxMessages` (1 to 10) messages, hiding them from other readers for `holdSeconds`. */
  receive(
    pool: string,
    options?: { readonly maxMessages?: number; readonly holdSeconds?: number },
  ): Promise<ReceivedDeadLetter[]>;
  /** Removes received messages for good. */
  delete(pool: string, messages: readonly ReceivedDeadLetter[]): Promise<void>;
}
