import { InvalidObjectKeyError } from './errors.ts';

/**
 * Where values too large for a store item go (see `runtime/payloads.ts`):
 * S3 on AWS, fauxqs's S3 API in integration tests, a folder under
 * `.sayiir/` for the embedded default, a map in unit tests.
 *
 * Failure semantics, the same for every adapter (one contract suite holds
 * them to it, `test/support/object-store-contract.ts`):
 * - A key breaking {@link assertObjectKey}'s rule is refused with an
 *   `InvalidObjectKeyError` before any I/O, by every method.
 * - `put` is atomic and overwrites: a reader sees the previous object or the
 *   new one in full, never a mix or a prefix. The last `put` wins, so two
 *   writers racing on one key leave one writer's bytes, which need not be the
 *   ones the caller goes on to commit: give each write attempt its own key.
 * - `get` of a key that holds nothing throws `ObjectNotFoundError`; a `get`
 *   after a `put` resolved returns its bytes (read-after-write, as S3 gives).
 * - `delete` is idempotent: deleting a missing key resolves; so is
 *   `deleteFolder`, which deletes nothing the second time.
 * - Any other failure (network, throttling, permissions) is the platform's
 *   own error, left as it is: retryable unless the caller knows better.
 *
 * @example
 * ```ts
 * await store.put('order-17/out:charge', JSON.stringify(receipt));
 * const bytes = await store.get('order-17/out:charge');
 * await store.delete('order-17/out:charge');
 * await store.deleteFolder('order-17'); // every object left under `order-17/`
 * ```
 */
export interface ObjectStore {
  /**
   * Stores `body` under `key`, replacing what was there. A string is stored
   * as its UTF-8 bytes. Resolves once the object is durable (S3: the PUT
   * returned; folder: file and directory fsynced).
   *
   * @throws {InvalidObjectKeyError} the key breaks the key rule; nothing was written.
   */
  put(key: string, body: Uint8Array | string): Promise<void>;

  /**
   * The bytes stored under `key` (a copy the caller may keep and modify).
   *
   * @throws {ObjectNotFoundError} nothing is stored under `key`.
   * @throws {InvalidObjectKeyError} the key breaks the key rule.
   */
  get(key: string): Promise<Uint8Array>;

  /**
   * Removes the object under `key`; a missing one is not an error.
   *
   * @throws {InvalidObjectKeyError} the key breaks the key rule.
   */
  delete(key: string): Promise<void>;

  /**
   * Deletes every object whose key starts with `<segment>/` (the objects of
   * one instance: payload keys are `<instanceId>/<valueId>.<nonce>`), and no
   * other: not `<segment>` itself, not `<segment>x/…`. Idempotent: deleting
   * a folder with no objects deletes nothing. Not atomic: a failure part way
   * leaves some of the objects, and a second call deletes the rest.
   *
   * @returns how many objects it deleted.
   * @throws {InvalidObjectKeyError} `segment` is not one valid key segment
   *   (see {@link assertObjectKeySegment}); nothing was deleted.
   * @example
   * ```ts
   * const deleted = await store.deleteFolder('order-17'); // 3, then 0 the next time
   * ```
   */
  deleteFolder(segment: string): Promise<number>;
}

/** Longest key, in characters (= bytes: keys are ASCII). S3's own limit is 1,024 bytes. */
export const OBJECT_KEY_MAX_LENGTH = 1024;

/**
 * One key segment: ASCII letters and digits and `- _ . : @ [ ]`. That is
 * exactly what the engine's ids use (instance ids `[A-Za-z0-9_.:-]`, value
 * ids such as `out:ship/label[3]@2`, UUID nonces); every one of these is
 * valid in an S3 key and passes through the SDK's URI encoding untouched,
 * and none needs escaping in XML or a shell.
 */
const SEGMENT = /^[A-Za-z0-9_.:@[\]-]+$/;

/**
 * Checks a key against the rule every adapter enforces: 1 to
 * {@link OBJECT_KEY_MAX_LENGTH} characters; segments separated by `/`, each
 * non-empty (no leading, trailing or doubled `/`, so never an absolute path)
 * and neither `.` nor `..`; segment characters as {@link SEGMENT} says.
 * Engine keys look like `<instanceId>/<valueId>`.
 *
 * @throws {InvalidObjectKeyError} naming the first rule the key breaks.
 * @example
 * ```ts
 * assertObjectKey('order-17/out:ship/label[3]'); // ok
 * assertObjectKey('../etc/passwd'); // throws InvalidObjectKeyError
 * ```
 */
export function assertObjectKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidObjectKeyError(String(key), 'empty');
  if (key.length > OBJECT_KEY_MAX_LENGTH) {
    throw new InvalidObjectKeyError(key, `longer than ${OBJECT_KEY_MAX_LENGTH} characters`);
  }
  for (const segment of key.split('/')) {
    if (segment === '') throw new InvalidObjectKeyError(key, "empty segment (leading, trailing or doubled '/')");
    if (segment === '.' || segment === '..') throw new InvalidObjectKeyError(key, `'${segment}' segment`);
    if (!SEGMENT.test(segment)) {
      throw new InvalidObjectKeyError(key, "only ASCII letters, digits, '/' and '-_.:@[]' are allowed");
    }
  }
}

/**
 * Checks that `segment` is one segment of a key, as {@link assertObjectKey}
 * checks each of a key's: non-empty, no `/`, neither `.` nor `..`, only the
 * segment characters (the argument of `deleteFolder`).
 *
 * @throws {InvalidObjectKeyError} naming the first rule the segment breaks.
 * @example
 * ```ts
 * assertObjectKeySegment('order-17'); // ok
 * assertObjectKeySegment('a/b'); // throws InvalidObjectKeyError
 * ```
 */
export function assertObjectKeySegment(segment: string): void {
  assertObjectKey(segment);
  if (segment.includes('/')) throw new InvalidObjectKeyError(segment, "one segment only (no '/')");
}
