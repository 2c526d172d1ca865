import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidObjectKeyError, ObjectNotFoundError } from '../../shared/ports/errors.ts';
import { OBJECT_KEY_MAX_LENGTH, type ObjectStore } from '../../shared/ports/object-store.ts';

/** Keys every adapter must refuse, with why. */
export const INVALID_KEYS: readonly (readonly [label: string, key: string])[] = [
  ['the empty string', ''],
  ['an absolute path', '/etc/passwd'],
  ['a parent segment', '../outside'],
  ['a parent segment in the middle', 'i-1/../../outside'],
  ['a current-directory segment', 'i-1/./out'],
  ['a lone dot', '.'],
  ['a trailing slash', 'i-1/'],
  ['a doubled slash', 'i-1//out'],
  ['a backslash (a Windows separator)', 'i-1\\..\\out'],
  ['a drive letter path', 'C:\\Windows'],
  ['a space', 'i 1/out'],
  ['a non-ASCII letter', 'i-1/é'],
  ['a percent escape', 'i-1%2F..'],
  ['a NUL byte', 'i-1/out\u0000'],
  ['a newline', 'i-1/out\n'],
  ['a query-like character', 'i-1/out?x=1'],
  ['a fragment-like character', 'i-1/out#x'],
  ['one character over the limit', 'k'.repeat(OBJECT_KEY_MAX_LENGTH + 1)],
];

/** Keys every adapter must accept, each holding its own object. */
export const VALID_KEYS: readonly string[] = [
  'i-1/out:ship/label[3]@2',
  'order_17.a:b/input:8f14e45f-ceea-467f-a9e6-3f1c9d7b2c10',
  'a',
  'A',
  'a/b',
  'a/b/c',
  '.hidden/..x/...',
  'k'.repeat(OBJECT_KEY_MAX_LENGTH),
];

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/**
 * The `ObjectStore` port's contract (see `shared/ports/object-store.ts`),
 * for one adapter. `open` gives a fresh, empty store per test.
 *
 * @example
 * ```ts
 * describeObjectStoreContract('MemoryObjectStore', async () => ({ store: new MemoryObjectStore(), close: async () => {} }));
 * ```
 */
