import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteDatabase, SqliteDeadLetters } from '../../../shared/adapters/sqlite/index.ts';
import { describeDeadLettersContract } from '../../support/dead-letters-contract.ts';

describeDeadLettersContract('SqliteDeadLetters', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sayiir-sqlite-dlq-'));
  const database = openSqliteDatabase({ dataDir: dir });
  return {
    deadLetters: new SqliteDeadLetters({ db: database.db }),
    close: async () => {
      database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
