/**
 * The embedded back end's one database file, `<dataDir>/sayiir.sqlite`:
 * opened once per process (a lock file refuses a second process), in WAL
 * mode, with a schema version: an older one is upgraded in place, and a
 * newer build's is refused rather than misread.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { SayiirError } from '../../errors.ts';
import { type DataDirLock, lockDataDir } from '../fs/data-dir-lock.ts';
import { groupCommit } from './group-commit.ts';

/**
 * The schema this build writes and reads. An older one is upgraded in place
 * on open (see {@link MIGRATIONS}); a newer or unknown one is refused (see
 * {@link SchemaVersionError}).
 */
export const SCHEMA_VERSION = 3;

/** The database file's name inside the data folder. */
export const DATABASE_FILE = 'sayiir.sqlite';

/**
 * The environment variable naming a compiled `better_sqlite3.node` to load
 * instead of the one under `node_modules` (the Node 22 test run builds its
 * own: an addon is tied to one Node ABI).
 */
export const NATIVE_BINDING_ENV = 'SAYIIR_SQLITE_BINDING';

/**
 * How hard a commit is pressed to disk (SQLite's `synchronous` in WAL mode):
 *
 * - `normal` (the default): a commit is in the WAL file when the write
 *   returns, fsynced at each checkpoint. A crash of the process (SIGKILL, an
 *   uncaught error, `kill -9` of `npm start`) loses nothing committed. A
 *   power loss or an operating-system crash may lose the commits since the
 *   last checkpoint (at most about a thousand pages of WAL), never the
 *   database's consistency: the lost commits' tasks run again, as after a
 *   lost queue message.
 * - `full`: the WAL is fsynced at every commit, so a power loss loses
 *   nothing committed either, at the price of one fsync per write.
 */
export type Durability = 'normal' | 'full';

/**
 * better-sqlite3's constructor options that load the addon named by
 * {@link NATIVE_BINDING_ENV} when it is set (or `nativeBinding` when given).
 *
 * @example
 * ```ts
 * const db = new Database(path, sqliteBinding());
 * ```
 */
export function sqliteBinding(nativeBinding = process.env[NATIVE_BINDING_ENV]): Database.Options {
  return nativeBinding ? { nativeBinding } : {};
}

/** Options of {@link openSqliteDatabase}. */
export interface SqliteDatabaseOptions {
  /** The data folder; created if missing. */
  readonly dataDir: string;
  /** @default 'normal' */
  readonly durability?: Durability;
  /**
   * A compiled `better_sqlite3.node` to load.
   * @default process.env.SAYIIR_SQLITE_BINDING, else the package's own build
   */
  readonly nativeBinding?: string;
}

/** The data folder holds a database of another schema version. Nothing was read or written. */
export class SchemaVersionError extends SayiirError {
  override readonly name = 'SchemaVersionError';
  constructor(
    readonly path: string,
    readonly found: number | undefined,
    readonly expected: number,
  ) {
    super(
      `${path} was written with schema version ${found ?? 'unknown (no schema_version table)'}; ` +
        `this build of Sayiir reads version ${expected} (and upgrades older ones) and will not guess at another. ` +
        'Start the build that wrote it, or move the data folder away to start afresh.',
    );
  }
}

/** An open database with the data folder's lock. */
export interface SqliteDatabase {
  readonly db: Database.Database;
  /** The database file. */
  readonly path: string;
  readonly durability: Durability;
  /** Closes the database (checkpointing the WAL) and releases the lock. Idempotent. */
  close(): void;
}

