import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Dispatch } from '../../engine/snapshot.ts';
import type { DeadLetterQueue, DeadLetterRecord, ReceivedDeadLetter } from '../../ports/dead-letters.ts';
import { encodeDeadLetter, parseDeadLetter } from '../sqs/dead-letters.ts';
import { encodeDispatch, fifoId } from '../sqs/message.ts';

interface Row {
  id: number;
  body: string;
  receive_count: number;
  sent_at: number;
}

/**
 * The dead-letter queues of every pool on SQLite, kept across restarts (a
 * record is the operator's only trace of a task given up on). Bodies are the
 * SQS adapter's (`encodeDeadLetter`, `parseDeadLetter`), and the semantics
 * too: reading holds an entry for `holdSeconds`, the same attempt sent twice
 * keeps one record, and a dispatch the in-process queue moved after too many
 * receives comes back as `origin: 'redrive'`.
 *
 * @example
 * ```ts
 * const dlq = new SqliteDeadLetters({ db });
 * await dlq.send({ dispatch, reason: 'retries exhausted', attempts: 5, failedAt: Date.now() });
 * const letters = await dlq.list('default');
 * ```
 */
export class SqliteDeadLetters implements DeadLetterQueue {
  private readonly now: () => number;
  private readonly sql;

  constructor(options: { readonly db: Database.Database; readonly now?: () => number }) {
    this.now = options.now ?? Date.now;
    const db = options.db;
    this.sql = {
      insert: db.prepare(
        `INSERT INTO dead_letters (pool, origin, body, dedup, receive_count, sent_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (pool, dedup) DO NOTHING`,
      ),
      visible: db.prepare(
        'SELECT id, body, receive_count, sent_at FROM dead_letters WHERE pool = ? AND hold_until <= ? ORDER BY id LIMIT ?',
      ),
      hold: db.prepare(
        'UPDATE dead_letters SET hold_until = ?, receive_count = receive_count + 1, receipt = ? WHERE id = ?',
      ),
      delete: db.prepare('DELETE FROM dead_letters WHERE pool = ? AND id = ?'),
      release: db.prepare('UPDATE dead_letters SET hold_until = 0 WHERE pool = ? AND id = ? AND receipt = ?'),
      count: db.prepare('SELECT count(*) FROM dead_letters WHERE pool = ?').pluck(),
    };
  }

  async send(record: DeadLetterRecord): Promise<void> {
    const d = record.dispatch;
    this.sql.insert.run(
      d.pool,
      'engine',
      encodeDeadLetter(record),
      fifoId(['dead', d.instanceId, d.key, d.attempt]),
      0,
      this.now(),
    );
  }

  /** Records a dispatch the queue gave up on after `receiveCount` receives (its worker kept failing or dying). */
  moved(dispatch: Dispatch, receiveCount: number, sentAt: number): void {
    this.sql.insert.run(dispatch.pool, 'redrive', encodeDispatch(dispatch), null, receiveCount, sentAt);
  }

  async list(pool: string, options: { limit?: number; holdSeconds?: number } = {}): Promise<ReceivedDeadLetter[]> {
    const now = this.now();
    const until = now + (options.holdSeconds ?? 30) * 1000;
    const rows = this.sql.visible.all(pool, now, options.limit ?? 100) as Row[];
    return rows.map((row) => {
      const receipt = `${row.id}:${randomUUID()}`;
      this.sql.hold.run(until, receipt, row.id);
      return parseDeadLetter(row.body, {
        messageId: String(row.id),
        receiptHandle: receipt,
        receiveCount: row.receive_count + 1,
        sentAt: row.sent_at,
      });
    });
  }

  async delete(pool: string, letters: readonly ReceivedDeadLetter[]): Promise<void> {
    for (const l of letters) this.sql.delete.run(pool, Number(l.messageId));
  }

  async release(pool: string, letters: readonly ReceivedDeadLetter[]): Promise<void> {
    for (const l of letters) this.sql.release.run(pool, Number(l.messageId), l.receiptHandle);
  }

  /** Entries of a pool, held or not. */
  size(pool: string): number {
    return this.sql.count.get(pool) as number;
  }
}
