import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataDirLockedError, LOCK_FILE } from '../../../shared/adapters/fs/data-dir-lock.ts';
import { FolderObjectStore } from '../../../shared/adapters/fs/object-store.ts';
import {
  DATABASE_FILE,
  openSqliteDatabase,
  SCHEMA_VERSION,
  SchemaVersionError,
  SqliteClaimStore,
  SqliteDeadLetterStore,
  SqliteInstanceStore,
  sqliteBinding,
} from '../../../shared/adapters/sqlite/index.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { storeRedriveTarget } from '../../../shared/runtime/dead-letters.ts';
import { entry, snapshot } from '../../support/instance-store-contract.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sayiir-sqlite-db-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const dispatch = (key: string, attempt = 1): Dispatch => ({
  instanceId: 'i1',
  workflow: 'orders',
  key,
  qid: key,
  input: { c: null },
  attempt,
  gen: 1,
  pool: 'default',
  priority: 'normal',
});

describe('the embedded database file', () => {
  it('opens in WAL mode with synchronous NORMAL by default, FULL when asked, at schema version 1', () => {
    const normal = openSqliteDatabase({ dataDir: dir });
    expect(normal.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(normal.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(normal.db.prepare('SELECT version FROM schema_version').pluck().get()).toBe(SCHEMA_VERSION);
    normal.close();
    const full = openSqliteDatabase({ dataDir: dir, durability: 'full' });
    expect(full.db.pragma('synchronous', { simple: true })).toBe(2);
    full.close();
  });

  it('keeps instances, journals, values, counters, claims and dead letters across a close and a reopen', async () => {
    const objects = new FolderObjectStore({ directory: join(dir, 'payloads') });
    let database = openSqliteDatabase({ dataDir: dir });
    let store = new SqliteInstanceStore({ db: database.db, objects });
    const s = snapshot('kept', { dueAt: 10 });
    await store.create(s, { input: '✓' }, [{ at: 1_000, type: 'run-started', version: 0 }]);
    await store.append('kept', entry(1, { value: { data: 'one' } }));
    await store.append('kept', entry(2, { watchAt: 20 }));
    await store.putValue('kept', 'out:a', [1, 2, 3]);
    await store.addToCounter('kept', 'm', 3);
    const claim = await new SqliteClaimStore({ db: database.db }).reserve('kept', 't', 'w', 0, 1_000);
    await new SqliteDeadLetterStore({ db: database.db }).put({
      origin: 'engine',
      dispatch: dispatch('t'),
      at: 1_000,
      reason: 'gave up',
      attempts: 1,
    });
    database.close();

    database = openSqliteDatabase({ dataDir: dir });
    store = new SqliteInstanceStore({ db: database.db, objects });
    expect((await store.load('kept'))?.tail.map((e) => e.seq)).toEqual([1, 2]);
    expect(await store.getValues('kept', [s.inputId, 'j:1', 'out:a'])).toEqual(
      new Map<string, unknown>([
        [s.inputId, { input: '✓' }],
        ['j:1', 'one'],
        ['out:a', [1, 2, 3]],
      ]),
    );
    expect(await store.getCounter('kept', 'm')).toBe(3);
    expect(await store.due(100, 5)).toEqual([
      { instanceId: 'kept', dueAt: 10 },
      { instanceId: 'kept', dueAt: 20, watched: 2 },
    ]);
    expect(await new SqliteClaimStore({ db: database.db }).get('kept', 't')).toEqual(claim);
    const { letters } = await new SqliteDeadLetterStore({ db: database.db }).list('default');
    expect(letters.map((l) => l.reason)).toEqual(['gave up']);
    database.close();
  });

  it('offloads a value over 16 KiB to the folder object store and reads it back through getValues', async () => {
    const database = openSqliteDatabase({ dataDir: dir });
    const objects = new FolderObjectStore({ directory: join(dir, 'payloads') });
    const store = new SqliteInstanceStore({ db: database.db, objects });
    const big = 'x'.repeat(100_000);
    await store.create(snapshot('a'), big, []);
    await store.append('a', entry(1, { value: { data: { big } } }));
    expect(await store.putValue('a', 'out:big', big)).toBe('created');

    const rows = database.db.prepare('SELECT value, value_ref FROM vals').all() as { value: null; value_ref: string }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]?.value).toBeNull();
    expect(JSON.parse(rows[0]?.value_ref ?? '{}')).toMatchObject({ size: 100_002 });
    expect(await readdir(join(dir, 'payloads', 'objects'))).toHaveLength(1);
    expect((await store.load('a'))?.values.size).toBe(0);
    expect(await store.getValues('a', ['input:a-n1', 'j:1', 'out:big'])).toEqual(
      new Map<string, unknown>([
        ['input:a-n1', big],
        ['j:1', { big }],
        ['out:big', big],
      ]),
    );
    database.close();
  });

  it('upgrades a version 1 database in place: its runs stay, and the lane timers table is added', async () => {
    const first = openSqliteDatabase({ dataDir: dir });
    await new SqliteInstanceStore({ db: first.db }).create(snapshot('a'), 'in', []);
    // What a version 1 build wrote: no lane timers.
    first.db.exec('DROP TABLE lane_timers; UPDATE schema_version SET version = 1;');
    first.close();
    const upgraded = openSqliteDatabase({ dataDir: dir });
    expect(upgraded.db.prepare('SELECT version FROM schema_version').pluck().all()).toEqual([SCHEMA_VERSION]);
    const store = new SqliteInstanceStore({ db: upgraded.db });
    expect((await store.get('a'))?.instanceId).toBe('a');
    expect(await store.putTimer('a', { id: 'd[0]', dueAt: 5, parent: 'm', item: 0 })).toBe('created');
    expect(await store.due(5, 10)).toEqual([{ instanceId: 'a', dueAt: 5, timer: 'd[0]' }]);
    upgraded.close();
  });

  it('upgrades a version 2 database in place: its lane timers stay, and a timer may carry a look', async () => {
    const first = openSqliteDatabase({ dataDir: dir });
    const before = new SqliteInstanceStore({ db: first.db });
    await before.create(snapshot('a'), 'in', []);
    await before.putTimer('a', { id: 'd[0]', dueAt: 5, parent: 'm', item: 0 });
    // What a version 2 build wrote: lane timers without looks.
    first.db.exec('ALTER TABLE lane_timers DROP COLUMN look; UPDATE schema_version SET version = 2;');
    first.close();
    const upgraded = openSqliteDatabase({ dataDir: dir });
    expect(upgraded.db.prepare('SELECT version FROM schema_version').pluck().all()).toEqual([SCHEMA_VERSION]);
    const store = new SqliteInstanceStore({ db: upgraded.db });
    const look = { group: 'm[0]/f', n: 0, sentAt: 3 };
    expect(await store.putTimer('a', { id: 'm[0]/f~look~0', dueAt: 6, parent: 'm', item: 0, look })).toBe('created');
    expect(await store.listTimers('a', '')).toEqual([
      { id: 'd[0]', dueAt: 5, parent: 'm', item: 0 },
      { id: 'm[0]/f~look~0', dueAt: 6, parent: 'm', item: 0, look },
    ]);
    upgraded.close();
  });

  it('refuses a database of another schema version, and one with tables but no version, without touching it', () => {
    const path = join(dir, DATABASE_FILE);
    const other = new Database(path, sqliteBinding());
    other.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (4);');
    other.close();
    const err = (() => {
      try {
        openSqliteDatabase({ dataDir: dir });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(SchemaVersionError);
    expect((err as SchemaVersionError).message).toContain('schema version 4');
    expect((err as SchemaVersionError).message).toContain('reads version 3');
    // Refused before anything was written, and the lock is released.
    const again = new Database(path, sqliteBinding());
    expect(again.prepare('SELECT version FROM schema_version').pluck().all()).toEqual([4]);
    again.exec('DROP TABLE schema_version; CREATE TABLE stuff (x)');
    again.close();
    expect(() => openSqliteDatabase({ dataDir: dir })).toThrow(/schema version unknown/);
  });

  it('refuses a second open of the folder in this process, naming this pid, and opens again once closed', () => {
    const first = openSqliteDatabase({ dataDir: dir });
    expect(() => openSqliteDatabase({ dataDir: dir })).toThrow(DataDirLockedError);
    expect(() => openSqliteDatabase({ dataDir: dir })).toThrow(`in use by process ${process.pid}`);
    first.close();
    openSqliteDatabase({ dataDir: dir }).close();
  });

  it('refuses a folder locked by another live process, naming its pid, and takes over the lock of a dead one', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' });
    try {
      await writeFile(join(dir, LOCK_FILE), `${child.pid}\n`);
      let err: unknown;
      try {
        openSqliteDatabase({ dataDir: dir });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DataDirLockedError);
      expect((err as DataDirLockedError).pid).toBe(child.pid);
      expect((err as Error).message).toContain(`process ${child.pid}`);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    // Its process is gone: the lock is stale.
    const database = openSqliteDatabase({ dataDir: dir });
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid));
    database.close();
    await expect(readFile(join(dir, LOCK_FILE), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('dead letters: the embedded queue puts what it gives up on straight into the store, once per attempt', async () => {
    const database = openSqliteDatabase({ dataDir: dir });
    const letters = new SqliteDeadLetterStore({ db: database.db });
    const target = storeRedriveTarget(letters, () => 5_000);
    target.moved(dispatch('b', 2));
    target.moved(dispatch('b', 2));
    await new Promise((r) => setImmediate(r));
    const { letters: listed } = await letters.list('default');
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ origin: 'redrive', at: 5_000, attempts: 2, dispatch: { key: 'b' } });
    database.close();
  });

  it("dead letters: given the instance store, the embedded queue's record keeps the task's attempt history", async () => {
    const database = openSqliteDatabase({ dataDir: dir });
    const letters = new SqliteDeadLetterStore({ db: database.db });
    const instances = new SqliteInstanceStore({ db: database.db });
    const s = snapshot('i1');
    await instances.create(s, null, []);
    const failed = { at: 4_000, type: 'task-failed' as const, key: 'b', attempt: 1, version: 1, worker: 'w1' };
    await instances.append(
      'i1',
      entry(1, { history: [{ ...failed, error: { name: 'WorkerLostError', message: 'gone' } }] }),
    );
    storeRedriveTarget(letters, () => 5_000, instances).moved(dispatch('b', 2));
    let listed: readonly unknown[] = [];
    for (let i = 0; i < 100 && listed.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
      listed = (await letters.list('default')).letters;
    }
    expect(listed[0]).toMatchObject({
      origin: 'redrive',
      attemptHistory: [{ attempt: 1, at: 4_000, worker: 'w1', error: { name: 'WorkerLostError', message: 'gone' } }],
    });
    database.close();
  });
});
