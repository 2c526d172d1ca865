import { MemoryInstanceStore } from '../../../shared/adapters/memory/instance-store.ts';
import { describeCursorContract } from '../../support/cursor-contract.ts';

describeCursorContract('MemoryInstanceStore', async () => ({
  store: new MemoryInstanceStore(),
  close: async () => {},
}));
