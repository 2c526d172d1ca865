import type { HistoryEntry } from '../engine/history.ts';
import type { RunStatus, Snapshot } from '../engine/snapshot.ts';

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
 * Where instances live: one snapshot per instance, and beside it the values
 * (run input, task outputs, signal payloads) the snapshot refers to.
 *
 * Only single-item conditional writes: no method needs a transaction.
 */
export interface InstanceStore {
  /**
   * Stores a new instance: its input value, then its snapshot on condition
   * that no snapshot has this id.
   *
   * @throws {InstanceExistsError} the id is taken; the existing instance is untouched.
   * @throws {PayloadTooLargeError} the input does not fit; nothing was created.
   */
  create(snapshot: Snapshot, input: unknown): Promise<void>;

  /** The snapshot, read consistently, or `undefined`. */
  get(instanceId: string): Promise<Snapshot | undefined>;

  /**
   * Replaces the snapshot on condition that the stored version is
   * `snapshot.version - 1` (the version the caller read).
   *
   * @throws {VersionConflictError} someone else updated it first; nothing was written.
   */
  update(snapshot: Snapshot): Promise<void>;

  /**
   * Stores a value on condition that no value has this id: the first writer
   * wins and a later one changes nothing. This is what makes a task's output
   * committed exactly once however often the task runs.
   *
   * @returns `created`, or `exists` when a value was already there (unchanged).
   * @throws {PayloadTooLargeError} the value does not fit; nothing was written.
   */
  putValue(instanceId: string, valueId: string, value: unknown): Promise<'created' | 'exists'>;

  /**
   * Reads values by id, consistently.
   *
   * @throws {ValueMissingError} when one is not stored.
   */
  getValues(instanceId: string, valueIds: Iterable<string>): Promise<Map<string, unknown>>;

  /** Instances of a workflow, newest first, optionally of one status. Eventually consistent. */
  list(query: ListQuery): Promise<ListPage>;

  /**
   * Appends history entries. Each entry is its own record, keyed by its time,
   * version and position, so writing the same entries again changes nothing.
   * Entries expire after the store's history retention.
   */
  appendHistory(instanceId: string, entries: readonly HistoryEntry[]): Promise<void>;

  /** History entries, oldest first, up to `limit` from `cursor`. Consistent. */
  readHistory(
    instanceId: string,
    options?: { readonly limit?: number; readonly cursor?: string },
  ): Promise<{ readonly entries: readonly HistoryEntry[]; readonly cursor?: string }>;
}
