import type { HistoryEntry } from '../../engine/history.ts';
import { fromJson, toJson } from '../../engine/json.ts';
import { ValueMissingError } from '../../engine/refs.ts';
import { FINAL_STATUSES, type Snapshot } from '../../engine/snapshot.ts';
import { InstanceExistsError, JournalConflictError, PayloadTooLargeError } from '../../ports/errors.ts';
import {
  type InstanceStore,
  type JournalEntry,
  journalSeqOf,
  journalValueId,
  type LaneTimer,
  type ListPage,
  type ListQuery,
  type StoredInstance,
  type TimerPage,
} from '../../ports/instance-store.ts';
import type { DueInstance, TimerIndex } from '../../ports/timers.ts';
import { type CursorScope, decodeCursor, encodeCursor, historyScope, historyStart, listScope } from '../cursor.ts';

interface Stored {
  snapshot: string;
  /** The value id of the run input (the snapshot's `inputId`, which never changes). */
  inputId: string;
  input: string;
  created: string;
  journal: Map<number, string>;
  /** Watched entries (seq -> watchAt). */
  watched: Map<number, number>;
}

/** Options of {@link MemoryInstanceStore}. */
export interface MemoryInstanceStoreOptions {
  /**
   * Largest item, in UTF-8 bytes of its JSON text, as the other stores count
   * theirs: over it, `create`, `append` and `putValue` throw
   * `PayloadTooLargeError` and write nothing. Unset, nothing is too large
   * (the in-process runner has no object store to offload to).
   * @default undefined
   */
  readonly maxItemBytes?: number;
}

/**
 * In-memory instance store for tests and the in-process runner. Everything
 * is kept as JSON text, so what comes back is a copy, as from a real store.
 * It counts commits of each task output (journal payloads and values), which
 * tests use to prove exactly-once.
 */
export class MemoryInstanceStore implements InstanceStore, TimerIndex {
  private readonly instances = new Map<string, Stored>();
  private readonly values = new Map<string, string>();
  /** Lane timers by `instanceId|id`. */
  private readonly timers = new Map<string, LaneTimer>();
  /** How many times each `instanceId|valueId` was committed: values put, and task outputs in journal entries (`instanceId|out:<key>`). */
  readonly commits = new Map<string, number>();
  private readonly maxItemBytes: number | undefined;

  constructor(options: MemoryInstanceStoreOptions = {}) {
    this.maxItemBytes = options.maxItemBytes;
  }

