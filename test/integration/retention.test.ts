import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_PAYLOAD_BUCKET, type LocalStack, startLocalStack } from '../../local/stack.ts';
import { SayiirApiError, SayiirClient } from '../../shared/client/index.ts';
import { flow } from '../../shared/index.ts';
import { PAYLOAD_OFFLOAD_THRESHOLD_BYTES } from '../../shared/runtime/payloads.ts';
import { waitFor } from '../support/local-api.ts';

/** A run whose first output is offloaded (over the threshold), and whose own output is small. */
const bulky = flow<number>('bulky')
  .then('blow', (n: number) => 'x'.repeat(n))
  .then('measure', (s: string) => s.length)
  .build();
/** The same first step, then a wait for a signal that never comes: it stays RUNNING, so it is never purged. */
const held = flow<number>('held')
  .then('blow', (n: number) => 'x'.repeat(n))
  .waitForSignal('hold', 'go')
  .build();
const SIZE = 2 * PAYLOAD_OFFLOAD_THRESHOLD_BYTES;
/** Long enough to look at the run's payloads once it finished, before its purge. */
const RETENTION_MS = 4_000;

/** How many offloaded objects an instance has: in fauxqs S3 under `<id>/`, or files in its folder. */
async function objectCount(stack: LocalStack, dir: string, instanceId: string): Promise<number> {
  if (stack.backend === 'aws-emulation') {
    const out = await stack.s3.send(
      new ListObjectsV2Command({ Bucket: LOCAL_PAYLOAD_BUCKET, Prefix: `${instanceId}/` }),
    );
    return out.KeyCount ?? out.Contents?.length ?? 0;
  }
  // FolderObjectStore: one directory per instance, named by the SHA-256 of its id.
  const folder = join(dir, 'payloads', 'objects', createHash('sha256').update(instanceId).digest('hex'));
  return (await readdir(folder).catch(() => [])).length;
}

describe.each([
  { backend: 'embedded (SQLite, payloads in a folder)', emulateAws: false },
  { backend: 'AWS emulation (dynalite, payloads in fauxqs S3)', emulateAws: true },
])('finished runs purged when their retention ends, on the $backend back end', ({ emulateAws }) => {
  let dir: string;
  let stack: LocalStack;
  let sayiir: SayiirClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-retention-'));
    stack = await startLocalStack({
      emulateAws,
      ...(emulateAws ? { payloads: 's3' as const } : {}),
      dataDir: dir,
      workflows: [bulky, held],
      reaperIntervalMs: 100,
      retention: RETENTION_MS,
    });
    sayiir = new SayiirClient({ url: stack.url, apiKey: stack.apiKey });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('deletes the run, its journal, its values and its offloaded payloads, and only its own', async () => {
    const gone = await sayiir.start<number>('bulky', SIZE, { instanceId: 'gone' });
    expect(await gone.result({ timeoutMs: 20_000 })).toBe(SIZE);
    const finishedAt = Date.parse((await gone.status()).updatedAt);
    expect(await objectCount(stack, dir, 'gone')).toBeGreaterThan(0);
    // Its id starts with the other's: a purge by prefix that forgot the '/' would take its payload too.
    const live = await sayiir.start('held', SIZE, { instanceId: 'gone-not' });
    expect((await live.wait({ timeoutMs: 20_000 })).waitingFor).toBeDefined();
    expect(await objectCount(stack, dir, 'gone-not')).toBeGreaterThan(0);

    await waitFor(
      async () => ((await stack.store.load('gone')) === undefined ? true : undefined),
      RETENTION_MS + 15_000,
      'the purge of the finished run',
    );
    expect(Date.now()).toBeGreaterThanOrEqual(finishedAt + RETENTION_MS);
    const read = await gone.status().catch((e: unknown) => e);
    expect(read).toBeInstanceOf(SayiirApiError);
    expect((read as SayiirApiError).status).toBe(404);
    expect(await stack.store.readJournal('gone', 0)).toEqual([]);
    expect(await objectCount(stack, dir, 'gone')).toBe(0);
    // The live run keeps everything.
    expect(await objectCount(stack, dir, 'gone-not')).toBeGreaterThan(0);
    expect((await live.status()).status).toBe('RUNNING');
  });
});
