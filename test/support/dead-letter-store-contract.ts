import { describe, expect, it } from 'vitest';
import { encodeCursor, encodeDeadLetterCursor } from '../../shared/adapters/cursor.ts';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import {
  type DeadLetter,
  type DeadLetterStore,
  deadLetterId,
  type MalformedDeadLetter,
  type TaskDeadLetter,
} from '../../shared/ports/dead-letter-store.ts';
import { InvalidCursorError } from '../../shared/ports/errors.ts';
import { BAD_CURSORS } from './cursor-contract.ts';

const dispatch = (over: Partial<Dispatch> = {}): Dispatch => ({
  instanceId: 'inst-1',
  workflow: 'orders',
  key: 'charge',
  qid: 'charge',
  input: { all: [{ v: 'out:a' }, { c: 3 }] },
  attempt: 3,
  gen: 1,
  priority: 'normal',
  pool: 'default',
  ...over,
});

const engineLetter = (over: Partial<Dispatch> = {}, at = 1_000): TaskDeadLetter => ({
  origin: 'engine',
  dispatch: dispatch(over),
  at,
  reason: 'Error: card declined',
  attempts: over.attempt ?? 3,
  error: { name: 'Error', message: 'card declined' },
});

const malformed = (messageId: string, at = 1_000, pool = 'default'): MalformedDeadLetter => ({
  origin: 'malformed',
  pool,
  messageId,
  at,
  body: 'garbage',
  reason: 'not a dispatch',
});

const ids = (letters: readonly DeadLetter[]) => letters.map(deadLetterId);

/** Every page of a pool's listing, following the cursors. */
async function readAll(store: DeadLetterStore, pool: string, limit: number): Promise<DeadLetter[][]> {
  const pages: DeadLetter[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(pool, { limit, ...(cursor ? { cursor } : {}) });
    pages.push([...page.letters]);
    cursor = page.cursor;
  } while (cursor && pages.length < 100);
  return pages;
}

/**
 * The contract every dead-letter store is held to: identity (one record per
 * attempt and origin), newest-first paging with the shared cursor codec,
 * refusal of any other cursor, reads that change nothing, conditional delete.
 *
 * @example
 * ```ts
 * describeDeadLetterStoreContract('memory', async () => ({ store: new MemoryDeadLetterStore(), close: async () => {} }));
 * ```
 */
