import type { RunEvent } from '../../../shared/engine/snapshot.ts';
import type { MemoryInstanceStore } from '../../../shared/index.ts';

/** What the tests of children run in lanes read of a run: its items, its journal. */

/** Item `i` of a map over `n` items starts from `i`. */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Every event of a run's journal, oldest first. */
export async function events(store: MemoryInstanceStore, id: string): Promise<RunEvent[]> {
  return (await store.readJournal(id, 0)).flatMap((e) => e.events);
}

/** Every journal entry but the reaper's looks at lanes, as `type key`. */
export const entries = (es: readonly RunEvent[]): string[] =>
  es.filter((e) => e.type !== 'lanes-checked').map((e) => `${e.type} ${'key' in e ? e.key : ''}`);
