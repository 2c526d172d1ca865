import type Database from 'better-sqlite3';
import {
  type DeadLetter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterStore,
  deadLetterId,
  deadLetterSortKey,
  poolOf,
  type TaskDeadLetter,
} from '../../ports/dead-letter-store.ts';
import { PayloadTooLargeError } from '../../ports/errors.ts';
import { decodeDeadLetterCursor, encodeDeadLetterCursor } from '../cursor.ts';
import { SQLITE_MAX_ROW_BYTES } from './instance-store.ts';

/**
 * Dead-letter records on SQLite (table `dead_letters`), kept across
 * restarts, with the identity, order and cursors every store shares (the
 * helpers of `ports/dead-letter-store.ts` and `adapters/cursor.ts`). A put
 * is one `INSERT … ON CONFLICT DO NOTHING` keyed by the record's id, so the
 * same attempt put twice keeps one record; reads change nothing.
 *
 * @example
 * ```ts
 * const letters = new SqliteDeadLetterStore({ db: database.db });
 * await letters.put({ origin: 'engine', dispatch, at: Date.now(), reason: 'Error: declined', attempts: 3 });
 * ```
 */
export class SqliteDeadLetterStore implements DeadLetterStore {
  private readonly sql;

  constructor(options: { readonly db: Database.Database }) {
    const db = options.db;
    this.sql = {
      insert: db.prepare(
        `INSERT INTO dead_letters (id, pool, sort_key, instance_id, body) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING`,
      ),
      page: db
        .prepare(
          `SELECT sort_key, body FROM dead_letters WHERE pool = ? AND (? IS NULL OR sort_key < ?)
           ORDER BY sort_key DESC LIMIT ?`,
        )
        .raw(),
      ofInstance: db.prepare('SELECT body FROM dead_letters WHERE instance_id = ? LIMIT ?').pluck(),
      delete: db.prepare('DELETE FROM dead_letters WHERE id = ?'),
    };
  }

  async put(letter: DeadLetter): Promise<'created' | 'exists'> {
    const body = JSON.stringify(letter);
    if (Buffer.byteLength(body, 'utf8') > SQLITE_MAX_ROW_BYTES) {
      throw new PayloadTooLargeError('dead letter', Buffer.byteLength(body, 'utf8'), SQLITE_MAX_ROW_BYTES);
    }
    const instanceId = letter.origin === 'malformed' ? null : letter.dispatch.instanceId;
    const r = this.sql.insert.run(deadLetterId(letter), poolOf(letter), deadLetterSortKey(letter), instanceId, body);
    return r.changes > 0 ? 'created' : 'exists';
  }

  async list(pool: string, options: DeadLetterListOptions = {}): Promise<DeadLetterPage> {
    // The cursor is decoded first, so a bad one is refused whatever the limit.
    const before = options.cursor === undefined ? null : decodeDeadLetterCursor(pool, options.cursor);
    const limit = options.limit ?? 50;
    if (limit < 1) return { letters: [] };
    const rows = this.sql.page.all(pool, before, before, limit + 1) as [string, string][];
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      letters: page.map(([, body]) => JSON.parse(body) as DeadLetter),
      ...(rows.length > limit && last ? { cursor: encodeDeadLetterCursor(pool, last[0]) } : {}),
    };
  }

  async ofInstance(instanceId: string, options: { readonly limit?: number } = {}): Promise<TaskDeadLetter[]> {
    const bodies = this.sql.ofInstance.all(instanceId, options.limit ?? 100) as string[];
    return bodies.map((b) => JSON.parse(b) as TaskDeadLetter);
  }

  async delete(letter: DeadLetter): Promise<boolean> {
    return this.sql.delete.run(deadLetterId(letter)).changes > 0;
  }
}
