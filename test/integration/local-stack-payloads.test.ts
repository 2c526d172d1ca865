import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmulatedLocalStack, LOCAL_PAYLOAD_BUCKET, localObjectStore, startLocalStack } from '../../local/stack.ts';
import { S3ObjectStore } from '../../shared/adapters/s3/object-store.ts';
import { decodePayload, encodePayload, PAYLOAD_OFFLOAD_THRESHOLD_BYTES } from '../../shared/runtime/payloads.ts';

/** The emulated local stack's payload bucket: created at start, reachable through the exported helper. */
describe('the local stack payload bucket', () => {
  let dir: string;
  let stack: EmulatedLocalStack;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-stack-payloads-'));
    stack = await startLocalStack({
      emulateAws: true,
      dataDir: dir,
      workflows: [],
      reaperIntervalMs: 60_000,
      payloads: 's3',
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('exists once the stack is up: an object put through the stack store reads back', async () => {
    expect(stack.objects).toBeInstanceOf(S3ObjectStore);
    await stack.objects.put('i-1/out:a', 'emulated');
    expect(Buffer.from(await stack.objects.get('i-1/out:a')).toString('utf8')).toBe('emulated');
  });

  it('is the bucket localObjectStore addresses, from the stack S3 client', async () => {
    const objects = localObjectStore(stack.s3);
    await stack.objects.put('i-1/out:b', 'same bucket');
    expect(Buffer.from(await objects.get('i-1/out:b')).toString('utf8')).toBe('same bucket');
    expect(LOCAL_PAYLOAD_BUCKET).toMatch(/^[a-z0-9][a-z0-9.-]{2,62}$/);
  });

  it('carries an offloaded payload through the codec', async () => {
    const value = { blob: 'x'.repeat(PAYLOAD_OFFLOAD_THRESHOLD_BYTES) };
    const encoded = await encodePayload(value, { store: stack.objects, key: 'i-1/out:big.n1' });
    expect('ref' in encoded).toBe(true);
    expect(await decodePayload(encoded, localObjectStore(stack.s3))).toEqual(value);
  });
});
