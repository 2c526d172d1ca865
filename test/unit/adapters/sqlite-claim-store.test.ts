import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteDatabase, SqliteClaimStore } from '../../../shared/adapters/sqlite/index.ts';
import { describeClaimStoreContract } from '../../support/claim-store-contract.ts';

describeClaimStoreContract('SqliteClaimStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sayiir-sqlite-claims-'));
  const database = openSqliteDatabase({ dataDir: dir });
  return {
    claims: new SqliteClaimStore({ db: database.db }),
    close: async () => {
      database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
