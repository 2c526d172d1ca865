import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { HistoryEntry } from '../../engine/history.ts';
import { fromJson, toJson } from '../../engine/json.ts';
import { ValueMissingError } from '../../engine/refs.ts';
import type { Snapshot } from '../../engine/snapshot.ts';
import { InstanceExistsError, JournalConflictError, PayloadTooLargeError } from '../../ports/errors.ts';
import {
  type InstanceStore,
  type InstanceSummary,
  type JournalEntry,
  journalSeqOf,
  journalValueId,
  type LaneLookTimer,
  type LaneRetry,
  type LaneTimer,
  type ListPage,
  type ListQuery,
  type StoredInstance,
  type TimerPage,
} from '../../ports/instance-store.ts';
import type { ObjectStore } from '../../ports/object-store.ts';
import type { DueInstance, TimerIndex } from '../../ports/timers.ts';
import {
  decodePayload,
  encodePayload,
  isEncodedPayload,
  PAYLOAD_OFFLOAD_THRESHOLD_BYTES,
} from '../../runtime/payloads.ts';
import { decodeCursor, encodeCursor, historyScope, historyStart, listScope } from '../cursor.ts';
import { type GroupCommit, groupCommit } from './group-commit.ts';

/**
 * Largest row the store writes, in UTF-8 bytes of its text: DynamoDB's item
 * budget (`MAX_ITEM_BYTES` of the DynamoDB adapter), so that what fits
 * locally fits on AWS, and a run that would fail there fails here first.
 */
export const SQLITE_MAX_ROW_BYTES = 350_000;

/** Options of {@link SqliteInstanceStore}. */
export interface SqliteInstanceStoreOptions {
  /** The open database (see `openSqliteDatabase`). */
  readonly db: Database.Database;
  /**
   * Where values over `offloadThresholdBytes` go (the folder object store
   * locally): the row keeps a reference. Without one, a value that does not
   * fit a row is refused with `PayloadTooLargeError`.
   */
  readonly objects?: ObjectStore;
  /** @default PAYLOAD_OFFLOAD_THRESHOLD_BYTES */
  readonly offloadThresholdBytes?: number;
  /** @default SQLITE_MAX_ROW_BYTES */
  readonly maxRowBytes?: number;
}

/** A value as two columns: its JSON text, or the JSON of an offloaded value's reference. */
interface ValueColumns {
  readonly value: string | null;
  readonly ref: string | null;
}

interface InstanceRow {
  snapshot: string;
  input_id: string;
  input: string | null;
  input_ref: string | null;
  created_history: string;
  version: number;
}

interface TimerRow {
  id: string;
  parent: string;
  item: number;
  due_at: number;
  fired_at: number | null;
  retry: string | null;
  look: string | null;
}

/** A lane timer row as the port's record. */
function timerOf(row: TimerRow): LaneTimer {
  return {
    id: row.id,
    dueAt: row.due_at,
    parent: row.parent,
    item: row.item,
    ...(row.fired_at === null ? {} : { firedAt: row.fired_at }),
    ...(row.retry === null ? {} : { retry: JSON.parse(row.retry) as LaneRetry }),
    ...(row.look === null ? {} : { look: JSON.parse(row.look) as LaneLookTimer }),
  };
}

interface JournalRow {
  seq: number;
  entry: string;
  value: string | null;
  value_ref: string | null;
}

const bytes = (...texts: (string | null | undefined)[]): number =>
  texts.reduce((n, t) => n + (t ? Buffer.byteLength(t, 'utf8') : 0), 0);

/**
 * The instance store on SQLite (better-sqlite3), for the embedded back end:
 * tables `instances` (the compacted snapshot, its listing and due columns,
 * the run input, the creation's history), `journal` (one row per committed
 * entry, primary key `(instance_id, seq)`), `vals`, `counters` and
 * `lane_timers`.
 *
 * Every port condition is a single statement on a primary key (`INSERT … ON
 * CONFLICT DO NOTHING`, `UPDATE … WHERE version < ?`), so it holds whatever
 * interleaves: better-sqlite3 runs each statement to its end, and the data
 * folder's lock keeps other processes out. A failed condition becomes the
 * port's error here, as in the DynamoDB and memory adapters. Rows over
 * `maxRowBytes` are refused, as DynamoDB refuses items over its limit.
 *
 * Durability is the database's (see `Durability` in `database.ts`): with the
 * default `normal`, a commit survives a crash of the process, and a power
 * loss may undo the last commits but never half of one.
 *
 * @example
 * ```ts
 * const { db } = openSqliteDatabase({ dataDir: '.sayiir' });
 * const store = new SqliteInstanceStore({ db, objects: new FolderObjectStore({ directory: '.sayiir/payloads' }) });
 * await store.create(snapshot, input, history);
 * ```
 */
