/**
 * The payload codec: a value (run input, task output, signal payload) as it
 * goes into a store item, either inline as its JSON text or, over
 * {@link PAYLOAD_OFFLOAD_THRESHOLD_BYTES}, as a reference to an object in an
 * {@link ObjectStore}. So no value size below the object store's own limits
 * (5 GB per S3 PUT) fails for want of item space.
 */
import { createHash } from 'node:crypto';
import { PayloadIntegrityError } from '../engine/errors.ts';
import { fromJson, toJson } from '../engine/json.ts';
import { assertObjectKey, type ObjectStore } from '../ports/object-store.ts';

/**
 * Largest JSON text, in UTF-8 bytes, kept inline in an item: 16 KiB
 * (16,384 bytes). A value of exactly this size stays inline; one byte more
 * goes to the object store.
 *
 * Why 16 KiB (us-east-1 list prices, on-demand):
 * - Writes. DynamoDB bills 1 write request unit per started KB of item
 *   (2 in a transaction), $0.625 per million. An S3 PUT is $0.005 per
 *   1,000 ($5 per million), i.e. the price of 8 KB written inline. Reads:
 *   1 read unit per 4 KB (strongly consistent) at $0.125 per million
 *   against $0.40 per million S3 GETs. A value written once and read once
 *   costs the same either way at about 9-10 KB (inline 10 KB: 10 + 3 units
 *   ≈ $6.6 per million values; offloaded: a 1 KB reference plus PUT and
 *   GET ≈ $6.2 per million). At 16 KiB inline costs about $4 per million
 *   values more; at 64 KB it would cost 7 times the offload.
 * - Latency. An offloaded value costs a PUT on write and a GET on each read,
 *   each tens of milliseconds (AWS's median for small S3 requests), against
 *   single-digit milliseconds for the DynamoDB write that happens anyway.
 *   Most task outputs are small JSON, so a threshold above the cost
 *   break-even keeps the S3 round trips off the common path for a few
 *   dollars per million large values.
 * - Room. An item is at most 400 KB, and the adapters refuse items over
 *   `MAX_ITEM_BYTES` (350,000). A journal entry holds keys, events, history
 *   lines and an error's stack beside the value; 16 KiB leaves all of that
 *   ample room, and even twenty inline values fit in one item.
 * - Throughput. All items of an instance share one partition, which takes
 *   1,000 write units per second: a 16 KiB value uses 1.6 % of it, a
 *   300 KB one would use 30 %, throttling the run's own commits.
 * - Storage barely matters at these sizes and retentions ($0.25 per GB-month
 *   in DynamoDB, $0.023 in S3 Standard: 1 KB kept a month costs less than
 *   half its write).
 */
export const PAYLOAD_OFFLOAD_THRESHOLD_BYTES = 16 * 1024;

/** Where an offloaded value lives, and how to tell its bytes are the right ones. */
export interface PayloadRef {
  /** The object's key. */
  readonly key: string;
  /** Length of the JSON text in UTF-8 bytes. */
  readonly size: number;
  /** SHA-256 of those bytes, lowercase hex; checked on decode when present. */
  readonly sha256?: string;
}

/** A value as stored in an item: its JSON text, or a reference to it. */
export type EncodedPayload = { readonly inline: string } | { readonly ref: PayloadRef };

/** Options of {@link encodePayload}. */
export interface EncodePayloadOptions {
  /** Where a value over the threshold goes. */
  readonly store: ObjectStore;
  /**
   * The object key if the value is offloaded; checked by `assertObjectKey`
   * for every value, offloaded or not, so a bad key fails at once. `put`
   * overwrites, so the key must be unique to this write attempt (e.g.
   * `<instanceId>/<valueId>.<attempt nonce>`): two attempts racing to commit
   * one value under one key could leave the committed reference pointing at
   * the loser's bytes (decode then throws a `PayloadIntegrityError`).
   */
  readonly key: string;
  /**
   * Inline limit in UTF-8 bytes of JSON text; keep it within the item
   * budget of the store that holds the result.
   * @default PAYLOAD_OFFLOAD_THRESHOLD_BYTES
   */
  readonly threshold?: number;
  /**
   * What the value is, for a serialization error (`output of task 'charge'`).
   * @default `value '<key>'`
   */
  readonly subject?: string;
}

