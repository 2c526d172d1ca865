import type Database from 'better-sqlite3';
import type { Claim, ClaimStore } from '../../ports/claim-store.ts';
import { ClaimHeldError, ClaimLostError } from '../../ports/errors.ts';
import { type GroupCommit, groupCommit } from './group-commit.ts';

interface Row {
  fence: number;
  claim: string | null;
}

/**
 * The claim store on SQLite: one row per (instance, task) with the fence
 * counter and the live claim (NULL once released), `expires_at` indexed for
 * the reaper. Each method reads and writes its row within one synchronous
 * turn, so its condition holds as a DynamoDB conditional write would (the
 * data folder's lock keeps other processes out).
 *
 * @example
 * ```ts
 * const claims = new SqliteClaimStore({ db });
 * const claim = await claims.reserve('order-1', 'charge', 'worker-1', Date.now(), 5_000);
 * ```
 */
export class SqliteClaimStore implements ClaimStore {
  private readonly sql;
  private readonly writes: GroupCommit;

  constructor(options: { readonly db: Database.Database }) {
    const db = options.db;
    this.writes = groupCommit(db);
    this.sql = {
      row: db.prepare('SELECT fence, claim FROM claims WHERE instance_id = ? AND task_key = ?'),
      put: db.prepare(
        `INSERT INTO claims (instance_id, task_key, fence, claim, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (instance_id, task_key) DO UPDATE SET fence = excluded.fence, claim = excluded.claim, expires_at = excluded.expires_at`,
      ),
      update: db.prepare(
        'UPDATE claims SET claim = ?, expires_at = ? WHERE instance_id = ? AND task_key = ? AND fence = ? AND claim IS NOT NULL',
      ),
      release: db.prepare(
        'UPDATE claims SET claim = NULL, expires_at = NULL WHERE instance_id = ? AND task_key = ? AND fence = ?',
      ),
      revoke: db.prepare(
        `UPDATE claims SET claim = NULL, expires_at = NULL, fence = fence + 1
         WHERE instance_id = ? AND task_key = ? AND claim IS NOT NULL`,
      ),
      expired: db.prepare('SELECT claim FROM claims WHERE expires_at <= ? ORDER BY expires_at LIMIT ?').pluck(),
    };
  }

  async reserve(
    instanceId: string,
    taskKey: string,
    workerId: string,
    now: number,
    ttlMs: number,
    attempt = 1,
  ): Promise<Claim> {
    // Read, check and write in one turn of the group: nothing commits in between.
    return this.writes.run(() => {
      const row = this.sql.row.get(instanceId, taskKey) as Row | undefined;
      const held = row?.claim ? (JSON.parse(row.claim) as Claim) : undefined;
      // Live, and for this attempt or a newer one: held. A claim left by an older attempt is superseded.
      if (held && held.expiresAt > now && held.attempt >= attempt) throw new ClaimHeldError(instanceId, taskKey);
      const claim: Claim = {
        instanceId,
        taskKey,
        attempt,
        workerId,
        fence: (row?.fence ?? 0) + 1,
        state: 'reserved',
        expiresAt: now + ttlMs,
      };
      this.sql.put.run(instanceId, taskKey, claim.fence, JSON.stringify(claim), claim.expiresAt);
      return claim;
    });
  }

  private async replace(claim: Claim, next: Claim): Promise<Claim> {
    const { changes } = await this.writes.run(() =>
      this.sql.update.run(JSON.stringify(next), next.expiresAt, claim.instanceId, claim.taskKey, claim.fence),
    );
    if (changes === 0) throw new ClaimLostError(claim.instanceId, claim.taskKey, claim.fence);
    return next;
  }

  async start(claim: Claim, now: number, leaseMs: number): Promise<Claim> {
    return this.replace(claim, {
      ...claim,
      state: 'executing',
      startedAt: now,
      lastHeartbeat: now,
      expiresAt: now + leaseMs,
    });
  }

  async heartbeat(claim: Claim, now: number, leaseMs: number): Promise<Claim> {
    return this.replace(claim, { ...claim, lastHeartbeat: now, expiresAt: now + leaseMs });
  }

  async release(claim: Claim): Promise<void> {
    await this.writes.run(() => this.sql.release.run(claim.instanceId, claim.taskKey, claim.fence));
  }

  async revoke(instanceId: string, taskKey: string): Promise<void> {
    await this.writes.run(() => this.sql.revoke.run(instanceId, taskKey));
  }

  async get(instanceId: string, taskKey: string): Promise<Claim | undefined> {
    const row = this.sql.row.get(instanceId, taskKey) as Row | undefined;
    return row?.claim ? (JSON.parse(row.claim) as Claim) : undefined;
  }

  async expired(now: number, limit: number): Promise<Claim[]> {
    return (this.sql.expired.all(now, limit) as string[]).map((text) => JSON.parse(text) as Claim);
  }
}
