import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { describeClaimStoreContract } from '../../support/claim-store-contract.ts';

describeClaimStoreContract('MemoryClaimStore', async () => ({ claims: new MemoryClaimStore(), close: async () => {} }));
