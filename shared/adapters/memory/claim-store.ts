import type { Claim, ClaimStore } from '../../ports/claim-store.ts';
import { ClaimHeldError, ClaimLostError } from '../../ports/errors.ts';

interface Row {
  fence: number;
  claim: Claim | undefined;
}

/** In-memory claim store with the same conditions as the DynamoDB one. */
export class MemoryClaimStore implements ClaimStore {
  private readonly rows = new Map<string, Row>();

  async reserve(
    instanceId: string,
    taskKey: string,
    workerId: string,
    now: number,
    ttlMs: number,
    attempt = 1,
  ): Promise<Claim> {
    const k = `${instanceId}|${taskKey}`;
    const row = this.rows.get(k) ?? { fence: 0, claim: undefined };
    // Live, and for this attempt or a newer one: held. A claim left by an older attempt is superseded.
    if (row.claim && row.claim.expiresAt > now && row.claim.attempt >= attempt) {
      throw new ClaimHeldError(instanceId, taskKey);
    }
    const claim: Claim = {
      instanceId,
      taskKey,
      attempt,
      workerId,
      fence: row.fence + 1,
      state: 'reserved',
      expiresAt: now + ttlMs,
    };
    this.rows.set(k, { fence: claim.fence, claim });
    return claim;
  }

  private live(claim: Claim): Row {
    const row = this.rows.get(`${claim.instanceId}|${claim.taskKey}`);
    if (!row?.claim || row.fence !== claim.fence)
      throw new ClaimLostError(claim.instanceId, claim.taskKey, claim.fence);
    return row;
  }

  async start(claim: Claim, now: number, leaseMs: number): Promise<Claim> {
    const row = this.live(claim);
    const next: Claim = { ...claim, state: 'executing', startedAt: now, lastHeartbeat: now, expiresAt: now + leaseMs };
    row.claim = next;
    return next;
  }

  async heartbeat(claim: Claim, now: number, leaseMs: number): Promise<Claim> {
    const row = this.live(claim);
    const next: Claim = { ...claim, lastHeartbeat: now, expiresAt: now + leaseMs };
    row.claim = next;
    return next;
  }

  async release(claim: Claim): Promise<void> {
    const row = this.rows.get(`${claim.instanceId}|${claim.taskKey}`);
    if (row?.claim && row.fence === claim.fence) row.claim = undefined;
  }

  async revoke(instanceId: string, taskKey: string): Promise<void> {
    const row = this.rows.get(`${instanceId}|${taskKey}`);
    if (row?.claim) {
      row.fence += 1;
      row.claim = undefined;
    }
  }

  async get(instanceId: string, taskKey: string): Promise<Claim | undefined> {
    return this.rows.get(`${instanceId}|${taskKey}`)?.claim;
  }

  async expired(now: number, limit: number): Promise<Claim[]> {
    return [...this.rows.values()]
      .map((r) => r.claim)
      .filter((c): c is Claim => c !== undefined && c.expiresAt <= now)
      .sort((a, b) => a.expiresAt - b.expiresAt)
      .slice(0, limit);
  }
}
