import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { makeApi } from '../../../shared/api/api.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets, task } from '../../../shared/index.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch, type WorkerDeps } from '../../../shared/runtime/worker.ts';
import { httpEvent } from '../../support/api-harness.ts';

/**
 * `GET /v1/instances/{id}/lane-timers`: what the children of a map run in
 * lanes wait on outside the journal (a delay, a retry's backoff), for an
 * operator, page by page.
 */

const KEY = 'test-key';
const HOUR = 3_600_000;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Items rest an hour between two tasks; an odd item's first call fails once and is retried in its lane a minute later. */
const resting = flow<number>('resting')
  .map(
    'items',
    range,
    flow<number>('item')
      .then(
        task(
          'call',
          (x: number, ctx) => {
            if (x % 2 === 1 && ctx.attempt === 1) throw new Error(`busy ${x}`);
            return x;
          },
          { retry: { maxAttempts: 3, initialDelay: '1m', jitter: 'none' } },
        ),
      )
      .delay('rest', '1h')
      .then('done', (x: number) => x)
      .build(),
  )
  .build();

/** Items that wait in their lanes for an `ok` signal between two tasks. */
const approving = flow<number>('approving')
  .map(
    'items',
    range,
    flow<number>('item')
      .then('ask', (x: number) => x)
      .waitForSignal<{ ok: boolean }>('answer', 'ok')
      .then('apply', (a: { ok: boolean }) => a.ok)
      .build(),
  )
  .build();

let store: MemoryInstanceStore;
let queue: MemoryTaskQueue;
let clock: FakeClock;
let worker: WorkerDeps;
let api: ReturnType<typeof makeApi>;

/** A GET through the API handler, with the query of `target` (see `httpEvent`). */
function call(target: string) {
  const [path = '', query = ''] = target.split('?');
  const event = httpEvent('GET', path, {
    key: KEY,
    ...(query ? { query: Object.fromEntries(new URLSearchParams(query)) } : {}),
  });
  return api(event).then((r) => ({ status: r.statusCode, json: r.body ? JSON.parse(r.body) : null }));
}

beforeEach(async () => {
  store = new MemoryInstanceStore();
  queue = new MemoryTaskQueue();
  clock = new FakeClock(1_000_000);
  const registry = new WorkflowRegistry([resting, approving]);
  const secrets = new MemorySecrets({ 'sayiir/api-keys': JSON.stringify([KEY]) });
  const claims = new MemoryClaimStore();
  api = makeApi({ store, queue, registry, secrets, clock, claims });
  worker = { store, claims, queue, registry, clock, secrets, pool: 'default', workerId: 'w1' };
  const started = await startInstance(store, resting, 6, { instanceId: 'r1', now: clock.now() });
  const first = started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
  for (let batch = first; batch.length > 0; batch = queue.sent.splice(0)) {
    for (const d of batch) await processDispatch(worker, d, () => 900_000);
  }
});

