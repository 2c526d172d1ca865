import { describe, expect, it } from 'vitest';
import { encodeCursor, historyScope, listScope } from '../../shared/adapters/cursor.ts';
import type { HistoryEntry } from '../../shared/engine/history.ts';
import type { Snapshot } from '../../shared/engine/snapshot.ts';
import { InvalidCursorError } from '../../shared/ports/errors.ts';
import type { InstanceStore } from '../../shared/ports/instance-store.ts';

/**
 * What the contract uses of a store: the two paged reads, and the writes that
 * seed them. Structural, so the contract follows the stores' write path
 * without depending on the rest of the port.
 */
export type CursorStore = Pick<InstanceStore, 'list' | 'readHistory' | 'create' | 'append'>;

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/**
 * Cursors no store ever hands out, for any listing or history: each one must
 * be refused with an {@link InvalidCursorError}, whatever the store.
 */
export const BAD_CURSORS: readonly (readonly [label: string, cursor: string])[] = [
  ['not base64url JSON', 'garbage'],
  ['base64 of {}', 'e30'],
  ['base64 of []', 'W10'],
  ['base64 of null', b64('null')],
  ['base64 of a number', b64('3')],
  ['characters outside base64url', 'e30=!'],
  ['the empty string', ''],
  ['a bare offset (the old memory cursor)', '3'],
  ['a bare DynamoDB key (the old DynamoDB cursor)', b64(JSON.stringify({ pk: { S: 'I#a' }, sk: { S: 'S' } }))],
  ['an unknown version', b64(JSON.stringify({ v: 2, s: listScope({ workflow: 'orders' }), p: { offset: 1 } }))],
  ['an extra top-level field', b64(JSON.stringify({ v: 1, s: listScope({ workflow: 'orders' }), p: {}, x: 1 }))],
  ['a scope that is an array', b64(JSON.stringify({ v: 1, s: ['orders'], p: { offset: 1 } }))],
  ['a position that is null', b64(JSON.stringify({ v: 1, s: listScope({ workflow: 'orders' }), p: null }))],
  ['an offset that is negative', encodeCursor(listScope({ workflow: 'orders' }), { offset: -1 })],
  ['an offset that is a string', encodeCursor(listScope({ workflow: 'orders' }), { offset: '1' })],
  ['an offset that is a fraction', encodeCursor(listScope({ workflow: 'orders' }), { offset: 1.5 })],
  [
    'a listing key whose partition is another workflow',
    encodeCursor(listScope({ workflow: 'orders' }), { pk: 'I#x', sk: 'S', wfpk: 'W#invoices', wfsk: '0#x' }),
  ],
  [
    'a listing key with a key attribute that is a number',
    encodeCursor(listScope({ workflow: 'orders' }), { pk: 'I#x', sk: 'S', wfpk: 'W#orders', wfsk: 1 }),
  ],
  [
    'a history position that is a DynamoDB key',
    encodeCursor(historyScope('orders-1'), { pk: 'I#orders-2', sk: 'H#0' }),
  ],
  ['a history position with a negative entry', encodeCursor(historyScope('orders-1'), { seq: -1, skip: 0 })],
];

function snapshot(instanceId: string, workflow: string, createdAt: number): Snapshot {
  return {
    instanceId,
    workflow,
    defHash: 'h1',
    inputId: `input:${instanceId}-n1`,
    status: 'RUNNING',
    redispatchAfterMs: 60_000,
    version: 0,
    createdAt,
    updatedAt: createdAt,
    tasks: {},
    waits: {},
    forks: {},
    maps: {},
    signals: {},
  };
}

const entries = (n: number): HistoryEntry[] =>
  Array.from({ length: n }, (_, i) => ({ at: 1_000 + i, type: 'task-completed', key: `t${i}`, version: i + 1 }));

/** Two workflows of three instances each; two instances with five history entries each. */
async function seed(store: CursorStore): Promise<void> {
  for (const workflow of ['orders', 'invoices']) {
    for (let i = 1; i <= 3; i++) await store.create(snapshot(`${workflow}-${i}`, workflow, i * 1_000), null, []);
  }
  // Five history entries each: one per journal entry.
  for (const id of ['orders-1', 'orders-2']) {
    for (const [i, e] of entries(5).entries()) {
      await store.append(id, { seq: i + 1, at: e.at, events: [{ type: 'pause' }], history: [e] });
    }
  }
}

