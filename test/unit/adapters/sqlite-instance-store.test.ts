import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  openSqliteDatabase,
  SQLITE_MAX_ROW_BYTES,
  SqliteInstanceStore,
} from '../../../shared/adapters/sqlite/index.ts';
import { describeCursorContract } from '../../support/cursor-contract.ts';
import { describeInstanceStoreContract } from '../../support/instance-store-contract.ts';

/** A fresh database in a temp folder; closing removes it. */
async function open() {
  const dir = await mkdtemp(join(tmpdir(), 'sayiir-sqlite-'));
  const database = openSqliteDatabase({ dataDir: dir });
  return {
    store: new SqliteInstanceStore({ db: database.db }),
    close: async () => {
      database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describeInstanceStoreContract('SqliteInstanceStore', open, { maxItemBytes: SQLITE_MAX_ROW_BYTES });
describeCursorContract('SqliteInstanceStore', open);
