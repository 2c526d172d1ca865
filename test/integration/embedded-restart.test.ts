import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DATABASE_FILE, sqliteBinding } from '../../shared/adapters/sqlite/index.ts';
import { laneCounterId } from '../../shared/runtime/lanes.ts';
import { apiClient, waitFor } from '../support/local-api.ts';

const CHILD = fileURLToPath(new URL('../support/embedded-stack-child.ts', import.meta.url));
const ITEMS = 1_000;
const CHAINS = 10;

interface Child {
  readonly process: ChildProcess;
  readonly url: string;
  readonly apiKey: string;
  /** Tasks completed so far, as the child last reported (in steps of 50). */
  completed(): number;
  /** Resolves with the exit signal or code. */
  readonly exited: Promise<string>;
}

/** Starts the embedded stack in a child process on `dataDir`; resolves once it serves. */
function startChild(dataDir: string): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  let completed = 0;
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? String(code))),
  );
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      let message: { url?: string; apiKey?: string; completed?: number };
      try {
        message = JSON.parse(line);
      } catch {
        return; // a log line
      }
      if (message.completed !== undefined) completed = message.completed;
      if (message.url && message.apiKey) {
        resolve({ process: child, url: message.url, apiKey: message.apiKey, completed: () => completed, exited });
      }
    });
    void exited.then((how) => reject(new Error(`child exited (${how}) before serving: ${stderr}`)));
  });
}

describe('the embedded back end killed with SIGKILL in the middle of a 1,000-item map', () => {
  let dir: string | undefined;
  const children: Child[] = [];
  afterAll(async () => {
    for (const c of children)
      if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('started again on the same folder, finishes every run, each output committed once', {
    timeout: 150_000,
  }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-restart-'));
    const first = await startChild(dir);
    children.push(first);
    let call = apiClient(first);
    const map = await call('POST', '/workflows/restart-map/instances', { input: ITEMS, instanceId: 'map-1' });
    expect(map.status).toBe(201);
    for (let i = 0; i < CHAINS; i++) {
      const chain = await call('POST', '/workflows/restart-chain/instances', {
        input: i * 100,
        instanceId: `chain-${i}`,
      });
      expect(chain.status).toBe(201);
    }
    // Kill it while the map is under way: some items done, most not.
    await waitFor(async () => (first.completed() >= 200 ? true : undefined), 30_000, '200 completed tasks');
    first.process.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const before = await call('GET', '/instances/map-1').catch(() => undefined);
    expect(before).toBeUndefined(); // the API died with it

    const second = await startChild(dir);
    children.push(second);
    call = apiClient(second);
    const mid = await call('GET', '/instances/map-1');
    expect(mid.json.status).toBe('RUNNING');

    const finished = async (id: string) =>
      waitFor(
        async () => {
          const r = await call('GET', `/instances/${id}`);
          return r.json?.status !== 'RUNNING' ? r.json : undefined;
        },
        90_000,
        `${id} to finish`,
      );
    const expectedSum = ITEMS * (ITEMS - 1); // sum of 2i for i < ITEMS
    expect(await finished('map-1')).toMatchObject({ status: 'COMPLETED', output: { n: ITEMS, sum: expectedSum } });
    for (let i = 0; i < CHAINS; i++) {
      expect(await finished(`chain-${i}`)).toMatchObject({ status: 'COMPLETED', output: i * 100 + 5 });
    }
    second.process.kill('SIGTERM');
    expect(await second.exited).toBe('0');

    // Read the database as it was left: each output committed once.
    const db = new Database(join(dir, DATABASE_FILE), { ...sqliteBinding(), readonly: true });
    try {
      const items = db
        .prepare(`SELECT value_id FROM vals WHERE instance_id = 'map-1' AND value_id LIKE 'out:items[%'`)
        .pluck()
        .all() as string[];
      expect(items).toHaveLength(ITEMS);
      // The map's counter moves at most once per item result created: a second count of an item would push it
      // past the count. It may stay below: the kill can land between a result's put and its count, and the
      // reaper then ends the map by recounting the results, not by repairing the counter.
      const counter = db
        .prepare(`SELECT n FROM counters WHERE instance_id = 'map-1' AND counter_id = ?`)
        .pluck()
        .get(laneCounterId('items'));
      expect(counter).toBeGreaterThan(0);
      expect(counter).toBeLessThanOrEqual(ITEMS);
      const completions = (id: string) =>
        (db.prepare('SELECT entry FROM journal WHERE instance_id = ? ORDER BY seq').pluck().all(id) as string[])
          .flatMap((e) => (JSON.parse(e) as { history: { type: string; key?: string }[] }).history)
          .filter((h) => h.type === 'task-completed')
          .map((h) => h.key);
      expect(completions('map-1').filter((k) => k === 'sum')).toEqual(['sum']);
      for (let i = 0; i < CHAINS; i++) expect(completions(`chain-${i}`)).toEqual(['a', 'b', 'c', 'd', 'e']);
    } finally {
      db.close();
    }
  });
});
