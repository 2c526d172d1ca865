import {
  type DeadLetter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterStore,
  deadLetterId,
  deadLetterSortKey,
  poolOf,
  type TaskDeadLetter,
} from '../../ports/dead-letter-store.ts';
import { decodeDeadLetterCursor, encodeDeadLetterCursor } from '../cursor.ts';

/**
 * Dead-letter records in memory, with the identity, order and cursors of
 * every store (the helpers of `ports/dead-letter-store.ts` and
 * `adapters/cursor.ts`).
 *
 * @example
 * ```ts
 * const letters = new MemoryDeadLetterStore();
 * await letters.put({ origin: 'engine', dispatch, at: Date.now(), reason: 'Error: declined', attempts: 3 });
 * ```
 */
export class MemoryDeadLetterStore implements DeadLetterStore {
  private readonly records = new Map<string, DeadLetter>();

  async put(letter: DeadLetter): Promise<'created' | 'exists'> {
    const id = deadLetterId(letter);
    if (this.records.has(id)) return 'exists';
    this.records.set(id, structuredClone(letter));
    return 'created';
  }

  async list(pool: string, options: DeadLetterListOptions = {}): Promise<DeadLetterPage> {
    // The cursor is decoded first, so a bad one is refused whatever the limit.
    const before = options.cursor === undefined ? undefined : decodeDeadLetterCursor(pool, options.cursor);
    const limit = options.limit ?? 50;
    const sorted = [...this.records.values()]
      .filter((l) => poolOf(l) === pool)
      .map((letter) => ({ letter, key: deadLetterSortKey(letter) }))
      .filter((x) => before === undefined || x.key < before)
      .sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    if (limit < 1) return { letters: [] };
    const page = sorted.slice(0, limit);
    const last = page[page.length - 1];
    return {
      letters: page.map((x) => structuredClone(x.letter)),
      ...(sorted.length > limit && last ? { cursor: encodeDeadLetterCursor(pool, last.key) } : {}),
    };
  }

  async ofInstance(instanceId: string, options: { readonly limit?: number } = {}): Promise<TaskDeadLetter[]> {
    return [...this.records.values()]
      .filter((l): l is TaskDeadLetter => l.origin !== 'malformed' && l.dispatch.instanceId === instanceId)
      .slice(0, options.limit ?? 100)
      .map((l) => structuredClone(l));
  }

  async delete(letter: DeadLetter): Promise<boolean> {
    return this.records.delete(deadLetterId(letter));
  }

  /** Every record, in no particular order (tests). */
  all(): DeadLetter[] {
    return [...this.records.values()].map((l) => structuredClone(l));
  }
}