async function expectRefused(read: Promise<unknown>): Promise<void> {
  const error = await read.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidCursorError);
  expect((error as InvalidCursorError).parameter).toBe('cursor');
  expect((error as InvalidCursorError).message).toMatch(/^cursor: /);
}

/**
 * The cursor contract every instance store is held to: the cursors it hands
 * out page correctly, and any other cursor (bad, or another listing's or
 * another instance's) is refused with an {@link InvalidCursorError}.
 *
 * @example
 * ```ts
 * describeCursorContract('MemoryInstanceStore', async () => ({ store: new MemoryInstanceStore(), close: async () => {} }));
 * ```
 */
export function describeCursorContract(
  name: string,
  open: () => Promise<{ readonly store: CursorStore; readonly close: () => Promise<void> }>,
): void {
  describe(`${name} cursors`, () => {
    async function withStore(body: (store: CursorStore) => Promise<void>): Promise<void> {
      const { store, close } = await open();
      try {
        await seed(store);
        await body(store);
      } finally {
        await close();
      }
    }

    it('list and readHistory refuse every malformed or crafted cursor', async () => {
      await withStore(async (store) => {
        for (const [label, cursor] of BAD_CURSORS) {
          await expectRefused(store.list({ workflow: 'orders', cursor })).catch((e: Error) => {
            throw new Error(`list, ${label}: ${e.message}`);
          });
          await expectRefused(store.list({ workflow: 'orders', status: 'RUNNING', cursor })).catch((e: Error) => {
            throw new Error(`list by status, ${label}: ${e.message}`);
          });
          await expectRefused(store.readHistory('orders-1', { cursor })).catch((e: Error) => {
            throw new Error(`readHistory, ${label}: ${e.message}`);
          });
        }
      });
    });

    it('list refuses a cursor of another workflow, another status filter, or a history', async () => {
      await withStore(async (store) => {
        const invoices = (await store.list({ workflow: 'invoices', limit: 1 })).cursor;
        const running = (await store.list({ workflow: 'orders', status: 'RUNNING', limit: 1 })).cursor;
        const unfiltered = (await store.list({ workflow: 'orders', limit: 1 })).cursor;
        const history = (await store.readHistory('orders-1', { limit: 2 })).cursor;
        for (const c of [invoices, running, unfiltered, history]) expect(c).toBeTypeOf('string');

        await expectRefused(store.list({ workflow: 'orders', cursor: invoices as string }));
        await expectRefused(store.list({ workflow: 'orders', cursor: running as string }));
        await expectRefused(store.list({ workflow: 'orders', status: 'COMPLETED', cursor: running as string }));
        await expectRefused(store.list({ workflow: 'orders', status: 'RUNNING', cursor: unfiltered as string }));
        await expectRefused(store.list({ workflow: 'orders', cursor: history as string }));
      });
    });

    it('readHistory refuses a cursor of another instance or of a listing', async () => {
      await withStore(async (store) => {
        const other = (await store.readHistory('orders-2', { limit: 2 })).cursor;
        const listing = (await store.list({ workflow: 'orders', limit: 1 })).cursor;
        await expectRefused(store.readHistory('orders-1', { cursor: other as string }));
        await expectRefused(store.readHistory('orders-1', { cursor: listing as string }));
      });
    });

    it('a cursor it handed out still reads the next page', async () => {
      await withStore(async (store) => {
        const first = await store.list({ workflow: 'orders', limit: 2 });
        expect(first.items.map((i) => i.instanceId)).toEqual(['orders-3', 'orders-2']);
        const second = await store.list({ workflow: 'orders', limit: 2, cursor: first.cursor as string });
        expect(second.items.map((i) => i.instanceId)).toEqual(['orders-1']);

        const running = await store.list({ workflow: 'orders', status: 'RUNNING', limit: 1 });
        const next = await store.list({
          workflow: 'orders',
          status: 'RUNNING',
          limit: 1,
          cursor: running.cursor as string,
        });
        expect(next.items.map((i) => i.instanceId)).toEqual(['orders-2']);

        const h1 = await store.readHistory('orders-1', { limit: 2 });
        expect(h1.entries.map((e) => e.key)).toEqual(['t0', 't1']);
        const h2 = await store.readHistory('orders-1', { limit: 2, cursor: h1.cursor as string });
        expect(h2.entries.map((e) => e.key)).toEqual(['t2', 't3']);
      });
    });
  });
}
