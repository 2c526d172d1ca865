import { MemoryDeadLetters } from '../../../shared/adapters/memory/dead-letters.ts';
import { describeDeadLettersContract } from '../../support/dead-letters-contract.ts';

describeDeadLettersContract('MemoryDeadLetters', async () => ({
  deadLetters: new MemoryDeadLetters(),
  close: async () => {},
}));
