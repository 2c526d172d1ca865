import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClaimStore } from '../../shared/ports/claim-store.ts';
import { ClaimHeldError, ClaimLostError } from '../../shared/ports/errors.ts';

/**
 * The contract of the claim store port (`shared/ports/claim-store.ts`) for
 * one adapter: two-phase reservation, fences, expiry, revoke, release and
 * the reaper's list of expired claims. `open` gives a fresh, empty store
 * per test.
 *
 * @example
 * ```ts
 * describeClaimStoreContract('MemoryClaimStore', async () => ({ claims: new MemoryClaimStore(), close: async () => {} }));
 * ```
 */
export function describeClaimStoreContract(
  name: string,
  open: () => Promise<{ readonly claims: ClaimStore; readonly close: () => Promise<void> }>,
): void {
  describe(`${name} claim store contract`, () => {
    let claims: ClaimStore;
    let close: () => Promise<void>;

    beforeEach(async () => {
      ({ claims, close } = await open());
    });
    afterEach(async () => {
      await close();
    });

    it('reserve takes fence 1; a second reserve throws ClaimHeldError while the claim is live', async () => {
      const claim = await claims.reserve('i1', 'charge', 'w1', 1_000, 500);
      expect(claim).toEqual({
        instanceId: 'i1',
        taskKey: 'charge',
        attempt: 1,
        workerId: 'w1',
        fence: 1,
        state: 'reserved',
        expiresAt: 1_500,
      });

      const err = await claims.reserve('i1', 'charge', 'w2', 1_499, 500).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClaimHeldError);
      expect(err).toMatchObject({ instanceId: 'i1', taskKey: 'charge' });
      expect(await claims.get('i1', 'charge')).toEqual(claim);
      // The loser wrote nothing: the holder can still start.
      await expect(claims.start(claim, 1_100, 1_000)).resolves.toMatchObject({ fence: 1, workerId: 'w1' });
    });

    it('claims on other tasks or instances are independent', async () => {
      await claims.reserve('i1', 'a', 'w1', 0, 1_000);
      await expect(claims.reserve('i1', 'b', 'w2', 0, 1_000)).resolves.toMatchObject({ fence: 1 });
      await expect(claims.reserve('i2', 'a', 'w3', 0, 1_000)).resolves.toMatchObject({ fence: 1 });
    });

    it('of concurrent reserves, exactly one wins', async () => {
      const results = await Promise.allSettled(
        ['w1', 'w2', 'w3', 'w4', 'w5'].map((w) => claims.reserve('i1', 't', w, 0, 1_000)),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ClaimHeldError);
    });

    it('after expiry a reserve succeeds with a higher fence, and the old holder can no longer start or heartbeat', async () => {
      const old = await claims.reserve('i1', 't', 'w1', 1_000, 500);
      // Exactly at expiresAt the lease is over.
      const fresh = await claims.reserve('i1', 't', 'w2', 1_500, 500);
      expect(fresh).toMatchObject({ fence: 2, workerId: 'w2', state: 'reserved', expiresAt: 2_000 });

      const started = await claims.start(fresh, 1_600, 10_000);
      await expect(claims.start(old, 1_600, 10_000)).rejects.toBeInstanceOf(ClaimLostError);
      const lost = await claims.heartbeat(old, 1_700, 10_000).catch((e: unknown) => e);
      expect(lost).toBeInstanceOf(ClaimLostError);
      expect(lost).toMatchObject({ instanceId: 'i1', taskKey: 't', fence: 1 });
      // The stale writes left the new holder's lease alone.
      await expect(claims.reserve('i1', 't', 'w3', 11_599, 500)).rejects.toBeInstanceOf(ClaimHeldError);
      expect(await claims.expired(11_600, 10)).toEqual([started]);
    });

    it('a live claim of an older attempt does not block a newer attempt, but one of the same or a newer attempt does', async () => {
      await claims.reserve('i1', 't', 'w1', 0, 10_000, 1);
      await expect(claims.reserve('i1', 't', 'w2', 10, 10_000, 1)).rejects.toBeInstanceOf(ClaimHeldError);
      const second = await claims.reserve('i1', 't', 'w2', 10, 10_000, 2);
      expect(second).toMatchObject({ attempt: 2, fence: 2, workerId: 'w2' });
      await expect(claims.reserve('i1', 't', 'w3', 20, 10_000, 1)).rejects.toBeInstanceOf(ClaimHeldError);
      await expect(claims.reserve('i1', 't', 'w3', 20, 10_000, 2)).rejects.toBeInstanceOf(ClaimHeldError);
    });

    it('revoke ends whoever holds the claim and moves the fence on', async () => {
      const held = await claims.start(await claims.reserve('i1', 't', 'w1', 0, 1_000), 0, 10_000);
      await claims.revoke('i1', 't');
      await expect(claims.heartbeat(held, 10, 10_000)).rejects.toBeInstanceOf(ClaimLostError);
      expect(await claims.get('i1', 't')).toBeUndefined();
      await expect(claims.reserve('i1', 't', 'w2', 20, 1_000)).resolves.toMatchObject({ fence: 3 });
      await claims.revoke('i1', 'never-claimed');
    });

    it('an executing claim whose heartbeat stopped can be taken over', async () => {
      const claim = await claims.start(await claims.reserve('i1', 't', 'w1', 0, 100), 50, 1_000);
      const beat = await claims.heartbeat(claim, 900, 1_000);
      await expect(claims.reserve('i1', 't', 'w2', 1_899, 100)).rejects.toBeInstanceOf(ClaimHeldError);
      await expect(claims.reserve('i1', 't', 'w2', 1_900, 100)).resolves.toMatchObject({ fence: 2, workerId: 'w2' });
      await expect(claims.heartbeat(beat, 1_950, 1_000)).rejects.toBeInstanceOf(ClaimLostError);
    });

    it('start and heartbeat move the lease and record the times', async () => {
      const reserved = await claims.reserve('i1', 't', 'w1', 0, 100);
      const started = await claims.start(reserved, 10, 1_000);
      expect(started).toEqual({
        instanceId: 'i1',
        taskKey: 't',
        attempt: 1,
        workerId: 'w1',
        fence: 1,
        state: 'executing',
        expiresAt: 1_010,
        startedAt: 10,
        lastHeartbeat: 10,
      });
      const beat = await claims.heartbeat(started, 500, 1_000);
      expect(beat).toEqual({ ...started, lastHeartbeat: 500, expiresAt: 1_500 });
      // What is stored agrees with what was returned.
      expect(await claims.expired(1_010, 10)).toEqual([]);
      expect(await claims.expired(1_500, 10)).toEqual([beat]);
    });

    it('get reads the current claim consistently, and nothing once released or never made', async () => {
      expect(await claims.get('i1', 't')).toBeUndefined();
      const reserved = await claims.reserve('i1', 't', 'w1', 0, 100);
      expect(await claims.get('i1', 't')).toEqual(reserved);
      const started = await claims.start(reserved, 10, 1_000);
      expect(await claims.get('i1', 't')).toEqual(started);
      await claims.release(started);
      expect(await claims.get('i1', 't')).toBeUndefined();
      expect(await claims.get('i1', 'other')).toBeUndefined();
    });

    it('release then reserve gives fence + 1 at once, and a released claim cannot start', async () => {
      const first = await claims.reserve('i1', 't', 'w1', 0, 10_000);
      await claims.release(first);
      await expect(claims.start(first, 1, 1_000)).rejects.toBeInstanceOf(ClaimLostError);

      const second = await claims.reserve('i1', 't', 'w2', 1, 10_000);
      expect(second.fence).toBe(first.fence + 1);
      const executing = await claims.start(second, 2, 10_000);
      await claims.release(executing);
      expect((await claims.reserve('i1', 't', 'w3', 3, 10_000)).fence).toBe(3);
    });

    it('a stale release is ignored and does not end the current holder', async () => {
      const old = await claims.reserve('i1', 't', 'w1', 0, 100);
      const current = await claims.reserve('i1', 't', 'w2', 100, 1_000);
      await expect(claims.release(old)).resolves.toBeUndefined();
      await expect(claims.reserve('i1', 't', 'w3', 200, 1_000)).rejects.toBeInstanceOf(ClaimHeldError);
      await expect(claims.start(current, 200, 1_000)).resolves.toMatchObject({ fence: 2 });
      // Releasing twice is harmless too.
      await claims.release(current);
      await expect(claims.release(current)).resolves.toBeUndefined();
    });

    it('expired lists lapsed live claims, earliest first, up to the limit, and never released ones', async () => {
      const a = await claims.reserve('i1', 'a', 'w', 0, 300);
      const b = await claims.start(await claims.reserve('i1', 'b', 'w', 0, 50), 0, 100);
      const released = await claims.reserve('i1', 'c', 'w', 0, 50);
      await claims.release(released);
      await claims.reserve('i2', 'live', 'w', 0, 10_000);

      expect(await claims.expired(99, 10)).toEqual([]);
      expect(await claims.expired(1_000, 10)).toEqual([b, a]);
      expect(await claims.expired(1_000, 1)).toEqual([b]);

      // Re-reserving a lapsed claim makes it live again, off the list.
      await claims.reserve('i1', 'b', 'w2', 1_000, 5_000);
      expect(await claims.expired(1_000, 10)).toEqual([a]);
    });
  });
}
