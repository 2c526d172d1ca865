import type { Dispatch } from '../engine/snapshot.ts';

/** Why a task was given up on. */
export interface DeadLetterRecord {
  readonly dispatch: Dispatch;
  /** Human-readable reason (the last error, or why the queue moved the message). */
  readonly reason: string;
  /** Attempts of the task made before giving up. */
  readonly attempts: number;
  /** When it was given up on (epoch ms); unknown for a message the queue moved. */
  readonly failedAt?: number;
  /** The last error, when there was one. */
  readonly error?: { readonly name: string; readonly message: string };
}

/** What every entry read from a dead-letter queue has. */
export interface DeadLetterMessage {
  readonly messageId: string;
  /** Needed to delete or release the entry; valid while it is held. */
  readonly receiptHandle: string;
  /** How many times it was received. */
  readonly receiveCount: number;
  /** When it was first sent (epoch ms). */
  readonly sentAt: number;
}

/** An entry read back from a dead-letter queue. */
export type ReceivedDeadLetter = DeadLetterMessage &
  (
    | {
        /** `engine`: sent by a worker when retries ran out; `redrive`: a dispatch the queue moved after too many receives (its worker kept dying). */
        readonly origin: 'engine' | 'redrive';
        readonly record: DeadLetterRecord;
      }
    | {
        /** A message that is no dispatch at all. */
        readonly origin: 'malformed';
        readonly body: string;
        readonly error: Error;
      }
  );

/**
 * A pool's dead-letter queue. Reading an entry holds it (hidden from other
 * readers) until it is released, deleted, or the hold ends: two operators
 * redriving at once never take the same entry.
 */
export interface DeadLetterQueue {
  /** Sends a record to the DLQ of the dispatch's pool. The same attempt sent twice keeps one record. */
  send(record: DeadLetterRecord): Promise<void>;
  /** Reads up to `limit` entries, holding them for `holdSeconds`. */
  list(pool: string, options?: { limit?: number; holdSeconds?: number }): Promise<ReceivedDeadLetter[]>;
  /** Removes entries for good (after a redrive). */
  delete(pool: string, letters: readonly ReceivedDeadLetter[]): Promise<void>;
  /** Ends the hold on entries: others can read them again at once. */
  release(pool: string, letters: readonly ReceivedDeadLetter[]): Promise<void>;
}
