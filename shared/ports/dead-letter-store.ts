import type { Dispatch } from '../engine/snapshot.ts';

/**
 * Dead letters: the inspectable record of every task the engine gave up on,
 * kept in the store. The SQS DLQ of a pool is only where SQS itself moves a
 * message it gave up on; the reaper drains it into this store (see
 * `DeadLetterQueue`), so every dead letter ends up here, and an operator
 * reads and redrives from here only.
 *
 * **Who writes a record, and when** (every write is a put of a new record,
 * never an update):
 * - a worker, origin `engine`, when a task's failure fails its run (its
 *   retries ran out, or a terminal error). It puts the record *before* it
 *   commits the failure: a crash between the two leaves a record whose run
 *   did not fail (it reads as resolved), never a failed run without its
 *   record;
 * - the reaper, origin `redrive` (a dispatch SQS moved after
 *   `maxReceiveCount` receives: its workers kept dying) or `malformed` (a
 *   message that is no dispatch), when it drains a pool's SQS DLQ. It deletes
 *   the message after the put: a crash between them only puts the same
 *   record again, which changes nothing.
 *
 * **Identity.** A record is one per instance, task key, attempt and origin
 * (per pool and SQS message id for a malformed one): see
 * {@link deadLetterId}. The same attempt put twice keeps one record; a
 * task's second dead letter (a later attempt, after a manual retry) is a
 * second record.
 *
 * **Who removes one.** Only a redrive (`POST /v1/dlq/{pool}/redrive`): after
 * it redrove the letter, or when it meets a letter that is resolved. A manual
 * retry or skip of the task, or the end of its run, removes nothing: the
 * letter then reads as resolved, a state computed from the run when it is
 * read (see `letterState` in `runtime/dead-letters.ts`), so no crash between
 * two writes can leave a letter that claims its run still waits on it.
 *
 * **Reading never changes anything**: `list` and `ofInstance` are reads.
 *
 * Every adapter keeps the same identity, order and cursor rules through the
 * helpers of this module and `adapters/cursor.ts`; the contract suite in
 * `test/support/dead-letter-store-contract.ts` holds each adapter to them.
 *
 * @example
 * ```ts
 * await letters.put({ origin: 'engine', dispatch, at: now, reason: 'Error: declined', attempts: 5 });
 * const page = await letters.list('default', { limit: 25 });
 * const next = page.cursor ? await letters.list('default', { limit: 25, cursor: page.cursor }) : undefined;
 * ```
 */
export interface DeadLetterStore {
  /**
   * Puts a record unless one with its {@link deadLetterId} exists.
   *
   * @returns `created`, or `exists` when the record was there already (it is
   *   left as it was).
   * @throws {PayloadTooLargeError} the record does not fit the store. Nothing was written.
   */
  put(letter: DeadLetter): Promise<'created' | 'exists'>;
  /**
   * A page of a pool's records, newest first (by `at`, then by id). On a
   * store whose listing index is eventually consistent (DynamoDB's GSI), a
   * record put a moment ago may show a moment later; {@link ofInstance} is
   * consistent.
   *
   * @throws {InvalidCursorError} a cursor this store did not hand out for this pool. Nothing was read.
   */
  list(pool: string, options?: DeadLetterListOptions): Promise<DeadLetterPage>;
  /** The task records of one instance, in every pool, read consistently; at most `limit` (@default 100), in no particular order. */
  ofInstance(instanceId: string, options?: { readonly limit?: number }): Promise<TaskDeadLetter[]>;
  /**
   * Removes a record, on condition that it exists.
   *
   * @returns whether this call removed it (`false`: it was gone already).
   */
  delete(letter: DeadLetter): Promise<boolean>;
}

export interface DeadLetterListOptions {
  /** 1 to 100. @default 50 */
  readonly limit?: number;
  /** Opaque cursor from a previous page of the same pool. */
  readonly cursor?: string;
}

export interface DeadLetterPage {
  readonly letters: readonly DeadLetter[];
  /** Present when older records may follow. */
  readonly cursor?: string;
}

interface DeadLetterBase {
  /** When the record was made (epoch ms): the listing's order. */
  readonly at: number;
  /** Why it was given up on: the last error, or why the queue moved the message. */
  readonly reason: string;
}

/** A task given up on. */
export interface TaskDeadLetter extends DeadLetterBase {
  /**
   * `engine`: its failure failed the run (retries ran out, or a terminal
   * error); `redrive`: SQS moved its dispatch to the DLQ after
   * `maxReceiveCount` receives (its workers kept dying).
   */
  readonly origin: 'engine' | 'redrive';
  /** The dispatch of the attempt given up on. */
  readonly dispatch: Dispatch;
  /** Attempts made before giving up. */
  readonly attempts: number;
  /** The last error, when there was one. */
  readonly error?: { readonly name: string; readonly message: string };
  /**
   * The task's failed attempts, oldest first, as its run's history had them
   * when the record was made (an `engine` record's includes the failure
   * given up on, committed just after it; at most the latest
   * `MAX_RECORDED_ATTEMPTS`). Kept with the record so that a listing
   * need not read each run's history. Absent on records made before it was
   * kept: a view then reads the history.
   */
  readonly attemptHistory?: readonly FailedAttempt[];
}

/** One failed attempt of a task, as a dead-letter record keeps it. */
export interface FailedAttempt {
  readonly attempt?: number;
  /** When it failed (epoch ms). */
  readonly at: number;
  /** The worker that ran it. */
  readonly worker?: string;
  readonly error?: { readonly name: string; readonly message: string };
}

/** Most failed attempts a record keeps (the latest): a record stays far under any store's item size. */
export const MAX_RECORDED_ATTEMPTS = 20;

/** A message found in a pool's DLQ that is no dispatch at all. */
export interface MalformedDeadLetter extends DeadLetterBase {
  readonly origin: 'malformed';
  readonly pool: string;
  /** The SQS message id (stable across receives of the message). */
  readonly messageId: string;
  /** The message body, cut to a bounded length. */
  readonly body: string;
}

export type DeadLetter = TaskDeadLetter | MalformedDeadLetter;

/** The pool a record belongs to. */
export function poolOf(letter: DeadLetter): string {
  return letter.origin === 'malformed' ? letter.pool : letter.dispatch.pool;
}

/**
 * A record's identity, as an opaque base64url string: instance, task key,
 * attempt and origin for a task's record; pool and message id for a
 * malformed one. Stores key records by it, so a put of the same attempt is
 * a no-op.
 *
 * @example
 * ```ts
 * deadLetterId({ origin: 'engine', dispatch, at, reason, attempts }) === deadLetterId({ ...sameAttempt, at: later }); // true
 * ```
 */
export function deadLetterId(letter: DeadLetter): string {
  const parts =
    letter.origin === 'malformed'
      ? ['m', letter.pool, letter.messageId]
      : [
          letter.origin === 'engine' ? 'e' : 'r',
          letter.dispatch.instanceId,
          letter.dispatch.key,
          letter.dispatch.attempt,
        ];
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

/**
 * A record's place in its pool's listing: its time (15 digits, so text order
 * is time order), then its id. Listings go from the greatest down.
 */
export function deadLetterSortKey(letter: DeadLetter): string {
  return `${String(Math.max(0, Math.trunc(letter.at))).padStart(15, '0')}#${deadLetterId(letter)}`;
}

/** Whether a string can be a {@link deadLetterSortKey} (checked on every cursor before a query). */
export const isDeadLetterSortKey = (value: string): boolean => /^\d{15}#[A-Za-z0-9_-]+$/.test(value);
