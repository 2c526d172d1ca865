import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromJson as codecFromJson, toJson as codecToJson } from '../../../shared/adapters/dynamodb/codec.ts';
import { MemoryObjectStore } from '../../../shared/adapters/memory/object-store.ts';
import {
  isTerminal,
  PayloadIntegrityError,
  PayloadSerializationError,
  serializeError,
  TerminalError,
} from '../../../shared/engine/errors.ts';
import { fromJson, toJson } from '../../../shared/engine/json.ts';
import { InvalidObjectKeyError, ObjectNotFoundError } from '../../../shared/ports/errors.ts';
import {
  decodePayload,
  type EncodedPayload,
  encodePayload,
  isEncodedPayload,
  PAYLOAD_OFFLOAD_THRESHOLD_BYTES,
} from '../../../shared/runtime/payloads.ts';

const KEY = 'i-1/out:charge.n1';
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** A string value whose JSON text (with its two quotes) is exactly `bytes` UTF-8 bytes long. */
const stringOfJsonBytes = (bytes: number) => 'x'.repeat(bytes - 2);

async function serializationError(value: unknown, store = new MemoryObjectStore()): Promise<PayloadSerializationError> {
  const err = await encodePayload(value, { store, key: KEY }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(PayloadSerializationError);
  expect(store.keys()).toEqual([]);
  return err as PayloadSerializationError;
}

describe('the offload threshold', () => {
  it('is 16 KiB of UTF-8 JSON text', () => {
    expect(PAYLOAD_OFFLOAD_THRESHOLD_BYTES).toBe(16_384);
  });
});

describe('encodePayload', () => {
  it('keeps a small value inline as its JSON text and uploads nothing', async () => {
    const store = new MemoryObjectStore();
    const encoded = await encodePayload({ id: 'ch_1', amount: 42 }, { store, key: KEY });
    expect(encoded).toEqual({ inline: '{"id":"ch_1","amount":42}' });
    expect(store.keys()).toEqual([]);
  });

  it('keeps a value of exactly the threshold inline, and offloads one byte more', async () => {
    const store = new MemoryObjectStore();
    const at = stringOfJsonBytes(PAYLOAD_OFFLOAD_THRESHOLD_BYTES);
    expect(Buffer.byteLength(JSON.stringify(at))).toBe(PAYLOAD_OFFLOAD_THRESHOLD_BYTES);
    expect(await encodePayload(at, { store, key: KEY })).toEqual({ inline: JSON.stringify(at) });
    expect(store.keys()).toEqual([]);

    const over = stringOfJsonBytes(PAYLOAD_OFFLOAD_THRESHOLD_BYTES + 1);
    const encoded = await encodePayload(over, { store, key: KEY });
    expect(encoded).toEqual({
      ref: { key: KEY, size: PAYLOAD_OFFLOAD_THRESHOLD_BYTES + 1, sha256: sha256(JSON.stringify(over)) },
    });
    expect(store.keys()).toEqual([KEY]);
  });

  it('offloads a large value: the object holds its JSON text, and decoding gives the value back', async () => {
    const store = new MemoryObjectStore();
    const value = { rows: Array.from({ length: 2_000 }, (_, i) => ({ i, name: `row ${i}`, ok: i % 2 === 0 })) };
    const encoded = await encodePayload(value, { store, key: KEY });
    if (!('ref' in encoded)) throw new Error('expected a reference');
    const stored = Buffer.from(await store.get(KEY)).toString('utf8');
    expect(stored).toBe(JSON.stringify(value));
    expect(encoded.ref.size).toBe(Buffer.byteLength(stored));
    expect(await decodePayload(encoded, store)).toEqual(value);
  });

  it('measures UTF-8 bytes, not characters', async () => {
    const store = new MemoryObjectStore();
    // 6,000 characters of 3 bytes each: 18,002 bytes of JSON, under the threshold in characters.
    const value = '✓'.repeat(6_000);
    expect(JSON.stringify(value).length).toBeLessThan(PAYLOAD_OFFLOAD_THRESHOLD_BYTES);
    const encoded = await encodePayload(value, { store, key: KEY });
    expect(encoded).toMatchObject({ ref: { size: 18_002 } });
    expect(await decodePayload(encoded, store)).toBe(value);
  });

  it('honours a threshold given by the caller, 0 offloading everything', async () => {
    const store = new MemoryObjectStore();
    expect(await encodePayload([1, 2, 3], { store, key: KEY, threshold: 7 })).toEqual({ inline: '[1,2,3]' });
    expect(await encodePayload([1, 2, 3], { store, key: KEY, threshold: 6 })).toMatchObject({ ref: { size: 7 } });
    const encoded = await encodePayload(undefined, { store, key: 'i-1/out:undef', threshold: 0 });
    expect(encoded).toMatchObject({ ref: { size: 'undefined'.length } });
    expect(await decodePayload(encoded, store)).toBeUndefined();
  });

  it('encodes undefined the way the stores always have: the inline text undefined', async () => {
    const store = new MemoryObjectStore();
    const encoded = await encodePayload(undefined, { store, key: KEY });
    expect(encoded).toEqual({ inline: 'undefined' });
    expect(await decodePayload(encoded, store)).toBeUndefined();
  });

  it('refuses a threshold that is negative or not an integer', async () => {
    const store = new MemoryObjectStore();
    for (const threshold of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(encodePayload(1, { store, key: KEY, threshold }), String(threshold)).rejects.toBeInstanceOf(
        RangeError,
      );
    }
  });

  it('refuses a bad key even for a value that would stay inline', async () => {
    const store = new MemoryObjectStore();
    await expect(encodePayload(1, { store, key: '../x' })).rejects.toBeInstanceOf(InvalidObjectKeyError);
  });
});

describe('values JSON cannot express', () => {
  it('a BigInt: a terminal PayloadSerializationError that says where it is', async () => {
    const err = await serializationError({ order: { total: 10n } });
    expect(err.message).toBe(`value '${KEY}' cannot be stored as JSON: a BigInt at $.order.total`);
    expect(err.problem).toBe('a BigInt at $.order.total');
    expect(err.cause).toBeInstanceOf(TypeError);
    expect(err).toBeInstanceOf(TerminalError);
    expect(isTerminal(err)).toBe(true);
    expect(serializeError(err)).toMatchObject({ name: 'PayloadSerializationError', retryable: false });
  });

  it('a circular reference, located in arrays and odd keys too', async () => {
    const node: Record<string, unknown> = { name: 'n' };
    node.next = { items: [1, node] };
    expect((await serializationError(node)).problem).toBe('a circular reference at $.next.items[1]');
    const odd: Record<string, unknown> = {};
    odd['a key'] = odd;
    expect((await serializationError(odd)).problem).toBe('a circular reference at $["a key"]');
  });

  it('a toJSON that throws: its error is the cause', async () => {
    const boom = new Error('cannot export');
    const exporter = {
      toJSON(): never {
        throw boom;
      },
    };
    const err = await serializationError({ a: exporter });
    expect(err.cause).toBe(boom);
    expect(err.problem).toBe('cannot export');
  });

  it('nesting too deep for the stack', async () => {
    let deep: unknown[] = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const err = await serializationError(deep);
    expect(err.cause).toBeInstanceOf(RangeError);
    expect(err.problem).toMatch(/call stack/i);
  });

  it('names the subject the caller gives', async () => {
    const err = await encodePayload(1n, {
      store: new MemoryObjectStore(),
      key: KEY,
      subject: "output of task 'charge'",
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("output of task 'charge' cannot be stored as JSON: a BigInt at $");
  });

  it('but a value shared twice without a cycle is fine', async () => {
    const shared = { x: 1 };
    const store = new MemoryObjectStore();
    expect(await encodePayload({ a: shared, b: [shared] }, { store, key: KEY })).toEqual({
      inline: '{"a":{"x":1},"b":[{"x":1}]}',
    });
  });
});

describe('decodePayload', () => {
  const offloaded = async (store: MemoryObjectStore): Promise<EncodedPayload & { ref: unknown }> => {
    const encoded = await encodePayload({ blob: 'y'.repeat(20_000) }, { store, key: KEY });
    if (!('ref' in encoded)) throw new Error('expected a reference');
    return encoded;
  };

  it('refuses bytes of another size than the reference: PayloadIntegrityError (terminal)', async () => {
    const store = new MemoryObjectStore();
    const encoded = await offloaded(store);
    await store.put(KEY, '{"blob":"short"}');
    const err = await decodePayload(encoded, store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadIntegrityError);
    expect(isTerminal(err)).toBe(true);
    expect((err as PayloadIntegrityError).key).toBe(KEY);
  });

  it('refuses bytes of the same size but another SHA-256 (an overwrite by another attempt)', async () => {
    const store = new MemoryObjectStore();
    const encoded = await offloaded(store);
    await store.put(KEY, JSON.stringify({ blob: 'z'.repeat(20_000) }));
    await expect(decodePayload(encoded, store)).rejects.toThrow(/SHA-256/);
  });

  it('reads a reference without a SHA-256, checking its size only', async () => {
    const store = new MemoryObjectStore();
    await store.put(KEY, '[true]');
    expect(await decodePayload({ ref: { key: KEY, size: 6 } }, store)).toEqual([true]);
  });

  it('throws ObjectNotFoundError when the object is gone', async () => {
    const store = new MemoryObjectStore();
    const encoded = await offloaded(store);
    await store.delete(KEY);
    await expect(decodePayload(encoded, store)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });
});

describe('isEncodedPayload', () => {
  it('accepts the two shapes encodePayload produces and nothing else', () => {
    expect(isEncodedPayload({ inline: '1' })).toBe(true);
    expect(isEncodedPayload({ ref: { key: KEY, size: 3 } })).toBe(true);
    expect(isEncodedPayload({ ref: { key: KEY, size: 3, sha256: 'ab' } })).toBe(true);
    for (const bad of [
      null,
      '1',
      {},
      { inline: 1 },
      { inline: '1', ref: { key: KEY, size: 1 } },
      { ref: { key: KEY } },
      { ref: { key: KEY, size: -1 } },
      { ref: { key: KEY, size: 1.5 } },
      { ref: { key: 1, size: 1 } },
      { ref: { key: KEY, size: 1, sha256: 1 } },
    ]) {
      expect(isEncodedPayload(bad), JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('the JSON text rule', () => {
  it('is the one the DynamoDB codec re-exports', () => {
    expect(codecToJson).toBe(toJson);
    expect(codecFromJson).toBe(fromJson);
  });

  it('writes what JSON writes, and undefined (or a bare function) as the text undefined', () => {
    expect(toJson({ a: undefined, b: [undefined], c: new Date(0), d: Number.NaN })).toBe(
      '{"b":[null],"c":"1970-01-01T00:00:00.000Z","d":null}',
    );
    expect(toJson(undefined)).toBe('undefined');
    expect(toJson(() => 1)).toBe('undefined');
    expect(fromJson('undefined')).toBeUndefined();
    expect(fromJson('{"a":[1]}')).toEqual({ a: [1] });
  });
});
