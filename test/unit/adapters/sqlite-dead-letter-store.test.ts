import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteDatabase, SqliteDeadLetterStore } from '../../../shared/adapters/sqlite/index.ts';
import { describeDeadLetterStoreContract } from '../../support/dead-letter-store-contract.ts';

describeDeadLetterStoreContract('SqliteDeadLetterStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sayiir-sqlite-dlq-'));
  const database = openSqliteDatabase({ dataDir: dir });
  return {
    store: new SqliteDeadLetterStore({ db: database.db }),
    close: async () => {
      database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