export function describeObjectStoreContract(
  name: string,
  open: () => Promise<{ readonly store: ObjectStore; readonly close: () => Promise<void> }>,
): void {
  describe(`${name} (ObjectStore contract)`, () => {
    async function withStore(body: (store: ObjectStore) => Promise<void>): Promise<void> {
      const { store, close } = await open();
      try {
        await body(store);
      } finally {
        await close();
      }
    }

    it('returns the exact bytes of a 5 MB object', async () => {
      await withStore(async (store) => {
        const body = randomBytes(5 * 1024 * 1024);
        await store.put('i-1/out:big', body);
        const back = await store.get('i-1/out:big');
        expect(back.byteLength).toBe(body.byteLength);
        expect(Buffer.compare(Buffer.from(back), body)).toBe(0);
      });
    });

    it('stores a string as its UTF-8 bytes', async () => {
      await withStore(async (store) => {
        const value = '{"name":"Zoë","note":"✓ 𝄞"}';
        await store.put('i-1/out:text', value);
        const back = await store.get('i-1/out:text');
        expect(Buffer.from(back).equals(Buffer.from(value, 'utf8'))).toBe(true);
        expect(text(back)).toBe(value);
      });
    });

    it('stores an empty object', async () => {
      await withStore(async (store) => {
        await store.put('i-1/empty', new Uint8Array(0));
        expect((await store.get('i-1/empty')).byteLength).toBe(0);
      });
    });

    it('overwrites: the last put wins, with no trace of a longer previous object', async () => {
      await withStore(async (store) => {
        await store.put('i-1/out:a', 'first, and longer than the second');
        await store.put('i-1/out:a', 'second');
        expect(text(await store.get('i-1/out:a'))).toBe('second');
      });
    });

    it('leaves one whole object when puts race on a key', async () => {
      await withStore(async (store) => {
        const bodies = ['a', 'b', 'c', 'd'].map((c) => c.repeat(256 * 1024));
        await Promise.all(bodies.map((b) => store.put('i-1/out:raced', b)));
        expect(bodies).toContain(text(await store.get('i-1/out:raced')));
      });
    });

    it('throws ObjectNotFoundError, naming the key, for a key never put', async () => {
      await withStore(async (store) => {
        const err = await thrown(store.get('i-1/out:never'));
        expect(err).toBeInstanceOf(ObjectNotFoundError);
        expect((err as ObjectNotFoundError).key).toBe('i-1/out:never');
      });
    });

    it('deletes an object, and only that one; deleting a missing key resolves', async () => {
      await withStore(async (store) => {
        await store.put('a/b', 'parent');
        await store.put('a/b/c', 'child');
        await store.put('a/bc', 'sibling');
        await store.delete('a/b');
        await expect(store.get('a/b')).rejects.toBeInstanceOf(ObjectNotFoundError);
        expect(text(await store.get('a/b/c'))).toBe('child');
        expect(text(await store.get('a/bc'))).toBe('sibling');
        await expect(store.delete('a/b')).resolves.toBeUndefined();
        await expect(store.delete('never/put')).resolves.toBeUndefined();
      });
    });

    it('can put a key again after deleting it', async () => {
      await withStore(async (store) => {
        await store.put('i-1/out:a', 'one');
        await store.delete('i-1/out:a');
        await store.put('i-1/out:a', 'two');
        expect(text(await store.get('i-1/out:a'))).toBe('two');
      });
    });

    it('keeps keys that differ only in case, or where one extends another, apart', async () => {
      await withStore(async (store) => {
        for (const key of VALID_KEYS) await store.put(key, `value of ${key}`);
        for (const key of VALID_KEYS) expect(text(await store.get(key)), key).toBe(`value of ${key}`);
      });
    });

    it('refuses every invalid key in put, get and delete with InvalidObjectKeyError, writing nothing', async () => {
      await withStore(async (store) => {
        for (const [label, key] of INVALID_KEYS) {
          for (const [method, call] of [
            ['put', () => store.put(key, 'x')],
            ['get', () => store.get(key)],
            ['delete', () => store.delete(key)],
          ] as const) {
            const err = await thrown(call());
            expect(err, `${method}: ${label}`).toBeInstanceOf(InvalidObjectKeyError);
            expect((err as InvalidObjectKeyError).reason.length, `${method}: ${label}`).toBeGreaterThan(0);
          }
        }
        // What a path-joining adapter would have written for `../outside` and `/etc/passwd`.
        await expect(store.get('outside')).rejects.toBeInstanceOf(ObjectNotFoundError);
        await expect(store.get('etc/passwd')).rejects.toBeInstanceOf(ObjectNotFoundError);
      });
    });

    it("deleteFolder deletes the objects under '<segment>/', and no other, and returns how many", async () => {
      await withStore(async (store) => {
        const mine = ['i-1/input.n1', 'i-1/j1.n2', 'i-1/out:ship/label[3]@2.n3'];
        const others = ['i-10/input.n1', 'i-1x/input.n1', 'i-2/i-1/x', 'i-1', 'I-1/input.n1'];
        for (const key of [...mine, ...others]) await store.put(key, `value of ${key}`);
        expect(await store.deleteFolder('i-1')).toBe(mine.length);
        for (const key of mine) await expect(store.get(key), key).rejects.toBeInstanceOf(ObjectNotFoundError);
        for (const key of others) expect(text(await store.get(key)), key).toBe(`value of ${key}`);
      });
    });

    it('deleteFolder is idempotent: a second call, or a folder never written, deletes nothing', async () => {
      await withStore(async (store) => {
        await store.put('i-1/a', 'a');
        await store.put('i-1/b', 'b');
        expect(await store.deleteFolder('i-1')).toBe(2);
        expect(await store.deleteFolder('i-1')).toBe(0);
        expect(await store.deleteFolder('never')).toBe(0);
        // The folder can be written again afterwards.
        await store.put('i-1/a', 'again');
        expect(text(await store.get('i-1/a'))).toBe('again');
      });
    });

    it('deleteFolder refuses anything but one valid key segment with InvalidObjectKeyError, deleting nothing', async () => {
      await withStore(async (store) => {
        await store.put('a/b/c', 'kept');
        await store.put('x/y', 'kept');
        for (const segment of ['', 'a/b', '..', '.', '/a', 'a/', 'i 1', 'é', 'k'.repeat(OBJECT_KEY_MAX_LENGTH + 1)]) {
          const err = await thrown(store.deleteFolder(segment));
          expect(err, JSON.stringify(segment)).toBeInstanceOf(InvalidObjectKeyError);
        }
        expect(text(await store.get('a/b/c'))).toBe('kept');
        expect(text(await store.get('x/y'))).toBe('kept');
      });
    });

    it('hands out copies: changing a put buffer or a got buffer changes nothing stored', async () => {
      await withStore(async (store) => {
        const body = Buffer.from('original');
        await store.put('i-1/out:a', body);
        body.fill(0);
        const first = await store.get('i-1/out:a');
        first.fill(0);
        expect(text(await store.get('i-1/out:a'))).toBe('original');
      });
    });
  });
}
