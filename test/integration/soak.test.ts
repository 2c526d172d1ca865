import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { SayiirClient } from '../../shared/client/index.ts';
import { flow } from '../../shared/index.ts';
import { hello } from '../../workflows/hello.ts';

/** Sent signals it does not wait for yet (an hour-long delay first): they are buffered, then refused. */
const flooded = flow<number>('flooded').delay('nap', '1h').waitForSignal<number>('take', 'go').build();

/** How long the clients keep the load on. */
const LOAD_MS = 6_000;
const CLIENTS = 4;

/** Bytes of every file under a folder. */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/**
 * The live data as the API shows it: every run's view and its whole history,
 * as JSON bytes. What the store must keep; the folder may hold more (indexes,
 * the journal, a write-ahead log), by a bounded factor.
 */
async function liveBytes(sayiir: SayiirClient, workflows: readonly string[]): Promise<number> {
  let total = 0;
  for (const w of workflows) {
    for await (const run of sayiir.list(w, { pageSize: 100 })) {
      const handle = sayiir.getHandle(run.instanceId);
      total += JSON.stringify(await handle.status()).length;
      for await (const e of handle.history({ pageSize: 1_000 })) total += JSON.stringify(e).length;
    }
  }
  return total;
}

describe.each([
  { backend: 'embedded', emulateAws: false },
  { backend: 'AWS emulation', emulateAws: true },
])('a soak of sustained signals and starts ($backend)', ({ emulateAws }) => {
  let dir: string;
  let stack: LocalStack;
  let sayiir: SayiirClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-soak-'));
    stack = await startLocalStack({ emulateAws, dataDir: dir, workflows: [hello, flooded], reaperIntervalMs: 500 });
    sayiir = new SayiirClient({ url: stack.url, apiKey: stack.apiKey });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the data folder within a small multiple of the live data, and stops growing when the load stops', async () => {
    const target = await sayiir.start(flooded, 1, { instanceId: 'flooded-1' });
    const answers = { accepted: 0, refused: 0, started: 0 };
    const stopAt = Date.now() + LOAD_MS;
    const client = async (c: number) => {
      // Until the time is up and the buffer has refused some (the emulation is slower to fill it).
      for (let n = 0; Date.now() < stopAt || answers.refused < 20; n++) {
        if (n % 10 === 0) {
          await sayiir.start(hello, { name: `c${c}-${n}` });
          answers.started++;
          continue;
        }
        try {
          await target.signal('go', n);
          answers.accepted++;
        } catch (e) {
          expect(e).toMatchObject({ status: 429, code: 'signal_buffer_full' });
          answers.refused++;
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    // Every started run finishes; the flooded one holds its full buffer.
    for await (const run of sayiir.list('hello')) await sayiir.getHandle(run.instanceId).result({ timeoutMs: 30_000 });
    expect(answers.accepted).toBe(100);
    expect(answers.refused).toBeGreaterThan(0);
    expect(answers.started).toBeGreaterThan(10);

    const live = await liveBytes(sayiir, ['hello', 'flooded']);
    const loaded = await folderBytes(dir);
    await new Promise((r) => setTimeout(r, 3_000));
    const idle = await folderBytes(dir);
    console.log(
      `soak (${emulateAws ? 'emulation' : 'embedded'}): ${answers.started} runs, ${answers.accepted} signals taken, ` +
        `${answers.refused} refused; live ${live} B, folder ${loaded} B (${(loaded / live).toFixed(1)}x), after idle ${idle} B`,
    );
    // Bounds with room for fixed overheads (a fresh database, LevelDB's log) and indexes, not for growth per request.
    expect(loaded).toBeLessThan(20 * live + 4 * 1024 * 1024);
    expect(idle - loaded).toBeLessThan(256 * 1024);
  }, 90_000);
});
