import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupCommit } from '../../../shared/adapters/sqlite/group-commit.ts';
import { openSqliteDatabase, type SqliteDatabase } from '../../../shared/adapters/sqlite/index.ts';

describe('group commit on the embedded database', () => {
  let dir: string;
  let database: SqliteDatabase;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-group-'));
    database = openSqliteDatabase({ dataDir: dir });
    database.db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)');
  });
  afterEach(async () => {
    database.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the writes asked for before the next microtask in one transaction, in order, each seeing the ones before it', async () => {
    const db = database.db;
    const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING');
    const group = groupCommit(db);
    const inTransaction: boolean[] = [];
    const results = await Promise.all(
      ['first', 'second', 'third'].map((v) =>
        group.run(() => {
          inTransaction.push(db.inTransaction);
          return insert.run('k', v).changes;
        }),
      ),
    );
    expect(results).toEqual([1, 0, 0]);
    expect(inTransaction).toEqual([true, true, true]);
    expect(db.prepare('SELECT v FROM t').pluck().all()).toEqual(['first']);
    // A lone write commits by itself.
    await group.run(() => inTransaction.push(db.inTransaction));
    expect(inTransaction[3]).toBe(false);
  });

  it('rolls back a write that throws, alone: the others of its group commit', async () => {
    const db = database.db;
    const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    const group = groupCommit(db);
    const outcomes = await Promise.allSettled([
      group.run(() => insert.run('a', '1')),
      group.run(() => {
        insert.run('b', '2');
        throw new Error('changed its mind');
      }),
      group.run(() => insert.run('a', 'duplicate')),
      group.run(() => insert.run('c', '3')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(new Error('changed its mind'));
    expect(db.prepare('SELECT k FROM t ORDER BY k').pluck().all()).toEqual(['a', 'c']);
  });

  it('commits writes queued before a close', async () => {
    const db = database.db;
    const pending = groupCommit(db).run(() => db.prepare("INSERT INTO t (k, v) VALUES ('late', 'x')").run().changes);
    database.close();
    expect(await pending).toBe(1);
    database = openSqliteDatabase({ dataDir: dir });
    expect(database.db.prepare('SELECT k FROM t').pluck().all()).toEqual(['late']);
  });
});
