import type { HistoryEntry } from '../engine/history.ts';
import type { RunEvent, RunStatus, Snapshot } from '../engine/snapshot.ts';

/** One line of an instance listing. */
export interface InstanceSummary {
  readonly instanceId: string;
  readonly workflow: string;
  readonly status: RunStatus;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface ListQuery {
  readonly workflow: string;
  readonly status?: RunStatus;
  /** @default 50 */
  readonly limit?: number;
  /** Opaque cursor from a previous page. */
  readonly cursor?: string;
}

export interface ListPage {
  readonly items: readonly InstanceSummary[];
  /** Present when more items may follow. */
  readonly cursor?: string;
}

/**
 * One committed entry of an instance's journal: the commit log of the run.
 *
 * Entries are numbered 1, 2, 3… per instance. An entry is put on condition
 * that the journal has none at its `seq`, so the put is the commit, the
 * optimistic lock and the history entry in one write: of two writers racing
 * for one `seq` exactly one wins, and the other reloads and re-applies its
 * event (which may by then change nothing). Entries are never rewritten.
 */
export interface JournalEntry {
  readonly seq: number;
  /** Commit time (epoch ms): the `now` the reducer applied the events with. */
  readonly at: number;
  /** The events, applied in order to the state at `seq - 1`. */
  readonly events: readonly RunEvent[];
  /**
   * The payload committed with the events (a task's output, a signal's
   * payload, a skipped task's output), addressed as `journalValueId(seq)`.
   */
  readonly value?: { readonly data: unknown };
  /** What the history shows for these events (computed at commit). */
  readonly history: readonly HistoryEntry[];
  /**
   * Set on entries committed outside a worker's claim (API control calls):
   * until `unwatch`, the entry is listed by the due index at this time, so
   * a process that dies between committing and compacting leaves the
   * reaper a way back to the instance.
   */
  readonly watchAt?: number;
}

/** An instance as stored: the last compacted snapshot and the journal entries after it. */
export interface StoredInstance {
  /** The compacted snapshot: the state after entry `snapshot.version`. */
  readonly snapshot: Snapshot;
  /** Entries `snapshot.version + 1`, `+ 2`, … in order (usually few: see `compact`). */
  readonly tail: readonly JournalEntry[];
  /** Values that came with the read (the run input when stored inline, the tail's payloads), by value id. */
  readonly values: ReadonlyMap<string, unknown>;
}

/** The value id of the payload committed with journal entry `seq`. */
export const journalValueId = (seq: number): string => `j:${seq}`;

/** The `seq` of a journal value id, or `undefined` for another kind of id. */
export function journalSeqOf(valueId: string): number | undefined {
  if (!valueId.startsWith('j:')) return undefined;
  const n = Number(valueId.slice(2));
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** A page of lane timers (see `InstanceStore.listTimers`). */
export interface TimerPage {
  /** Only timers whose id sorts after this one. */
  readonly after?: string;
  /** At most this many (at least 1). */
  readonly limit?: number;
}

/**
 * A delay of a child run in lanes (a map's item, a fork's branch; see
 * `runtime/lanes.ts`), or the backoff before a retry of one of its tasks,
 * kept apart from the run's journal so that children that park at once
 * never race for its next entry: a record of its own, found by the reaper
 * through the due index when it is due.
 */
export interface LaneTimer {
  /** The delay's key (its step at the child's map indices): one timer per delay of a child. */
  readonly id: string;
  readonly dueAt: number;
  /** The map's or fork's key (`Dispatch.lane.parent`). */
  readonly parent: string;
  /** The child's index in it. */
  readonly item: number;
  /** When the reaper fired it: it is off the due index then, and kept until the run is purged. */
  readonly firedAt?: number;
  /**
   * Set on the backoff of a task of the child that failed and is retried
   * (its id is then `<task key>#<attempt>`): the task, the attempt the timer
   * starts, and the failure before it (the attempt history of a dead letter
   * reads it).
   */
  readonly retry?: LaneRetry;
  /**
   * Set on the reaper's look at a fork or map run in the lane of child
   * `item` of `parent` (see `laneFork`, `laneMap`; its id is then
   * `<key>~look~<n>`): such a group is not in the frontier, so its look, which starts again its
   * branches that stopped, waits here, and each look puts the next.
   */
  readonly look?: LaneLookTimer;
}

/** See {@link LaneTimer.look}. */
export interface LaneLookTimer {
  /** The fork's key (its branches' `Dispatch.lane.parent`). */
  readonly group: string;
  /** The look's number: the next look is `n + 1`. */
  readonly n: number;
  /** When the fork's branches were last sent: a backlog in their queue explains one no worker took only so long after. */
  readonly sentAt: number;
  /** A map's counter at the look before (a map's item is stalled only when it stood still between two looks). @default 0 */
  readonly seen?: number;
}

/** The retry a lane timer waits for (see {@link LaneTimer.retry}). */
export interface LaneRetry {
  readonly task: string;
  readonly attempt: number;
  /** When the attempt before it failed, where, and how. */
  readonly failedAt: number;
  readonly worker?: string;
  readonly error: { readonly name: string; readonly message: string };
  /**
   * Set when no attempt failed: the worker holding the step's reservation
   * stopped before it could have done anything the reaper can tell, and the
   * same attempt is sent again (see `laneClaimExpired`). Its id is then
   * `<task key>#<attempt>~<the claim's fence>`.
   */
  readonly lapse?: true;
  /**
   * Set when the reaper put this retry for a worker that died holding a
   * claim (see `laneClaimExpired`): that claim, as `<task key>~<fence>`, so
   * that a later pass over the same expired claim records nothing twice.
   */
  readonly lostClaim?: string;
}

/**
 * Where instances live: per instance a journal (the commit log), a
 * compacted snapshot (a projection of the journal, with the listing and
 * due-index keys), and values stored beside them (the run input, and the
 * few task outputs that need a deterministic id: see `putValue`).
 *
 * Only single-item conditional writes (and `purge`'s plain deletes): no
 * method needs a transaction.
 */
export interface InstanceStore {
  /**
   * Stores a new instance: its snapshot (already reduced past `start`, at
   * version 0 of the journal) with its input and its first history entries,
   * on condition that no instance has this id.
   *
   * @throws {InstanceExistsError} the id is taken; the existing instance is untouched.
   * @throws {PayloadTooLargeError} the input does not fit; nothing was created.
   */
  create(snapshot: Snapshot, input: unknown, history: readonly HistoryEntry[]): Promise<void>;

  /** The compacted snapshot and the journal after it, read consistently, or `undefined`. */
  load(instanceId: string): Promise<StoredInstance | undefined>;

  /** Journal entries after `afterSeq`, in order, read consistently (after losing a race for a `seq`). */
  readJournal(instanceId: string, afterSeq: number): Promise<JournalEntry[]>;

  /**
   * Commits `entry` on condition that the instance's journal has no entry
   * at `entry.seq`.
   *
   * @throws {JournalConflictError} another writer committed that `seq` first; nothing was written.
   * @throws {PayloadTooLargeError} the entry does not fit; nothing was written.
   */
  append(instanceId: string, entry: JournalEntry): Promise<void>;

  /**
   * Stores `snapshot` as the compacted state (with its listing and due-index
   * keys), on condition that the stored one is older (a lower version): a
   * newer compaction is never replaced by an older one.
   *
   * @returns whether it was written (`false`: a compaction at this version or later was already there).
   */
  compact(snapshot: Snapshot): Promise<boolean>;

  /** Takes a watched entry (see `JournalEntry.watchAt`) off the due index, once a compaction covers it. */
  unwatch(instanceId: string, seq: number): Promise<void>;

  /** The compacted snapshot only (possibly behind the journal), or `undefined`. */
  get(instanceId: string): Promise<Snapshot | undefined>;

  /**
   * Stores a value under an id chosen by the caller, on condition that no
   * value has this id: the first writer wins and a later one changes nothing.
   * For values that need a deterministic id (a map item's result, read by
   * template): everything else travels inside journal entries. Ids starting
   * with `input:` or `j:` are the store's own (the run input, journal
   * payloads) and are not for `putValue`.
   *
   * @returns `created`, or `exists` when a value was already there (unchanged).
   * @throws {PayloadTooLargeError} the value does not fit; nothing was written.
   */
  putValue(instanceId: string, valueId: string, value: unknown): Promise<'created' | 'exists'>;

  /**
   * Ids of the values put with `putValue` whose id starts with `prefix`,
   * read consistently (a map's item results, to recount a map the reaper
   * finds stalled).
   */
  listValueIds(instanceId: string, prefix: string): Promise<string[]>;

  /**
   * Adds `by` to a counter of the instance, atomically (no condition, so
   * concurrent adds never conflict), creating it at 0 first.
   *
   * @returns the counter's value after the add.
   */
  addToCounter(instanceId: string, counterId: string, by: number): Promise<number>;

  /** A counter's value, read consistently; 0 when it was never added to. */
  getCounter(instanceId: string, counterId: string): Promise<number>;

  /**
   * Puts a lane timer (see {@link LaneTimer}) on condition that none has
   * its id: it is in the due index (`TimerIndex.due`, with `timer` set)
   * until it is fired.
   *
   * @returns `created`, or `exists` when a timer with this id was already there (unchanged, fired or not).
   */
  putTimer(instanceId: string, timer: Omit<LaneTimer, 'firedAt'>): Promise<'created' | 'exists'>;

  /**
   * Marks a lane timer as fired at `at` and takes it off the due index. An
   * unknown timer, or one fired already, is left as it is.
   */
  fireTimer(instanceId: string, id: string, at: number): Promise<void>;

  /**
   * The lane timers of an instance whose ids start with `prefix`, fired or
   * not, read consistently, by id; with `page`, only those whose id comes
   * after `page.after`, at most `page.limit` of them (a page: the next one
   * starts after its last id).
   */
  listTimers(instanceId: string, prefix: string, page?: TimerPage): Promise<LaneTimer[]>;

  /** The lane timers of an instance with these ids, fired or not, read consistently, by id; unknown ids are left out. */
  getTimers(instanceId: string, ids: Iterable<string>): Promise<LaneTimer[]>;

  /**
   * Reads values by id, consistently: the run input, journal payloads
   * (`journalValueId`), values put with `putValue`.
   *
   * @throws {ValueMissingError} when one is not stored.
   */
  getValues(instanceId: string, valueIds: Iterable<string>): Promise<Map<string, unknown>>;

  /**
   * Instances of a workflow, newest first, optionally of one status.
   * Eventually consistent, and as of each instance's last compaction.
   *
   * @throws {InvalidCursorError} `cursor` is not one this store returned for
   *   the same workflow and status; nothing was read.
   */
  list(query: ListQuery): Promise<ListPage>;

  /**
   * The history, oldest first, up to `limit` entries from `cursor`: the
   * creation's entries, then each journal entry's. Consistent and exact: an
   * entry is in the history if and only if its commit is in the journal.
   * Without a cursor, `afterSeq` starts after journal entry `afterSeq` (0:
   * after the creation's entries): a reader that holds the history up to a
   * version (`HistoryEntry.version`) reads only what followed it.
   *
   * @throws {InvalidCursorError} `cursor` is not one this store returned for
   *   this instance's history; nothing was read.
   */
  readHistory(
    instanceId: string,
    options?: { readonly limit?: number; readonly cursor?: string; readonly afterSeq?: number },
  ): Promise<{ readonly entries: readonly HistoryEntry[]; readonly cursor?: string }>;

  /**
   * Deletes everything stored for an instance: its journal, its values, its
   * counters, its offloaded objects (the object store's folder
   * `<instanceId>`, see `ObjectStore.deleteFolder`), and last its snapshot
   * (with the listing and due-index keys it carries). The snapshot goes last
   * so that a purge cut short (a crash, a throttle) leaves the instance
   * findable through the due index, and the next purge finishes it. Not
   * deleted: what other stores keep for the instance (claims, dead letters).
   *
   * The caller decides that the instance may go (the reaper, once its
   * retention ended, after fencing the journal: see `purgeRun`); a write
   * racing with the purge may outlive it. Idempotent: purging an unknown or
   * already purged instance does nothing.
   *
   * @example
   * ```ts
   * await store.purge('order-17');
   * await store.get('order-17'); // undefined
   * ```
   */
  purge(instanceId: string): Promise<void>;
}