export function describeDeadLetterStoreContract(
  name: string,
  open: () => Promise<{ readonly store: DeadLetterStore; readonly close: () => Promise<void> }>,
): void {
  describe(`${name} dead-letter store`, () => {
    async function withStore(body: (store: DeadLetterStore) => Promise<void>): Promise<void> {
      const { store, close } = await open();
      try {
        await body(store);
      } finally {
        await close();
      }
    }

    it('keeps one record per instance, task, attempt and origin: the same attempt put twice is one', async () => {
      await withStore(async (store) => {
        expect(await store.put(engineLetter())).toBe('created');
        // Same attempt, later and with another reason: the first record stays as it was.
        expect(await store.put({ ...engineLetter({}, 5_000), reason: 'other' })).toBe('exists');
        // The task's second dead letter (a later attempt, after a manual retry) is a second record.
        expect(await store.put(engineLetter({ attempt: 6 }, 2_000))).toBe('created');
        // The same attempt moved by SQS is a record of its own.
        expect(await store.put({ ...engineLetter(), origin: 'redrive' })).toBe('created');
        const { letters } = await store.list('default');
        // Newest first; two records made at the same time come in id order, greatest first.
        const tied = [engineLetter(), { ...engineLetter(), origin: 'redrive' as const }].sort((a, b) =>
          deadLetterId(a) < deadLetterId(b) ? 1 : -1,
        );
        expect(ids(letters)).toEqual(ids([engineLetter({ attempt: 6 }, 2_000), ...tied]));
        expect(letters.find((l) => l.origin === 'engine' && l.dispatch.attempt === 3)?.reason).toBe(
          'Error: card declined',
        );
        expect(letters).toHaveLength(3);
      });
    });

    it('reads back a record as it was put, malformed ones included', async () => {
      await withStore(async (store) => {
        const task = engineLetter({ lane: { parent: 'items', item: 4 }, key: 'items[4].charge' });
        const bad = malformed('msg-1', 2_000);
        await store.put(task);
        await store.put(bad);
        expect((await store.list('default')).letters).toEqual([bad, task]);
        expect(await store.ofInstance('inst-1')).toEqual([task]);
      });
    });

    it('lists a pool newest first, pages through every record once with its cursors, and only that pool', async () => {
      await withStore(async (store) => {
        const letters: DeadLetter[] = [];
        for (let i = 0; i < 23; i++) {
          // Spread over many instances (so over every shard), some at the same time.
          letters.push(engineLetter({ instanceId: `run-${i}`, attempt: 1 + (i % 3) }, 10_000 + Math.floor(i / 2) * 10));
        }
        letters.push(malformed('m-1', 10_035), malformed('m-2', 99_999, 'gpu'));
        letters.push(engineLetter({ instanceId: 'run-gpu', pool: 'gpu' }, 50_000));
        for (const l of letters) await store.put(l);
        const pages = await readAll(store, 'default', 7);
        expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 3]);
        const listed = pages.flat();
        const expected = letters
          .filter((l) => (l.origin === 'malformed' ? l.pool : l.dispatch.pool) === 'default')
          .sort((a, b) => b.at - a.at || (deadLetterId(a) < deadLetterId(b) ? 1 : -1));
        expect(ids(listed)).toEqual(ids(expected));
        expect(new Set(ids(listed)).size).toBe(24);
        expect(ids((await store.list('gpu')).letters)).toEqual(
          ids([letters[24] as DeadLetter, letters[25] as DeadLetter]),
        );
        expect(await store.list('nope')).toEqual({ letters: [] });
      });
    });

    it('changes nothing when read: two reads in a row return the same page and cursor', async () => {
      await withStore(async (store) => {
        for (let i = 0; i < 5; i++) await store.put(engineLetter({ instanceId: `r${i}` }, 1_000 + i));
        const first = await store.list('default', { limit: 3 });
        const second = await store.list('default', { limit: 3 });
        expect(second).toEqual(first);
        expect(await store.ofInstance('r1')).toEqual(await store.ofInstance('r1'));
        expect(ids((await store.list('default', { limit: 10 })).letters)).toHaveLength(5);
      });
    });

    it('refuses every cursor it did not hand out for this pool', async () => {
      await withStore(async (store) => {
        for (let i = 0; i < 3; i++) await store.put(engineLetter({ instanceId: `r${i}`, pool: 'gpu' }, 1_000 + i));
        const gpu = (await store.list('gpu', { limit: 1 })).cursor;
        expect(gpu).toBeTypeOf('string');
        const bad: (readonly [string, string])[] = [
          ...BAD_CURSORS,
          ['a cursor of another pool', gpu as string],
          ['a position that is no sort key', encodeDeadLetterCursor('default', 'x')],
          ['a position with a short time', encodeDeadLetterCursor('default', '123#abc')],
          ['an offset position', encodeCursor({ pages: 'dead-letters', pool: 'default' }, { offset: 1 })],
        ];
        for (const [label, cursor] of bad) {
          const error = await store.list('default', { cursor, limit: 0 }).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, label).toBeInstanceOf(InvalidCursorError);
        }
        // A cursor of this pool still reads its next page.
        expect((await store.list('gpu', { limit: 5, cursor: gpu as string })).letters).toHaveLength(2);
      });
    });

    it('deletes a record on condition that it exists; a deleted attempt can be put again', async () => {
      await withStore(async (store) => {
        const a = engineLetter();
        const b = malformed('m-9');
        await store.put(a);
        await store.put(b);
        expect(await store.delete(a)).toBe(true);
        expect(await store.delete(a)).toBe(false);
        expect(await store.delete(b)).toBe(true);
        expect((await store.list('default')).letters).toEqual([]);
        expect(await store.ofInstance('inst-1')).toEqual([]);
        expect(await store.put(a)).toBe('created');
      });
    });

    it('lists the task records of one instance, in every pool, and no other', async () => {
      await withStore(async (store) => {
        await store.put(engineLetter({ key: 'a' }));
        await store.put(engineLetter({ key: 'b', pool: 'gpu' }));
        await store.put(engineLetter({ instanceId: 'inst-10', key: 'a' }));
        await store.put(malformed('inst-1'));
        const mine = await store.ofInstance('inst-1');
        expect(mine.map((l) => l.dispatch.key).sort()).toEqual(['a', 'b']);
      });
    });
  });
}