export class SqliteInstanceStore implements InstanceStore, TimerIndex {
  private readonly db: Database.Database;
  private readonly objects: ObjectStore | undefined;
  private readonly threshold: number;
  private readonly maxRowBytes: number;
  private readonly writes: GroupCommit;
  private readonly sql;
  /** Deletes an instance's journal, value, counter and lane timer rows together (see `purge`). */
  private readonly purgeRows: Database.Transaction<(instanceId: string) => void>;

  constructor(options: SqliteInstanceStoreOptions) {
    this.db = options.db;
    this.objects = options.objects;
    this.threshold = options.offloadThresholdBytes ?? PAYLOAD_OFFLOAD_THRESHOLD_BYTES;
    this.maxRowBytes = options.maxRowBytes ?? SQLITE_MAX_ROW_BYTES;
    const db = this.db;
    this.writes = groupCommit(db);
    this.sql = {
      create: db.prepare(
        `INSERT INTO instances (id, workflow, status, created_at, updated_at, version, due_at, snapshot, input_id, input, input_ref, created_history)
         VALUES (@id, @workflow, @status, @createdAt, @updatedAt, @version, @dueAt, @snapshot, @inputId, @input, @inputRef, @created)
         ON CONFLICT (id) DO NOTHING`,
      ),
      instance: db.prepare(
        'SELECT snapshot, input_id, input, input_ref, created_history, version FROM instances WHERE id = ?',
      ),
      snapshot: db.prepare('SELECT snapshot FROM instances WHERE id = ?').pluck(),
      journalAfter: db.prepare(
        'SELECT seq, entry, value, value_ref FROM journal WHERE instance_id = ? AND seq > ? ORDER BY seq',
      ),
      append: db.prepare(
        `INSERT INTO journal (instance_id, seq, entry, value, value_ref, watch_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (instance_id, seq) DO NOTHING`,
      ),
      compact: db.prepare(
        `UPDATE instances SET snapshot = @snapshot, version = @version, workflow = @workflow, status = @status,
           created_at = @createdAt, updated_at = @updatedAt, due_at = @dueAt
         WHERE id = @id AND version < @version`,
      ),
      unwatch: db.prepare('UPDATE journal SET watch_at = NULL WHERE instance_id = ? AND seq = ?'),
      putValue: db.prepare(
        `INSERT INTO vals (instance_id, value_id, value, value_ref) VALUES (?, ?, ?, ?)
         ON CONFLICT (instance_id, value_id) DO NOTHING`,
      ),
      valueIdsFrom: db.prepare('SELECT value_id FROM vals WHERE instance_id = ? AND value_id >= ? ORDER BY value_id'),
      value: db.prepare('SELECT value, value_ref FROM vals WHERE instance_id = ? AND value_id = ?'),
      journalValue: db.prepare('SELECT value, value_ref FROM journal WHERE instance_id = ? AND seq = ?'),
      input: db.prepare('SELECT input, input_ref FROM instances WHERE id = ? AND input_id = ?'),
      addToCounter: db.prepare(
        `INSERT INTO counters (instance_id, counter_id, n) VALUES (?, ?, ?)
         ON CONFLICT (instance_id, counter_id) DO UPDATE SET n = n + excluded.n RETURNING n`,
      ),
      counter: db.prepare('SELECT n FROM counters WHERE instance_id = ? AND counter_id = ?').pluck(),
      // Live work and finished runs' purges are read apart (see `TimerIndex.duePurges`), by status.
      dueSnapshots: db.prepare(
        `SELECT id, due_at FROM instances WHERE due_at IS NOT NULL AND due_at <= ?
         AND status IN ('RUNNING', 'PAUSED') ORDER BY due_at, id LIMIT ?`,
      ),
      duePurges: db.prepare(
        `SELECT id, due_at FROM instances WHERE due_at IS NOT NULL AND due_at <= ?
         AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') ORDER BY due_at, id LIMIT ?`,
      ),
      dueWatched: db.prepare(
        `SELECT instance_id, seq, watch_at FROM journal WHERE watch_at IS NOT NULL AND watch_at <= ?
         ORDER BY watch_at, instance_id, seq LIMIT ?`,
      ),
      createdHistory: db.prepare('SELECT created_history FROM instances WHERE id = ?').pluck(),
      historyFrom: db.prepare('SELECT seq, entry FROM journal WHERE instance_id = ? AND seq >= ? ORDER BY seq'),
      listAll: db.prepare(
        `SELECT id, workflow, status, created_at, updated_at FROM instances
         WHERE workflow = @workflow AND (created_at < @createdAt OR (created_at = @createdAt AND id > @id))
         ORDER BY created_at DESC, id LIMIT @limit`,
      ),
      purgeJournal: db.prepare('DELETE FROM journal WHERE instance_id = ?'),
      purgeValues: db.prepare('DELETE FROM vals WHERE instance_id = ?'),
      purgeCounters: db.prepare('DELETE FROM counters WHERE instance_id = ?'),
      purgeTimers: db.prepare('DELETE FROM lane_timers WHERE instance_id = ?'),
      putTimer: db.prepare(
        `INSERT INTO lane_timers (instance_id, id, parent, item, due_at, retry, look) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (instance_id, id) DO NOTHING`,
      ),
      fireTimer: db.prepare(
        'UPDATE lane_timers SET fired_at = ? WHERE instance_id = ? AND id = ? AND fired_at IS NULL',
      ),
      timersFrom: db.prepare(
        'SELECT id, parent, item, due_at, fired_at, retry, look FROM lane_timers WHERE instance_id = ? AND id >= ? ORDER BY id',
      ),
      timer: db.prepare(
        'SELECT id, parent, item, due_at, fired_at, retry, look FROM lane_timers WHERE instance_id = ? AND id = ?',
      ),
      dueTimers: db.prepare(
        `SELECT instance_id, id, due_at FROM lane_timers WHERE fired_at IS NULL AND due_at <= ?
         ORDER BY due_at, instance_id, id LIMIT ?`,
      ),
      purgeInstance: db.prepare('DELETE FROM instances WHERE id = ?'),
      listStatus: db.prepare(
        `SELECT id, workflow, status, created_at, updated_at FROM instances
         WHERE workflow = @workflow AND status = @status AND (created_at < @createdAt OR (created_at = @createdAt AND id > @id))
         ORDER BY created_at DESC, id LIMIT @limit`,
      ),
    };
    // Inside a group's transaction, better-sqlite3 runs this as a savepoint: the three deletes still go together.
    this.purgeRows = db.transaction((instanceId: string) => {
      this.sql.purgeJournal.run(instanceId);
      this.sql.purgeValues.run(instanceId);
      this.sql.purgeCounters.run(instanceId);
      this.sql.purgeTimers.run(instanceId);
    });
  }

