export { DynamoClaimStore, type DynamoClaimStoreOptions } from './claim-store.ts';
export { InvalidCursorError, MAX_ITEM_BYTES, MalformedItemError } from './codec.ts';
export { DEAD_LETTER_SHARDS, DynamoDeadLetterStore, type DynamoDeadLetterStoreOptions } from './dead-letter-store.ts';
export { DynamoInstanceStore, type DynamoInstanceStoreOptions } from './instance-store.ts';