describe('GET /v1/instances/{id}/lane-timers', () => {
  it('shows a child that waits in its lane for a signal, with no due time when its wait has no timeout, and fired once given one', async () => {
    const started = await startInstance(store, approving, 2, { instanceId: 'a1', now: clock.now() });
    const first = started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []));
    for (let batch = first; batch.length > 0; batch = queue.sent.splice(0)) {
      for (const d of batch) await processDispatch(worker, d, () => 900_000);
    }
    expect((await call('/v1/instances/a1/lane-timers')).json.items).toEqual([
      { id: 'items[0]/answer', parent: 'items', child: 0, kind: 'signal', signal: { name: 'ok' } },
      { id: 'items[1]/answer', parent: 'items', child: 1, kind: 'signal', signal: { name: 'ok' } },
    ]);
    const sent = await api(httpEvent('POST', '/v1/instances/a1/signals/ok', { key: KEY, body: { ok: true } }));
    expect(sent.statusCode).toBe(202);
    const items = (await call('/v1/instances/a1/lane-timers')).json.items as { id: string; firedAt?: string }[];
    expect(items.map((t) => [t.id, t.firedAt !== undefined])).toEqual([
      ['items[0]/answer', true],
      ['items[1]/answer', false],
    ]);
  });

  it('shows the look at a fork that runs in a child’s lane as such', async () => {
    await store.putTimer('r1', {
      id: 'items[0]/fan~look~2',
      dueAt: 1_000_000 + 30_000,
      parent: 'items',
      item: 0,
      look: { group: 'items[0]/fan', n: 2, sentAt: 1_000_000 },
    });
    const r = await call('/v1/instances/r1/lane-timers?limit=1');
    expect(r.json.items).toEqual([
      {
        id: 'items[0]/fan~look~2',
        parent: 'items',
        child: 0,
        kind: 'look',
        dueAt: new Date(1_030_000).toISOString(),
        look: { fork: 'items[0]/fan', n: 2 },
      },
    ]);
  });

  it('lists each waiting child: the even items on their delay, the odd ones on their retry with the failure', async () => {
    const r = await call('/v1/instances/r1/lane-timers');
    expect(r.status).toBe(200);
    expect(r.json.cursor).toBeUndefined();
    const at = (ms: number) => new Date(ms).toISOString();
    expect(r.json.items).toEqual([
      { id: 'items[0]/rest', parent: 'items', child: 0, kind: 'delay', dueAt: at(1_000_000 + HOUR) },
      {
        id: 'items[1]/call#2',
        parent: 'items',
        child: 1,
        kind: 'retry',
        dueAt: at(1_000_000 + 60_000),
        retry: {
          task: 'items[1]/call',
          attempt: 2,
          failedAt: at(1_000_000),
          worker: 'w1',
          error: { name: 'Error', message: 'busy 1' },
        },
      },
      { id: 'items[2]/rest', parent: 'items', child: 2, kind: 'delay', dueAt: at(1_000_000 + HOUR) },
      expect.objectContaining({ id: 'items[3]/call#2', kind: 'retry' }),
      expect.objectContaining({ id: 'items[4]/rest', kind: 'delay' }),
      expect.objectContaining({ id: 'items[5]/call#2', kind: 'retry' }),
    ]);
  });

  it('pages by id with a cursor, and filters by parent', async () => {
    const first = await call('/v1/instances/r1/lane-timers?limit=4&parent=items');
    expect(first.json.items.map((t: { id: string }) => t.id)).toEqual([
      'items[0]/rest',
      'items[1]/call#2',
      'items[2]/rest',
      'items[3]/call#2',
    ]);
    const second = await call(`/v1/instances/r1/lane-timers?limit=4&parent=items&cursor=${first.json.cursor}`);
    expect(second.json.items.map((t: { id: string }) => t.id)).toEqual(['items[4]/rest', 'items[5]/call#2']);
    expect(second.json.cursor).toBeUndefined();
    expect((await call('/v1/instances/r1/lane-timers?parent=other')).json.items).toEqual([]);
  });

  it('shows a fired timer with its firing time', async () => {
    clock.advance(60_000);
    const { reapOnce } = await import('../../../shared/runtime/reaper.ts');
    await reapOnce({ store, timers: store, claims: new MemoryClaimStore(), queue, registry: worker.registry, clock });
    const items = (await call('/v1/instances/r1/lane-timers')).json.items as { id: string; firedAt?: string }[];
    expect(items.find((t) => t.id === 'items[1]/call#2')?.firedAt).toBe(new Date(1_060_000).toISOString());
    expect(items.find((t) => t.id === 'items[0]/rest')?.firedAt).toBeUndefined();
  });

  it('answers a bad limit, an empty parent and a cursor of another scope with a 400, an unknown run with a 404', async () => {
    const bad = async (target: string, status: number, message: RegExp) => {
      const r = await call(target);
      expect(r.status, target).toBe(status);
      expect(r.json.error.message, target).toMatch(message);
    };
    await bad('/v1/instances/r1/lane-timers?limit=0', 400, /limit/);
    await bad('/v1/instances/r1/lane-timers?limit=101', 400, /limit/);
    await bad('/v1/instances/r1/lane-timers?parent=', 400, /parent/);
    await bad('/v1/instances/r1/lane-timers?cursor=not-a-cursor!', 400, /cursor/);
    const page = await call('/v1/instances/r1/lane-timers?limit=1');
    // A cursor of the unfiltered listing does not page the one of a parent.
    await bad(`/v1/instances/r1/lane-timers?limit=1&parent=items&cursor=${page.json.cursor}`, 400, /cursor/);
    await bad('/v1/instances/nope/lane-timers', 404, /nope/);
  });
});