  /**
   * A value's columns: its JSON text, or, over the threshold with an object
   * store, the reference to it under a key unique to this write (a racing
   * writer never overwrites the bytes a committed reference points at).
   */
  private async valueColumns(value: unknown, key: string, subject: string): Promise<ValueColumns> {
    if (!this.objects) return { value: toJson(value, subject), ref: null };
    const encoded = await encodePayload(value, {
      store: this.objects,
      key: `${key}.${randomUUID()}`,
      threshold: this.threshold,
      subject,
    });
    return 'inline' in encoded
      ? { value: encoded.inline, ref: null }
      : { value: null, ref: JSON.stringify(encoded.ref) };
  }

  /** The value of a pair of value columns, fetching an offloaded one. */
  private async readValue(value: string | null, ref: string | null, id: string): Promise<unknown> {
    if (value !== null) return fromJson(value);
    if (ref === null) throw new ValueMissingError(id);
    if (!this.objects) throw new Error(`value '${id}' is offloaded, and this store has no object store`);
    const encoded: unknown = { ref: JSON.parse(ref) };
    if (!isEncodedPayload(encoded)) throw new Error(`value '${id}' has a malformed reference`);
    return decodePayload(encoded, this.objects);
  }

  private assertFits(what: string, ...texts: (string | null | undefined)[]): void {
    const n = bytes(...texts);
    if (n > this.maxRowBytes) throw new PayloadTooLargeError(what, n, this.maxRowBytes);
  }

