export { DynamoClaimStore, type DynamoClaimStoreOptions } from './claim-store.ts';
export { InvalidCursorError, MAX_ITEM_BYTES, MalformedItemError } from './codec.ts';
export { DynamoInstanceStore, type DynamoInstanceStoreOptions } from './instance-store.ts';
