import { DynamoInstanceStore } from '../../shared/adapters/dynamodb/index.ts';
import { describeCursorContract } from '../support/cursor-contract.ts';
import { startDynalite } from '../support/dynalite.ts';

describeCursorContract('DynamoInstanceStore on dynalite', async () => {
  const db = await startDynalite();
  return {
    store: new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances }),
    close: () => db.close(),
  };
});