  async create(snapshot: Snapshot, input: unknown, history: readonly HistoryEntry[]): Promise<void> {
    const id = snapshot.instanceId;
    const what = `input of instance '${id}'`;
    const columns = await this.valueColumns(input, `${id}/input`, what);
    const text = JSON.stringify(snapshot);
    const created = JSON.stringify(history);
    this.assertFits(what, id, text, snapshot.inputId, columns.value, columns.ref, created);
    const { changes } = await this.writes.run(() =>
      this.sql.create.run({
        id,
        workflow: snapshot.workflow,
        status: snapshot.status,
        createdAt: snapshot.createdAt,
        updatedAt: snapshot.updatedAt,
        version: snapshot.version,
        dueAt: snapshot.dueAt ?? null,
        snapshot: text,
        inputId: snapshot.inputId,
        input: columns.value,
        inputRef: columns.ref,
        created,
      }),
    );
    if (changes === 0) throw new InstanceExistsError(id);
  }

  async load(instanceId: string): Promise<StoredInstance | undefined> {
    // Both reads in one synchronous turn: nothing commits between them.
    const row = this.sql.instance.get(instanceId) as InstanceRow | undefined;
    if (!row) return undefined;
    const rows = this.sql.journalAfter.all(instanceId, row.version) as JournalRow[];
    const snapshot = JSON.parse(row.snapshot) as Snapshot;
    const tail = rows.map(entryOf);
    // Inline values come with the read; offloaded ones are fetched by `getValues` when needed.
    const values = new Map<string, unknown>();
    if (row.input !== null) values.set(snapshot.inputId, fromJson(row.input));
    for (const e of tail) if (e.value) values.set(journalValueId(e.seq), e.value.data);
    return { snapshot, tail, values };
  }

  async readJournal(instanceId: string, afterSeq: number): Promise<JournalEntry[]> {
    return (this.sql.journalAfter.all(instanceId, afterSeq) as JournalRow[]).map(entryOf);
  }

  async append(instanceId: string, entry: JournalEntry): Promise<void> {
    const { value, watchAt, ...rest } = entry;
    const what = `journal entry ${entry.seq} of instance '${instanceId}'`;
    const columns = value
      ? await this.valueColumns(
          value.data,
          `${instanceId}/j${entry.seq}`,
          `payload of journal entry ${entry.seq} of '${instanceId}'`,
        )
      : { value: null, ref: null };
    const text = JSON.stringify({ ...rest, ...(watchAt === undefined ? {} : { watchAt }) });
    this.assertFits(what, instanceId, text, columns.value, columns.ref);
    // A journal entry without a payload stores SQL NULL; a payload of `undefined` stores the text 'undefined'.
    const { changes } = this.sql.append.run(instanceId, entry.seq, text, columns.value, columns.ref, watchAt ?? null);
    if (changes === 0) throw new JournalConflictError(instanceId, entry.seq);
  }

  async compact(snapshot: Snapshot): Promise<boolean> {
    const text = JSON.stringify(snapshot);
    this.assertFits(`snapshot of instance '${snapshot.instanceId}'`, snapshot.instanceId, text);
    const { changes } = await this.writes.run(() =>
      this.sql.compact.run({
        id: snapshot.instanceId,
        snapshot: text,
        version: snapshot.version,
        workflow: snapshot.workflow,
        status: snapshot.status,
        createdAt: snapshot.createdAt,
        updatedAt: snapshot.updatedAt,
        dueAt: snapshot.dueAt ?? null,
      }),
    );
    return changes === 1;
  }

  async unwatch(instanceId: string, seq: number): Promise<void> {
    await this.writes.run(() => this.sql.unwatch.run(instanceId, seq));
  }

