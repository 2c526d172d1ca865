import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  openSqliteDatabase,
  SQLITE_MAX_ROW_BYTES,
  SqliteInstanceStore,
} from '../../../shared/adapters/sqlite/index.ts';
import type { ObjectStore } from '../../../shared/ports/object-store.ts';
import { describeCursorContract } from '../../support/cursor-contract.ts';
import { describeInstanceStoreContract } from '../../support/instance-store-contract.ts';

/** A fresh database in a temp folder; closing removes it. */
async function open(objects?: ObjectStore) {
  const dir = await mkdtemp(join(tmpdir(), 'sayiir-sqlite-'));
  const database = openSqliteDatabase({ dataDir: dir });
  return {
    store: new SqliteInstanceStore({ db: database.db, ...(objects ? { objects } : {}) }),
    close: async () => {
      database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describeInstanceStoreContract('SqliteInstanceStore', () => open(), {
  maxItemBytes: SQLITE_MAX_ROW_BYTES,
  openWithObjects: open,
});
describeCursorContract('SqliteInstanceStore', () => open());
