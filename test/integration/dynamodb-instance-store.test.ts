import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoInstanceStore, InvalidCursorError, MAX_ITEM_BYTES } from '../../shared/adapters/dynamodb/index.ts';
import { ValueMissingError } from '../../shared/engine/refs.ts';
import type { Snapshot } from '../../shared/engine/snapshot.ts';
import { InstanceExistsError, PayloadTooLargeError, VersionConflictError } from '../../shared/ports/errors.ts';
import { type Dynalite, startDynalite } from '../support/dynalite.ts';

function snapshot(instanceId: string, over: Partial<Snapshot> = {}): Snapshot {
  return {
    instanceId,
    workflow: 'orders',
    defHash: 'h1',
    inputId: `input:${instanceId}-n1`,
    status: 'RUNNING',
    redispatchAfterMs: 60_000,
    version: 1,
    createdAt: 1_000,
    updatedAt: 1_000,
    tasks: {},
    waits: {},
    forks: {},
    maps: {},
    signals: {},
    ...over,
  };
}

/** The next version of a snapshot, as the reducer would produce it. */
const next = (s: Snapshot, over: Partial<Snapshot> = {}): Snapshot => ({ ...s, version: s.version + 1, ...over });

describe('DynamoInstanceStore on dynalite', () => {
  let db: Dynalite;
  let store: DynamoInstanceStore;

  beforeEach(async () => {
    db = await startDynalite();
    store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
  });
  afterEach(async () => {
    await db.close();
  });

  it('create then get returns the same snapshot, and the input is stored under its id', async () => {
    const s = snapshot('a', {
      tasks: {
        charge: {
          qid: 'charge',
          idx: [0, 2],
          input: { v: 'input:a-n1', at: ['x', 0] },
          attempt: 2,
          state: 'backoff',
          dueAt: 5,
        },
      },
      waits: { approve: { kind: 'signal', qid: 'approve', idx: [], input: { c: null }, signal: 'ok' } },
      forks: { f: { remaining: 1, results: [{ v: 'out:x' }, null] } },
      signals: { ok: ['sig:1', 'sig:2'] },
      error: { name: 'E', message: 'ü' },
      dueAt: 5,
    });
    await store.create(s, { order: 42 });

    expect(await store.get('a')).toEqual(s);
    expect(await store.getValues('a', ['input:a-n1'])).toEqual(new Map([['input:a-n1', { order: 42 }]]));
    expect(await store.get('nope')).toBeUndefined();
  });

  it('a second create with the same id throws InstanceExistsError and leaves the first untouched', async () => {
    const first = snapshot('a', { defHash: 'first' });
    await store.create(first, 'first input');

    const second = snapshot('a', { defHash: 'second', inputId: 'input:a-n2', createdAt: 2_000 });
    await expect(store.create(second, 'second input')).rejects.toBeInstanceOf(InstanceExistsError);

    expect(await store.get('a')).toEqual(first);
    expect(await store.getValues('a', ['input:a-n1'])).toEqual(new Map([['input:a-n1', 'first input']]));
    // The losing create's input was tidied up.
    await expect(store.getValues('a', ['input:a-n2'])).rejects.toBeInstanceOf(ValueMissingError);
    // And the listing still shows one instance, with the first's creation time.
    const page = await store.list({ workflow: 'orders' });
    expect(page.items.map((i) => [i.instanceId, i.createdAt])).toEqual([['a', 1_000]]);
  });

  it('of two updates racing from the same read version, exactly one wins; the other gets VersionConflictError', async () => {
    await store.create(snapshot('a'), null);
    const read = (await store.get('a'))!;
    const left = next(read, { status: 'PAUSED', updatedAt: 2_000 });
    const right = next(read, { status: 'CANCELLED', updatedAt: 2_001 });

    const results = await Promise.allSettled([store.update(left), store.update(right)]);

    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(VersionConflictError);
    expect((lost[0]!.reason as VersionConflictError).expectedVersion).toBe(1);
    const winner = results[0]!.status === 'fulfilled' ? left : right;
    expect(await store.get('a')).toEqual(winner);
  });

  it('update is conditional on the previous version: a stale or skipped version, or a missing instance, conflicts', async () => {
    const s = snapshot('a');
    await store.create(s, null);
    const v2 = next(s, { updatedAt: 2 });
    await store.update(v2);

    await expect(store.update(next(s, { updatedAt: 3 }))).rejects.toBeInstanceOf(VersionConflictError);
    await expect(store.update(next(next(v2)))).rejects.toBeInstanceOf(VersionConflictError);
    await expect(store.update(next(snapshot('ghost')))).rejects.toBeInstanceOf(VersionConflictError);
    expect(await store.get('a')).toEqual(v2);
    expect(await store.get('ghost')).toBeUndefined();
  });

  it('putValue: the first writer wins, a second gets exists and changes nothing', async () => {
    expect(await store.putValue('a', 'out:charge', { paid: 1 })).toBe('created');
    expect(await store.putValue('a', 'out:charge', { paid: 2 })).toBe('exists');
    expect(await store.getValues('a', ['out:charge'])).toEqual(new Map([['out:charge', { paid: 1 }]]));
  });

  it('concurrent putValue of one id: exactly one created', async () => {
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => store.putValue('a', 'out:t', n)));
    expect(results.filter((r) => r === 'created')).toHaveLength(1);
    const stored = (await store.getValues('a', ['out:t'])).get('out:t');
    expect(results[(stored as number) - 1]).toBe('created');
  });

  it('values round-trip: undefined, null, falsy scalars, nested objects, unicode', async () => {
    const values: Record<string, unknown> = {
      undef: undefined,
      nul: null,
      zero: 0,
      empty: '',
      no: false,
      nested: { a: [1, { b: [null, 'x', { c: true }] }], d: { e: { f: -1.5e-7 } } },
      unicode: 'héllo 世界 🚀 \u0000 \u{1F600} \u2028 "quotes" \\ back',
      array: [undefined, 1, 'two'],
    };
    for (const [id, value] of Object.entries(values)) expect(await store.putValue('a', id, value)).toBe('created');

    const read = await store.getValues('a', Object.keys(values));
    expect([...read.keys()]).toEqual(Object.keys(values));
    for (const [id, value] of Object.entries(values)) {
      expect(read.has(id)).toBe(true);
      expect(read.get(id)).toEqual(JSON.parse(JSON.stringify({ v: value })).v);
    }
    expect(read.get('undef')).toBeUndefined();
    expect(read.get('unicode')).toBe(values.unicode);
  });

  it('getValues reads more than one batch (100 keys), tolerates duplicate ids, and scopes ids to the instance', async () => {
    const ids = Array.from({ length: 230 }, (_, i) => `out:t${i}`);
    await Promise.all(ids.map((id, i) => store.putValue('a', id, { i })));
    await store.putValue('b', 'out:other', 'b only');

    const read = await store.getValues('a', [...ids, 'out:t5', 'out:t5']);
    expect(read.size).toBe(230);
    expect([...read.entries()]).toEqual(ids.map((id, i) => [id, { i }]));
    await expect(store.getValues('a', ['out:other'])).rejects.toBeInstanceOf(ValueMissingError);
    expect(await store.getValues('a', [])).toEqual(new Map());
  });

  it('getValues throws ValueMissingError naming the missing id', async () => {
    await store.putValue('a', 'out:x', 1);
    const err = await store.getValues('a', ['out:x', 'out:missing']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValueMissingError);
    expect((err as ValueMissingError).valueId).toBe('out:missing');
  });

  it('an oversized value is refused with PayloadTooLargeError and nothing is written', async () => {
    // 200_000 two-byte characters: under the limit in characters, over it in UTF-8 bytes.
    const big = 'é'.repeat(200_000);
    const err = await store.putValue('a', 'out:big', big).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as PayloadTooLargeError).limit).toBe(MAX_ITEM_BYTES);
    expect((err as PayloadTooLargeError).bytes).toBeGreaterThan(400_000);
    await expect(store.getValues('a', ['out:big'])).rejects.toBeInstanceOf(ValueMissingError);

    // Just under the limit is accepted.
    const fits = 'x'.repeat(MAX_ITEM_BYTES - 1_000);
    expect(await store.putValue('a', 'out:fits', fits)).toBe('created');
    expect((await store.getValues('a', ['out:fits'])).get('out:fits')).toBe(fits);
  });

  it('an oversized input fails create with PayloadTooLargeError and creates nothing', async () => {
    const s = snapshot('a');
    await expect(store.create(s, { blob: 'x'.repeat(400_000) })).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await store.get('a')).toBeUndefined();
    await expect(store.getValues('a', [s.inputId])).rejects.toBeInstanceOf(ValueMissingError);
    expect((await store.list({ workflow: 'orders' })).items).toEqual([]);
  });

  it('an oversized snapshot fails update with PayloadTooLargeError and keeps the stored one', async () => {
    const s = snapshot('a');
    await store.create(s, null);
    const huge = next(s, { error: { name: 'E', message: 'x'.repeat(400_000) } });
    await expect(store.update(huge)).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await store.get('a')).toEqual(s);
  });

  it('list pages through every instance exactly once, newest first, and filters by status', async () => {
    // Created out of order, plus another workflow that must not show up.
    const times = [5, 1, 7, 3, 6, 2, 4];
    for (const t of times) await store.create(snapshot(`i${t}`, { createdAt: t * 1_000, updatedAt: t * 1_000 }), t);
    await store.create(snapshot('other', { workflow: 'invoices', createdAt: 9_000 }), null);
    for (const t of [2, 5, 7]) {
      const s = (await store.get(`i${t}`))!;
      await store.update(next(s, { status: 'COMPLETED', updatedAt: s.updatedAt + 10 }));
    }

    const seen: string[] = [];
    const pages: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ workflow: 'orders', limit: 3, ...(cursor ? { cursor } : {}) });
      pages.push(page.items.length);
      seen.push(...page.items.map((i) => i.instanceId));
      cursor = page.cursor;
    } while (cursor);

    expect(seen).toEqual(['i7', 'i6', 'i5', 'i4', 'i3', 'i2', 'i1']);
    expect(pages.slice(0, 3)).toEqual([3, 3, 1]);

    const completed = await store.list({ workflow: 'orders', status: 'COMPLETED' });
    expect(completed.items).toEqual([
      { instanceId: 'i7', workflow: 'orders', status: 'COMPLETED', createdAt: 7_000, updatedAt: 7_010 },
      { instanceId: 'i5', workflow: 'orders', status: 'COMPLETED', createdAt: 5_000, updatedAt: 5_010 },
      { instanceId: 'i2', workflow: 'orders', status: 'COMPLETED', createdAt: 2_000, updatedAt: 2_010 },
    ]);
    const running = await store.list({ workflow: 'orders', status: 'RUNNING' });
    expect(running.items.map((i) => i.instanceId)).toEqual(['i6', 'i4', 'i3', 'i1']);
    expect((await store.list({ workflow: 'orders', status: 'FAILED' })).items).toEqual([]);
    expect((await store.list({ workflow: 'invoices' })).items.map((i) => i.instanceId)).toEqual(['other']);
  });

  it('list rejects a cursor it did not produce', async () => {
    await expect(store.list({ workflow: 'orders', cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(InvalidCursorError);
  });

  it('due lists instances whose dueAt is at or before now, earliest first, and drops them once dueAt is gone', async () => {
    await store.create(snapshot('late', { dueAt: 300 }), null);
    await store.create(snapshot('early', { dueAt: 100 }), null);
    await store.create(snapshot('mid', { dueAt: 200 }), null);
    await store.create(snapshot('none'), null);

    expect(await store.due(50, 10)).toEqual([]);
    expect(await store.due(200, 10)).toEqual([
      { instanceId: 'early', dueAt: 100 },
      { instanceId: 'mid', dueAt: 200 },
    ]);
    expect(await store.due(1_000, 1)).toEqual([{ instanceId: 'early', dueAt: 100 }]);

    // The timer fired: the snapshot no longer has a dueAt.
    const { dueAt: _fired, ...early } = (await store.get('early'))!;
    await store.update(next(early));
    // Another timer moved later.
    await store.update(next((await store.get('mid'))!, { dueAt: 900 }));

    expect(await store.due(1_000, 10)).toEqual([
      { instanceId: 'late', dueAt: 300 },
      { instanceId: 'mid', dueAt: 900 },
    ]);
    expect(await store.due(500, 10)).toEqual([{ instanceId: 'late', dueAt: 300 }]);
  });
  it('appends history entries and reads them back in order, paginated, idempotently', async () => {
    const entries = Array.from({ length: 30 }, (_, i) => ({
      at: 1_000 + Math.floor(i / 3),
      version: 1 + Math.floor(i / 3),
      type: 'task-completed' as const,
      key: `t${i}`,
      attempt: 1,
    }));
    // One append per checkpoint (version), as the engine writes them.
    for (let v = 0; v < 10; v++) await store.appendHistory('h-1', entries.slice(v * 3, v * 3 + 3));
    await store.appendHistory('h-1', entries.slice(27)); // a repeated write changes nothing
    const first = await store.readHistory('h-1', { limit: 12 });
    expect(first.entries).toHaveLength(12);
    expect(first.cursor).toBeDefined();
    const rest = await store.readHistory('h-1', { cursor: first.cursor as string });
    const all = [...first.entries, ...rest.entries];
    expect(all).toHaveLength(30);
    expect(new Set(all.map((e) => e.key)).size).toBe(30);
    expect(all.map((e) => e.at)).toEqual([...all.map((e) => e.at)].sort((a, b) => a - b));
    expect((await store.readHistory('h-other')).entries).toEqual([]);
  });
});

describe('dynalite persistence', () => {
  let dir: string;
  let db: Dynalite | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-dynalite-'));
  });
  afterEach(async () => {
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps instances and values across a close and a restart on the same path', async () => {
    db = await startDynalite({ path: dir });
    let store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
    const s = snapshot('kept', { dueAt: 10 });
    await store.create(s, { input: '✓' });
    await store.putValue('kept', 'out:a', [1, 2, 3]);
    await db.close();

    db = await startDynalite({ path: dir });
    store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
    expect(await store.get('kept')).toEqual(s);
    expect(await store.getValues('kept', [s.inputId, 'out:a'])).toEqual(
      new Map<string, unknown>([
        [s.inputId, { input: '✓' }],
        ['out:a', [1, 2, 3]],
      ]),
    );
    expect(await store.due(10, 5)).toEqual([{ instanceId: 'kept', dueAt: 10 }]);
    // Still conditional after the restart.
    await expect(store.create(s, null)).rejects.toBeInstanceOf(InstanceExistsError);
  });
});
