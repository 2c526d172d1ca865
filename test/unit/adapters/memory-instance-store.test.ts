import { MemoryInstanceStore } from '../../../shared/adapters/memory/instance-store.ts';
import { describeInstanceStoreContract } from '../../support/instance-store-contract.ts';

// No `maxItemBytes`: the memory store enforces no item size limit (yet), so the payload-limit tests are todo.
describeInstanceStoreContract('MemoryInstanceStore', async () => ({
  store: new MemoryInstanceStore(),
  close: async () => {},
}));
