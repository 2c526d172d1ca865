export { MemoryClaimStore } from './claim-store.ts';
export { FakeClock, systemClock } from './clock.ts';
export { MemoryDeadLetterStore } from './dead-letter-store.ts';
export { MemoryDeadLetters } from './dead-letters.ts';
export { MemoryInstanceStore } from './instance-store.ts';
export { MemorySecrets } from './secrets.ts';
export { MemoryTaskQueue } from './task-queue.ts';