const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Encodes a value for an item: inline when its JSON text is at most
 * `threshold` bytes, else uploaded under `key` and referenced.
 *
 * @throws {PayloadSerializationError} JSON cannot express the value (terminal: never retried).
 * @throws {InvalidObjectKeyError} the key breaks the object store's key rule.
 * @throws {RangeError} the threshold is not a non-negative integer.
 * @example
 * ```ts
 * const encoded = await encodePayload(output, { store, key: `${instanceId}/out:charge.${nonce}` });
 * // { inline: '{"id":"ch_1"}' } or { ref: { key, size: 20480, sha256: '…' } }
 * const value = await decodePayload(encoded, store);
 * ```
 */
export async function encodePayload(value: unknown, options: EncodePayloadOptions): Promise<EncodedPayload> {
  const threshold = options.threshold ?? PAYLOAD_OFFLOAD_THRESHOLD_BYTES;
  if (!Number.isSafeInteger(threshold) || threshold < 0) {
    throw new RangeError(`payload threshold must be a non-negative integer, got ${threshold}`);
  }
  assertObjectKey(options.key);
  const text = toJson(value, options.subject ?? `value '${options.key}'`);
  if (Buffer.byteLength(text, 'utf8') <= threshold) return { inline: text };
  const bytes = Buffer.from(text, 'utf8');
  await options.store.put(options.key, bytes);
  return { ref: { key: options.key, size: bytes.byteLength, sha256: sha256Hex(bytes) } };
}

/**
 * The value an {@link encodePayload} result stands for, fetching an
 * offloaded one and checking its size and SHA-256.
 *
 * @throws {ObjectNotFoundError} the referenced object is gone (deleted, expired).
 * @throws {PayloadIntegrityError} its bytes are not the referenced ones (terminal).
 * @throws {SyntaxError} the text is not JSON: the item or object holds something foreign.
 * @example
 * ```ts
 * const input = await decodePayload(stored, store);
 * ```
 */
export async function decodePayload(encoded: EncodedPayload, store: ObjectStore): Promise<unknown> {
  if ('inline' in encoded) return fromJson(encoded.inline);
  const { key, size, sha256 } = encoded.ref;
  const bytes = await store.get(key);
  if (bytes.byteLength !== size) {
    throw new PayloadIntegrityError(key, `${size} bytes`, `${bytes.byteLength} bytes`);
  }
  if (sha256 !== undefined) {
    const actual = sha256Hex(bytes);
    if (actual !== sha256) throw new PayloadIntegrityError(key, `SHA-256 ${sha256}`, `SHA-256 ${actual}`);
  }
  return fromJson(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
}

/**
 * Whether a stored value has the shape of an {@link EncodedPayload}: for
 * code that reads items it did not write (a table holding something foreign).
 *
 * @example
 * ```ts
 * if (!isEncodedPayload(parsed)) throw new MalformedItemError('val', 'S');
 * ```
 */
export function isEncodedPayload(value: unknown): value is EncodedPayload {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { inline?: unknown; ref?: unknown };
  if (typeof v.inline === 'string') return v.ref === undefined;
  if (typeof v.ref !== 'object' || v.ref === null || v.inline !== undefined) return false;
  const ref = v.ref as { key?: unknown; size?: unknown; sha256?: unknown };
  return (
    typeof ref.key === 'string' &&
    Number.isSafeInteger(ref.size) &&
    (ref.size as number) >= 0 &&
    (ref.sha256 === undefined || typeof ref.sha256 === 'string')
  );
}