  async get(instanceId: string): Promise<Snapshot | undefined> {
    const text = this.sql.snapshot.get(instanceId) as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as Snapshot);
  }

  async putValue(instanceId: string, valueId: string, value: unknown): Promise<'created' | 'exists'> {
    const what = `value '${valueId}' of instance '${instanceId}'`;
    const columns = await this.valueColumns(value, `${instanceId}/${valueId}`, what);
    this.assertFits(what, instanceId, valueId, columns.value, columns.ref);
    const { changes } = await this.writes.run(() =>
      this.sql.putValue.run(instanceId, valueId, columns.value, columns.ref),
    );
    return changes === 1 ? 'created' : 'exists';
  }

  async listValueIds(instanceId: string, prefix: string): Promise<string[]> {
    const ids: string[] = [];
    // Keys from `prefix` on, in order: the ones with the prefix come first, in one run.
    for (const row of this.sql.valueIdsFrom.iterate(instanceId, prefix) as Iterable<{ value_id: string }>) {
      if (!row.value_id.startsWith(prefix)) break;
      ids.push(row.value_id);
    }
    return ids;
  }

  async addToCounter(instanceId: string, counterId: string, by: number): Promise<number> {
    return await this.writes.run(() => (this.sql.addToCounter.get(instanceId, counterId, by) as { n: number }).n);
  }

  async getCounter(instanceId: string, counterId: string): Promise<number> {
    return (this.sql.counter.get(instanceId, counterId) as number | undefined) ?? 0;
  }

  async putTimer(instanceId: string, timer: Omit<LaneTimer, 'firedAt'>): Promise<'created' | 'exists'> {
    const { changes } = await this.writes.run(() =>
      this.sql.putTimer.run(
        instanceId,
        timer.id,
        timer.parent,
        timer.item,
        timer.dueAt,
        timer.retry ? JSON.stringify(timer.retry) : null,
        timer.look ? JSON.stringify(timer.look) : null,
      ),
    );
    return changes === 1 ? 'created' : 'exists';
  }

  async fireTimer(instanceId: string, id: string, at: number): Promise<void> {
    await this.writes.run(() => this.sql.fireTimer.run(at, instanceId, id));
  }

  async listTimers(instanceId: string, prefix: string, page: TimerPage = {}): Promise<LaneTimer[]> {
    const timers: LaneTimer[] = [];
    const limit = page.limit ?? Number.POSITIVE_INFINITY;
    const from = page.after !== undefined && page.after > prefix ? page.after : prefix;
    for (const row of this.sql.timersFrom.iterate(instanceId, from) as Iterable<TimerRow>) {
      if (timers.length >= limit || !row.id.startsWith(prefix)) break;
      if (row.id !== page.after) timers.push(timerOf(row));
    }
    return timers;
  }

  async getTimers(instanceId: string, ids: Iterable<string>): Promise<LaneTimer[]> {
    return [...new Set(ids)].sort().flatMap((id) => {
      const row = this.sql.timer.get(instanceId, id) as TimerRow | undefined;
      return row ? [timerOf(row)] : [];
    });
  }

  async getValues(instanceId: string, valueIds: Iterable<string>): Promise<Map<string, unknown>> {
    // Every row first, in one synchronous turn (a consistent read), then the offloaded bytes.
    const found: [string, ValueColumns][] = [];
    for (const id of new Set(valueIds)) {
      const seq = journalSeqOf(id);
      const row = (
        seq !== undefined
          ? this.sql.journalValue.get(instanceId, seq)
          : id.startsWith('input:')
            ? renameInput(this.sql.input.get(instanceId, id) as { input: string | null; input_ref: string | null })
            : this.sql.value.get(instanceId, id)
      ) as { value: string | null; value_ref: string | null } | undefined;
      if (!row || (row.value === null && row.value_ref === null)) throw new ValueMissingError(id);
      found.push([id, { value: row.value, ref: row.value_ref }]);
    }
    const values = new Map<string, unknown>();
    for (const [id, columns] of found) values.set(id, await this.readValue(columns.value, columns.ref, id));
    return values;
  }

  async list(query: ListQuery): Promise<ListPage> {
    const limit = query.limit ?? 50;
    const scope = listScope(query);
    // Keyset paging: the next page starts after (createdAt, instanceId) of the last item, newest first.
    const from =
      query.cursor === undefined
        ? { createdAt: Number.MAX_SAFE_INTEGER, instanceId: '' }
        : decodeCursor(scope, query.cursor, { createdAt: 'integer', instanceId: 'string' });
    if (limit < 1) return { items: [] };
    const params = {
      workflow: query.workflow,
      createdAt: from.createdAt,
      id: from.instanceId,
      limit: limit + 1,
      ...(query.status === undefined ? {} : { status: query.status }),
    };
    const rows = (query.status === undefined ? this.sql.listAll : this.sql.listStatus).all(params) as {
      id: string;
      workflow: string;
      status: InstanceSummary['status'];
      created_at: number;
      updated_at: number;
    }[];
    const items = rows.slice(0, limit).map(
      (r): InstanceSummary => ({
        instanceId: r.id,
        workflow: r.workflow,
        status: r.status,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      }),
    );
    const last = items[items.length - 1];
    return {
      items,
      ...(rows.length > limit && last
        ? { cursor: encodeCursor(scope, { createdAt: last.createdAt, instanceId: last.instanceId }) }
        : {}),
    };
  }

  async due(now: number, limit: number): Promise<DueInstance[]> {
    const snapshots = this.sql.dueSnapshots.all(now, limit) as { id: string; due_at: number }[];
    const watched = this.sql.dueWatched.all(now, limit) as { instance_id: string; seq: number; watch_at: number }[];
    const timers = this.sql.dueTimers.all(now, limit) as { instance_id: string; id: string; due_at: number }[];
    return [
      ...snapshots.map((r): DueInstance => ({ instanceId: r.id, dueAt: r.due_at })),
      ...watched.map((r): DueInstance => ({ instanceId: r.instance_id, dueAt: r.watch_at, watched: r.seq })),
      ...timers.map((r): DueInstance => ({ instanceId: r.instance_id, dueAt: r.due_at, timer: r.id })),
    ]
      .sort((a, b) => a.dueAt - b.dueAt)
      .slice(0, limit);
  }

  async duePurges(now: number, limit: number): Promise<DueInstance[]> {
    const rows = this.sql.duePurges.all(now, limit) as { id: string; due_at: number }[];
    return rows.map((r): DueInstance => ({ instanceId: r.id, dueAt: r.due_at }));
  }

  async readHistory(
    instanceId: string,
    options: { readonly limit?: number; readonly cursor?: string; readonly afterSeq?: number } = {},
  ): Promise<{ entries: HistoryEntry[]; cursor?: string }> {
    const limit = options.limit ?? 1000;
    const scope = historyScope(instanceId);
    // Position: journal entry `seq` (0: the creation), after its first `skip` history entries.
    const from = historyStart(instanceId, options);
    const created = this.sql.createdHistory.get(instanceId) as string | undefined;
    if (created === undefined) return { entries: [] };
    const entries: HistoryEntry[] = [];
    const take = (seq: number, list: readonly HistoryEntry[], skip: number) => {
      const room = limit - entries.length;
      const rest = list.slice(skip);
      entries.push(...rest.slice(0, room));
      return rest.length > room ? { seq, skip: skip + room } : undefined;
    };
    if (from.seq === 0) {
      const next = take(0, JSON.parse(created) as HistoryEntry[], from.skip);
      if (next) return { entries, cursor: encodeCursor(scope, next) };
    }
    let fullAfter: number | undefined;
    for (const row of this.sql.historyFrom.iterate(instanceId, Math.max(1, from.seq)) as Iterable<{
      seq: number;
      entry: string;
    }>) {
      const history = (JSON.parse(row.entry) as { history: HistoryEntry[] }).history;
      const next = take(row.seq, history, row.seq === from.seq ? from.skip : 0);
      if (next) return { entries, cursor: encodeCursor(scope, next) };
      if (entries.length >= limit) {
        fullAfter = row.seq;
        break;
      }
    }
    // Full: a cursor only if an entry follows (so the last page has none).
    if (fullAfter !== undefined && this.sql.journalValue.get(instanceId, fullAfter + 1) !== undefined) {
      return { entries, cursor: encodeCursor(scope, { seq: fullAfter + 1, skip: 0 }) };
    }
    return { entries };
  }

  /**
   * Three steps: the journal, value, counter and lane timer rows in one transaction,
   * then the object store's folder, then the `instances` row (snapshot,
   * input, listing and due columns). Not all in one transaction with the
   * objects after it: a crash before the objects were deleted would leave
   * them with nothing to find them by. Claims and dead letters are other
   * stores' rows and stay.
   */
  async purge(instanceId: string): Promise<void> {
    await this.writes.run(() => this.purgeRows(instanceId));
    await this.objects?.deleteFolder(instanceId);
    await this.writes.run(() => this.sql.purgeInstance.run(instanceId));
  }
}

function renameInput(
  row: { input: string | null; input_ref: string | null } | undefined,
): { value: string | null; value_ref: string | null } | undefined {
  return row && { value: row.input, value_ref: row.input_ref };
}

/** A journal row as the port's entry, with its payload when it is inline (an offloaded one is read by `getValues`). */
function entryOf(row: JournalRow): JournalEntry {
  const e = JSON.parse(row.entry) as Omit<JournalEntry, 'value'>;
  return { ...e, ...(row.value === null ? {} : { value: { data: fromJson(row.value) } }) };
}
