import { MemoryDeadLetterStore } from '../../../shared/adapters/memory/dead-letter-store.ts';
import { describeDeadLetterStoreContract } from '../../support/dead-letter-store-contract.ts';

describeDeadLetterStoreContract('MemoryDeadLetterStore', async () => ({
  store: new MemoryDeadLetterStore(),
  close: async () => {},
}));
