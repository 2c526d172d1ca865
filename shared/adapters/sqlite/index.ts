export { SqliteClaimStore } from './claim-store.ts';
export {
  DATABASE_FILE,
  type Durability,
  NATIVE_BINDING_ENV,
  openSqliteDatabase,
  SCHEMA_VERSION,
  SchemaVersionError,
  type SqliteDatabase,
  type SqliteDatabaseOptions,
  sqliteBinding,
} from './database.ts';
export { SqliteDeadLetterStore } from './dead-letter-store.ts';
export { SQLITE_MAX_ROW_BYTES, SqliteInstanceStore, type SqliteInstanceStoreOptions } from './instance-store.ts';
