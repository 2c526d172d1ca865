import { describe, expect, it } from 'vitest';
import { flow } from '../../../shared/index.ts';
import { workflows } from '../../../workflows/index.ts';
import { setup, start } from '../../support/api-harness.ts';

/** Waits an hour before it takes a 'go': signals sent meanwhile are buffered, two at most. */
const late = flow<number>('late', { signalBuffer: 2 }).delay('d', '1h').waitForSignal<number>('w', 'go').build();

describe('signals nothing waits for yet are bounded per name', () => {
  it('answers 429 past the flow signalBuffer, changes nothing, and the run stays controllable', async () => {
    const { call, footprint } = setup({ flows: [...workflows, late] });
    expect((await start(call, 'late', { input: 1, instanceId: 'l-1' })).status).toBe(201);
    for (const n of [1, 2]) {
      expect((await call('POST', '/v1/instances/l-1/signals/go', { body: n })).status).toBe(202);
    }
    const before = footprint();
    const refused = await call('POST', '/v1/instances/l-1/signals/go', { body: 3 });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('signal_buffer_full');
    expect(refused.json.error.message).toMatch(/already holds 2 'go' signals/);
    expect(footprint()).toEqual(before);
    const cancelled = await call('POST', '/v1/instances/l-1/cancel');
    expect(cancelled.status).toBe(200);
    expect(cancelled.json.status).toBe('CANCELLED');
  });
});

describe('a signal sent with an Idempotency-Key is delivered once', () => {
  it('answers a retried delivery like the first and commits it once; another key is another delivery', async () => {
    const { call, footprint } = setup({ flows: [...workflows, late] });
    await start(call, 'late', { input: 1, instanceId: 'l-2' });
    const headers = { 'idempotency-key': 'client-7f3a' };
    const first = await call('POST', '/v1/instances/l-2/signals/go', { body: 1, headers });
    const journal = footprint().journal;
    const again = await call('POST', '/v1/instances/l-2/signals/go', { body: 1, headers });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
    expect(footprint().journal).toBe(journal);
    const other = await call('POST', '/v1/instances/l-2/signals/go', { body: 2, headers: { 'Idempotency-Key': 'b' } });
    expect(other.status).toBe(202);
    expect(footprint().journal).toBe(journal + 1);
  });

  it('refuses a blank or overlong key with a 400 naming the header, delivering nothing', async () => {
    const { call, footprint } = setup({ flows: [...workflows, late] });
    await start(call, 'late', { input: 1, instanceId: 'l-3' });
    const before = footprint();
    for (const key of [' ', 'k'.repeat(257)]) {
      const r = await call('POST', '/v1/instances/l-3/signals/go', { body: 1, headers: { 'idempotency-key': key } });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toMatch(/^Idempotency-Key: must be 1-256 characters/);
    }
    expect(footprint()).toEqual(before);
  });
});