const SCHEMA = `
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE instances (
  id TEXT PRIMARY KEY,
  workflow TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  due_at INTEGER,
  snapshot TEXT NOT NULL,
  input_id TEXT NOT NULL,
  input TEXT,
  input_ref TEXT,
  created_history TEXT NOT NULL
);
CREATE INDEX instances_by_workflow ON instances (workflow, created_at DESC, id);
CREATE INDEX instances_by_status ON instances (workflow, status, created_at DESC, id);
CREATE INDEX instances_due ON instances (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE journal (
  instance_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  entry TEXT NOT NULL,
  value TEXT,
  value_ref TEXT,
  watch_at INTEGER,
  PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
CREATE INDEX journal_watched ON journal (watch_at) WHERE watch_at IS NOT NULL;
CREATE TABLE vals (
  instance_id TEXT NOT NULL,
  value_id TEXT NOT NULL,
  value TEXT,
  value_ref TEXT,
  PRIMARY KEY (instance_id, value_id)
) WITHOUT ROWID;
CREATE TABLE counters (
  instance_id TEXT NOT NULL,
  counter_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (instance_id, counter_id)
) WITHOUT ROWID;
CREATE TABLE claims (
  instance_id TEXT NOT NULL,
  task_key TEXT NOT NULL,
  fence INTEGER NOT NULL,
  claim TEXT,
  expires_at INTEGER,
  PRIMARY KEY (instance_id, task_key)
) WITHOUT ROWID;
CREATE INDEX claims_expiry ON claims (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE dead_letters (
  id TEXT PRIMARY KEY,
  pool TEXT NOT NULL,
  sort_key TEXT NOT NULL,
  instance_id TEXT,
  body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX dead_letters_pool ON dead_letters (pool, sort_key);
CREATE INDEX dead_letters_instance ON dead_letters (instance_id) WHERE instance_id IS NOT NULL;`;

/** Version 2: the lane timers (`LaneTimer`), with their due index while not fired. */
const LANE_TIMERS = `
CREATE TABLE lane_timers (
  instance_id TEXT NOT NULL,
  id TEXT NOT NULL,
  parent TEXT NOT NULL,
  item INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  fired_at INTEGER,
  retry TEXT,
  PRIMARY KEY (instance_id, id)
) WITHOUT ROWID;
CREATE INDEX lane_timers_due ON lane_timers (due_at) WHERE fired_at IS NULL;`;

/** Version 3: the look of a fork run in a lane (`LaneTimer.look`). */
const LANE_LOOKS = 'ALTER TABLE lane_timers ADD COLUMN look TEXT;';

/**
 * What upgrades a database of version `v` to `v + 1`, run in one
 * transaction with the version's update: a database written by an older
 * build keeps its runs.
 */
const MIGRATIONS: Readonly<Record<number, string>> = { 1: LANE_TIMERS, 2: LANE_LOOKS };

/** The schema version stored in `db`, `undefined` for a database with tables but no version, `0` for an empty one. */
function storedVersion(db: Database.Database): number | undefined {
  const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[];
  if (tables.length === 0) return 0;
  if (!tables.some((t) => t.name === 'schema_version')) return undefined;
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  return row?.version;
}

/**
 * Opens (creating on first use) the database of a data folder, after taking
 * the folder's lock: WAL journal, `synchronous` from `durability`, foreign
 * access refused.
 *
 * @throws {DataDirLockedError} another live process has the folder.
 * @throws {SchemaVersionError} the file was written by another schema version.
 * @example
 * ```ts
 * const { db, close } = openSqliteDatabase({ dataDir: '.sayiir' });
 * const store = new SqliteInstanceStore({ db });
 * ```
 */
export function openSqliteDatabase(options: SqliteDatabaseOptions): SqliteDatabase {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const lock: DataDirLock = lockDataDir(dataDir);
  const path = join(dataDir, DATABASE_FILE);
  const durability = options.durability ?? 'normal';
  let db: Database.Database | undefined;
  try {
    db = new Database(path, sqliteBinding(options.nativeBinding));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = OFF');
    const found = storedVersion(db);
    const open = db;
    if (found === 0) {
      open.transaction(() => {
        open.exec(SCHEMA);
        for (let v = 1; v < SCHEMA_VERSION; v++) open.exec(MIGRATIONS[v] as string);
        open.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
      })();
    } else if (found !== undefined && found < SCHEMA_VERSION && found >= 1) {
      open.transaction(() => {
        for (let v = found; v < SCHEMA_VERSION; v++) open.exec(MIGRATIONS[v] as string);
        open.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
      })();
    } else if (found !== SCHEMA_VERSION) {
      throw new SchemaVersionError(path, found, SCHEMA_VERSION);
    }
  } catch (err) {
    db?.close();
    lock.release();
    throw err;
  }
  const open = db;
  let closed = false;
  return {
    db: open,
    path,
    durability,
    close() {
      if (closed) return;
      closed = true;
      groupCommit(open).flush(); // writes asked for before the close are committed
      open.close();
      lock.release();
    },
  };
}
