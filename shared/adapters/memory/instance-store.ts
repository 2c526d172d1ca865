import { type HistoryEntry, historySortKey } from '../../engine/history.ts';
import { ValueMissingError } from '../../engine/refs.ts';
import type { Snapshot } from '../../engine/snapshot.ts';
import { InstanceExistsError, VersionConflictError } from '../../ports/errors.ts';
import type { InstanceStore, ListPage, ListQuery } from '../../ports/instance-store.ts';
import type { DueInstance, TimerIndex } from '../../ports/timers.ts';

/**
 * In-memory instance store for tests and the in-process runner. Values are
 * kept as JSON text, so what comes back is a copy, as from a real store.
 * It counts committed values per id, which tests use to prove exactly-once.
 */
export class MemoryInstanceStore implements InstanceStore, TimerIndex {
  private readonly snapshots = new Map<string, string>();
  private readonly values = new Map<string, string>();
  /** How many times each `instanceId|valueId` was committed (`created`). */
  readonly commits = new Map<string, number>();

  async create(snapshot: Snapshot, input: unknown): Promise<void> {
    if (this.snapshots.has(snapshot.instanceId)) throw new InstanceExistsError(snapshot.instanceId);
    this.values.set(`${snapshot.instanceId}|${snapshot.inputId}`, toJson(input));
    this.snapshots.set(snapshot.instanceId, JSON.stringify(snapshot));
  }

  async get(instanceId: string): Promise<Snapshot | undefined> {
    const text = this.snapshots.get(instanceId);
    return text === undefined ? undefined : (JSON.parse(text) as Snapshot);
  }

  async update(snapshot: Snapshot): Promise<void> {
    const text = this.snapshots.get(snapshot.instanceId);
    const stored = text === undefined ? undefined : (JSON.parse(text) as Snapshot);
    if (!stored || stored.version !== snapshot.version - 1) {
      throw new VersionConflictError(snapshot.instanceId, snapshot.version - 1);
    }
    this.snapshots.set(snapshot.instanceId, JSON.stringify(snapshot));
  }

  async putValue(instanceId: string, valueId: string, value: unknown): Promise<'created' | 'exists'> {
    const k = `${instanceId}|${valueId}`;
    if (this.values.has(k)) return 'exists';
    this.values.set(k, toJson(value));
    this.commits.set(k, (this.commits.get(k) ?? 0) + 1);
    return 'created';
  }

  async getValues(instanceId: string, valueIds: Iterable<string>): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const id of valueIds) {
      const text = this.values.get(`${instanceId}|${id}`);
      if (text === undefined) throw new ValueMissingError(id);
      out.set(id, text === 'undefined' ? undefined : JSON.parse(text));
    }
    return out;
  }

  async list(query: ListQuery): Promise<ListPage> {
    const all = [...this.snapshots.values()]
      .map((t) => JSON.parse(t) as Snapshot)
      .filter((s) => s.workflow === query.workflow && (!query.status || s.status === query.status))
      .sort((a, b) => b.createdAt - a.createdAt || (a.instanceId < b.instanceId ? -1 : 1));
    const start = query.cursor ? Number(query.cursor) : 0;
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
      ...(start + limit < all.length ? { cursor: String(start + limit) } : {}),
    };
  }

  async due(now: number, limit: number): Promise<DueInstance[]> {
    return [...this.snapshots.values()]
      .map((t) => JSON.parse(t) as Snapshot)
      .filter((s) => s.dueAt !== undefined && s.dueAt <= now)
      .map((s) => ({ instanceId: s.instanceId, dueAt: s.dueAt as number }))
      .sort((a, b) => a.dueAt - b.dueAt)
      .slice(0, limit);
  }

  private readonly history = new Map<string, Map<string, HistoryEntry>>();

  async appendHistory(instanceId: string, entries: readonly HistoryEntry[]): Promise<void> {
    let list = this.history.get(instanceId);
    if (!list) this.history.set(instanceId, (list = new Map()));
    entries.forEach((e, i) => {
      list.set(historySortKey(e, i), structuredClone(e));
    });
  }

  async readHistory(
    instanceId: string,
    options: { readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<{ entries: HistoryEntry[]; cursor?: string }> {
    const all = [...(this.history.get(instanceId) ?? new Map<string, HistoryEntry>()).entries()].sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    const start = options.cursor ? Number(options.cursor) : 0;
    const limit = options.limit ?? 1000;
    const page = all.slice(start, start + limit).map(([, e]) => structuredClone(e));
    return { entries: page, ...(start + limit < all.length ? { cursor: String(start + limit) } : {}) };
  }

  /** Instance ids, for tests. */
  instanceIds(): string[] {
    return [...this.snapshots.keys()];
  }
}

function toJson(value: unknown): string {
  return value === undefined ? 'undefined' : JSON.stringify(value);
}
