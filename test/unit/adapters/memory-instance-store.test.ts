import { MAX_ITEM_BYTES } from '../../../shared/adapters/dynamodb/codec.ts';
import { MemoryInstanceStore } from '../../../shared/adapters/memory/instance-store.ts';
import { describeInstanceStoreContract } from '../../support/instance-store-contract.ts';

// Held to the item limit of the other stores, set explicitly: by default the in-process runner's store has none.
describeInstanceStoreContract(
  'MemoryInstanceStore',
  async () => ({ store: new MemoryInstanceStore({ maxItemBytes: MAX_ITEM_BYTES }), close: async () => {} }),
  { maxItemBytes: MAX_ITEM_BYTES },
);