  /** @throws {PayloadTooLargeError} the texts of one item are over `maxItemBytes`. */
  private assertFits(what: string, ...texts: string[]): void {
    if (this.maxItemBytes === undefined) return;
    const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0);
    if (bytes > this.maxItemBytes) throw new PayloadTooLargeError(what, bytes, this.maxItemBytes);
  }

  async create(snapshot: Snapshot, input: unknown, history: readonly HistoryEntry[]): Promise<void> {
    if (this.instances.has(snapshot.instanceId)) throw new InstanceExistsError(snapshot.instanceId);
    const stored: Stored = {
      snapshot: JSON.stringify(snapshot),
      inputId: snapshot.inputId,
      input: toJson(input, `input of instance '${snapshot.instanceId}'`),
      created: JSON.stringify(history),
      journal: new Map(),
      watched: new Map(),
    };
    this.assertFits(`input of instance '${snapshot.instanceId}'`, stored.snapshot, stored.input, stored.created);
    this.instances.set(snapshot.instanceId, stored);
  }

  private stored(instanceId: string): Stored | undefined {
    return this.instances.get(instanceId);
  }

  async load(instanceId: string): Promise<StoredInstance | undefined> {
    const s = this.stored(instanceId);
    if (!s) return undefined;
    const snapshot = JSON.parse(s.snapshot) as Snapshot;
    const tail = this.entriesAfter(s, snapshot.version);
    const values = new Map<string, unknown>([[snapshot.inputId, fromJson(s.input)]]);
    for (const e of tail) if (e.value) values.set(journalValueId(e.seq), e.value.data);
    return { snapshot, tail, values };
  }

  private entriesAfter(s: Stored, afterSeq: number): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (let seq = afterSeq + 1; s.journal.has(seq); seq++) out.push(parseEntry(s.journal.get(seq) as string));
    return out;
  }

  async readJournal(instanceId: string, afterSeq: number): Promise<JournalEntry[]> {
    const s = this.stored(instanceId);
    return s ? this.entriesAfter(s, afterSeq) : [];
  }

  async append(instanceId: string, entry: JournalEntry): Promise<void> {
    const s = this.stored(instanceId);
    if (!s || s.journal.has(entry.seq)) throw new JournalConflictError(instanceId, entry.seq);
    const text = entryJson(instanceId, entry);
    this.assertFits(`journal entry ${entry.seq} of instance '${instanceId}'`, instanceId, text);
    s.journal.set(entry.seq, text);
    if (entry.watchAt !== undefined) s.watched.set(entry.seq, entry.watchAt);
    for (const e of entry.events) {
      if ((e.type === 'task-completed' || e.type === 'skip') && e.valueId === journalValueId(entry.seq)) {
        this.count(`${instanceId}|out:${e.key}`);
      }
    }
  }

  async compact(snapshot: Snapshot): Promise<boolean> {
    const s = this.stored(snapshot.instanceId);
    if (!s) return false;
    if ((JSON.parse(s.snapshot) as Snapshot).version >= snapshot.version) return false;
    s.snapshot = JSON.stringify(snapshot);
    return true;
  }

  async unwatch(instanceId: string, seq: number): Promise<void> {
    this.stored(instanceId)?.watched.delete(seq);
  }

  async get(instanceId: string): Promise<Snapshot | undefined> {
    const s = this.stored(instanceId);
    return s ? (JSON.parse(s.snapshot) as Snapshot) : undefined;
  }

  async putValue(instanceId: string, valueId: string, value: unknown): Promise<'created' | 'exists'> {
    const k = `${instanceId}|${valueId}`;
    if (this.values.has(k)) return 'exists';
    const text = toJson(value, `value '${valueId}' of '${instanceId}'`);
    this.assertFits(`value '${valueId}' of instance '${instanceId}'`, k, text);
    this.values.set(k, text);
    this.count(k);
    return 'created';
  }

  async listValueIds(instanceId: string, prefix: string): Promise<string[]> {
    const head = `${instanceId}|${prefix}`;
    return [...this.values.keys()].filter((k) => k.startsWith(head)).map((k) => k.slice(instanceId.length + 1));
  }

  private readonly counters = new Map<string, number>();

  async addToCounter(instanceId: string, counterId: string, by: number): Promise<number> {
    const k = `${instanceId}|${counterId}`;
    const value = (this.counters.get(k) ?? 0) + by;
    this.counters.set(k, value);
    return value;
  }

  async getCounter(instanceId: string, counterId: string): Promise<number> {
    return this.counters.get(`${instanceId}|${counterId}`) ?? 0;
  }

  private count(k: string): void {
    this.commits.set(k, (this.commits.get(k) ?? 0) + 1);
  }

  async getValues(instanceId: string, valueIds: Iterable<string>): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    const s = this.stored(instanceId);
    for (const id of valueIds) {
      if (s && id === s.inputId) {
        out.set(id, fromJson(s.input));
        continue;
      }
      const seq = journalSeqOf(id);
      if (seq !== undefined) {
        const text = s?.journal.get(seq);
        const entry = text === undefined ? undefined : parseEntry(text);
        if (!entry?.value) throw new ValueMissingError(id);
        out.set(id, entry.value.data);
        continue;
      }
      const text = this.values.get(`${instanceId}|${id}`);
      if (text === undefined) throw new ValueMissingError(id);
      out.set(id, fromJson(text));
    }
    return out;
  }

  async list(query: ListQuery): Promise<ListPage> {
    const all = [...this.instances.values()]
      .map((t) => JSON.parse(t.snapshot) as Snapshot)
      .filter((s) => s.workflow === query.workflow && (!query.status || s.status === query.status))
      .sort((a, b) => b.createdAt - a.createdAt || (a.instanceId < b.instanceId ? -1 : 1));
    const scope = listScope(query);
    const start = offsetOf(scope, query.cursor);
    const limit = query.limit ?? 50;
    const page = all.slice(start, start + limit);
    return {
      items: page.map((s) => ({
        instanceId: s.instanceId,
        workflow: s.workflow,
        status: s.status,
        createdAt: s.createdAt,
        updatedAt: s.updatedAt,
      })),
      ...(start + limit < all.length ? { cursor: encodeCursor(scope, { offset: start + limit }) } : {}),
    };
  }

  async putTimer(instanceId: string, timer: Omit<LaneTimer, 'firedAt'>): Promise<'created' | 'exists'> {
    const k = `${instanceId}|${timer.id}`;
    if (this.timers.has(k)) return 'exists';
    this.timers.set(k, {
      id: timer.id,
      dueAt: timer.dueAt,
      parent: timer.parent,
      item: timer.item,
      ...(timer.retry ? { retry: JSON.parse(JSON.stringify(timer.retry)) } : {}),
      ...(timer.look ? { look: { ...timer.look } } : {}),
    });
    return 'created';
  }

  async fireTimer(instanceId: string, id: string, at: number): Promise<void> {
    const k = `${instanceId}|${id}`;
    const t = this.timers.get(k);
    if (t && t.firedAt === undefined) this.timers.set(k, { ...t, firedAt: at });
  }

  async listTimers(instanceId: string, prefix: string, page: TimerPage = {}): Promise<LaneTimer[]> {
    const from = `${instanceId}|${prefix}`;
    const after = page.after === undefined ? undefined : `${instanceId}|${page.after}`;
    return [...this.timers]
      .filter(([k]) => k.startsWith(from) && (after === undefined || k > after))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, page.limit ?? Number.POSITIVE_INFINITY)
      .map(([, t]) => JSON.parse(JSON.stringify(t)) as LaneTimer);
  }

  async getTimers(instanceId: string, ids: Iterable<string>): Promise<LaneTimer[]> {
    return [...new Set(ids)].sort().flatMap((id) => {
      const t = this.timers.get(`${instanceId}|${id}`);
      return t ? [JSON.parse(JSON.stringify(t)) as LaneTimer] : [];
    });
  }

  async due(now: number, limit: number): Promise<DueInstance[]> {
    const due: DueInstance[] = [];
    for (const [instanceId, s] of this.instances) {
      const snapshot = JSON.parse(s.snapshot) as Snapshot;
      const live = !FINAL_STATUSES.has(snapshot.status);
      if (live && snapshot.dueAt !== undefined && snapshot.dueAt <= now)
        due.push({ instanceId, dueAt: snapshot.dueAt });
      for (const [seq, at] of s.watched) if (at <= now) due.push({ instanceId, dueAt: at, watched: seq });
    }
    for (const [k, t] of this.timers) {
      if (t.firedAt !== undefined || t.dueAt > now) continue;
      due.push({ instanceId: k.slice(0, k.indexOf('|')), dueAt: t.dueAt, timer: t.id });
    }
    return due.sort((a, b) => a.dueAt - b.dueAt).slice(0, limit);
  }

  async duePurges(now: number, limit: number): Promise<DueInstance[]> {
    const due: DueInstance[] = [];
    for (const [instanceId, s] of this.instances) {
      const snapshot = JSON.parse(s.snapshot) as Snapshot;
      if (FINAL_STATUSES.has(snapshot.status) && snapshot.dueAt !== undefined && snapshot.dueAt <= now) {
        due.push({ instanceId, dueAt: snapshot.dueAt });
      }
    }
    return due.sort((a, b) => a.dueAt - b.dueAt).slice(0, limit);
  }

  async readHistory(
    instanceId: string,
    options: { readonly limit?: number; readonly cursor?: string; readonly afterSeq?: number } = {},
  ): Promise<{ entries: HistoryEntry[]; cursor?: string }> {
    const scope = historyScope(instanceId);
    // The position of every store's history cursor: journal entry `seq` (0: the creation), after `skip` of its entries.
    const from = historyStart(instanceId, options);
    const s = this.stored(instanceId);
    if (!s) return { entries: [] };
    const all: { seq: number; skip: number; entry: HistoryEntry }[] = [];
    const add = (seq: number, list: readonly HistoryEntry[]) => {
      for (const [skip, entry] of list.entries()) all.push({ seq, skip, entry });
    };
    add(0, JSON.parse(s.created) as HistoryEntry[]);
    for (const seq of [...s.journal.keys()].sort((a, b) => a - b))
      add(seq, parseEntry(s.journal.get(seq) as string).history);
    const start = all.findIndex((e) => e.seq > from.seq || (e.seq === from.seq && e.skip >= from.skip));
    const rest = start < 0 ? [] : all.slice(start);
    const limit = options.limit ?? 1000;
    const next = rest[limit];
    return {
      entries: rest.slice(0, limit).map((e) => e.entry),
      ...(next ? { cursor: encodeCursor(scope, { seq: next.seq, skip: next.skip }) } : {}),
    };
  }

  async purge(instanceId: string): Promise<void> {
    // Instance ids have no '|', so the prefix matches this instance's keys only.
    const mine = (k: string) => k.startsWith(`${instanceId}|`);
    for (const k of [...this.values.keys()]) if (mine(k)) this.values.delete(k);
    for (const k of [...this.counters.keys()]) if (mine(k)) this.counters.delete(k);
    for (const k of [...this.timers.keys()]) if (mine(k)) this.timers.delete(k);
    // The journal lives in the instance's record: it goes with the snapshot, last.
    this.instances.delete(instanceId);
  }

  /** Instance ids, for tests. */
  instanceIds(): string[] {
    return [...this.instances.keys()];
  }

  /** Everything stored, as text, for tests that prove a request changed nothing. */
  dump(): string {
    const instances = [...this.instances].map(([id, s]) => [
      id,
      { ...s, journal: [...s.journal], watched: [...s.watched] },
    ]);
    return JSON.stringify({
      instances,
      values: [...this.values],
      counters: [...this.counters],
      timers: [...this.timers],
    });
  }

  /** Number of journal entries of an instance, for tests. */
  journalLength(instanceId: string): number {
    return this.stored(instanceId)?.journal.size ?? 0;
  }
}

/** Where a page starts: 0 without a cursor. @throws {InvalidCursorError} a cursor not made for `scope`. */
function offsetOf(scope: CursorScope, cursor: string | undefined): number {
  return cursor === undefined ? 0 : decodeCursor(scope, cursor, { offset: 'integer' }).offset;
}

/**
 * An entry as text; a payload of `undefined` survives the round trip.
 * @throws {PayloadSerializationError} JSON cannot express its payload, as on every store.
 */
function entryJson(instanceId: string, entry: JournalEntry): string {
  const { value, ...rest } = entry;
  const subject = `payload of journal entry ${entry.seq} of '${instanceId}'`;
  return JSON.stringify({ ...rest, ...(value ? { value: toJson(value.data, subject) } : {}) });
}

function parseEntry(text: string): JournalEntry {
  const raw = JSON.parse(text) as Omit<JournalEntry, 'value'> & { value?: string };
  const { value, ...rest } = raw;
  return { ...rest, ...(value === undefined ? {} : { value: { data: fromJson(value) } }) };
}
