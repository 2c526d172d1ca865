import { DynamoDeadLetterStore } from '../../shared/adapters/dynamodb/dead-letter-store.ts';
import { describeDeadLetterStoreContract } from '../support/dead-letter-store-contract.ts';
import { startDynalite } from '../support/dynalite.ts';

describeDeadLetterStoreContract('DynamoDeadLetterStore on dynalite', async () => {
  const db = await startDynalite();
  return {
    store: new DynamoDeadLetterStore({ client: db.client, tableName: db.tables.instances }),
    close: () => db.close(),
  };
});
