import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderObjectStore } from '../../shared/adapters/fs/object-store.ts';
import { MemoryObjectStore } from '../../shared/adapters/memory/object-store.ts';
import { S3ObjectStore } from '../../shared/adapters/s3/object-store.ts';
import { ObjectNotFoundError } from '../../shared/ports/errors.ts';
import { type Fauxqs, startFauxqs } from '../support/fauxqs.ts';
import { describeObjectStoreContract } from '../support/object-store-contract.ts';

/**
 * The ObjectStore contract against every adapter: the map, a temp folder,
 * and S3 over the wire (fauxqs's S3 API, a fresh bucket per test).
 */

let fauxqs: Fauxqs;
beforeAll(async () => {
  fauxqs = await startFauxqs();
});
afterAll(async () => {
  await fauxqs?.close();
});

describeObjectStoreContract('MemoryObjectStore', async () => ({
  store: new MemoryObjectStore(),
  close: async () => undefined,
}));

describeObjectStoreContract('FolderObjectStore', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'sayiir-objects-'));
  return {
    store: new FolderObjectStore({ directory }),
    close: () => rm(directory, { recursive: true, force: true }),
  };
});

describeObjectStoreContract('S3ObjectStore on fauxqs', async () => {
  const bucket = `contract-${randomUUID()}`;
  await fauxqs.createBucket(bucket);
  return { store: new S3ObjectStore({ client: fauxqs.newS3Client(), bucket }), close: async () => undefined };
});

describe('S3ObjectStore on fauxqs', () => {
  /** Counts the SDK commands a client sends, by name. */
  function countCommands(client: ReturnType<Fauxqs['newS3Client']>): Map<string, number> {
    const counts = new Map<string, number>();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = String(context.commandName);
        counts.set(name, (counts.get(name) ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize' },
    );
    return counts;
  }

  it('sends exactly one request per put, get and delete', async () => {
    const bucket = `count-${randomUUID()}`;
    await fauxqs.createBucket(bucket);
    const client = fauxqs.newS3Client();
    const counts = countCommands(client);
    const store = new S3ObjectStore({ client, bucket });
    await store.put('i-1/out:a', 'x'.repeat(100_000));
    await store.get('i-1/out:a');
    await store.delete('i-1/out:a');
    await expect(store.get('i-1/out:a')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(Object.fromEntries(counts)).toEqual({ PutObjectCommand: 1, GetObjectCommand: 2, DeleteObjectCommand: 1 });
  });

  it('deleteFolder follows the listing past its first page of 1,000 keys', async () => {
    const bucket = `folder-${randomUUID()}`;
    await fauxqs.createBucket(bucket);
    const client = fauxqs.newS3Client();
    const store = new S3ObjectStore({ client, bucket });
    const keys = Array.from({ length: 1_010 }, (_, n) => `i-1/v${String(n).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, 'x')));
    await store.put('i-10/kept', 'kept');
    const counts = countCommands(client);
    expect(await store.deleteFolder('i-1')).toBe(1_010);
    expect(Object.fromEntries(counts)).toEqual({ ListObjectsV2Command: 2, DeleteObjectCommand: 1_010 });
    await expect(store.get('i-1/v1009')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(Buffer.from(await store.get('i-10/kept')).toString('utf8')).toBe('kept');
    expect(await store.deleteFolder('i-1')).toBe(0);
  });

  it('creates a bucket idempotently: a second create keeps its objects', async () => {
    const bucket = `twice-${randomUUID()}`;
    await fauxqs.createBucket(bucket);
    const store = new S3ObjectStore({ client: fauxqs.newS3Client(), bucket });
    await store.put('i-1/out:a', 'kept');
    await fauxqs.createBucket(bucket);
    expect(Buffer.from(await store.get('i-1/out:a')).toString('utf8')).toBe('kept');
  });

  it('leaves an error other than a missing key as it is (a missing bucket)', async () => {
    const store = new S3ObjectStore({ client: fauxqs.newS3Client(), bucket: `never-${randomUUID()}` });
    const err = await store.get('i-1/out:a').catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ObjectNotFoundError);
    expect((err as Error).name).toBe('NoSuchBucket');
  });
});
