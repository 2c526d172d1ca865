import type { AnyFlow } from '../engine/definition.ts';
import type { DeadLetterStore } from '../ports/dead-letter-store.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import { commit, compactRun, type RunState } from './instances.ts';

/** Pages of a run's dead letters one purge deletes at most (100 letters a page). */
const MAX_LETTER_PAGES = 100;

/**
 * Purges a finished run whose retention ended (see `purgeDue`): who writes
 * what, under which condition:
 *
 * 1. the `purge` entry is committed at the journal's next `seq` (put if
 *    absent, like any commit): the fence. The reducer takes nothing after
 *    it, so an operator's retry racing the purge either lands first (the run
 *    is running again, the fence changes nothing and nothing is deleted) or
 *    loses (the retry finds the run gone). Readers see the run gone from the
 *    fence on (`purging`), though its records are still there;
 * 2. the run's dead letters are deleted (nothing could redrive them now);
 * 3. `InstanceStore.purge` deletes the journal, the values, the counters and
 *    the offloaded objects, and the snapshot last. A purge cut short leaves
 *    the snapshot on the due index (its due time has passed), so the next
 *    reaper pass loads the fenced run and purges again; every delete is
 *    idempotent.
 *
 * @returns whether the run is purged (`false`: it was running again).
 */
export async function purgeRun(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  options: {
    readonly now: () => number;
    /** Where the run's dead letters are: they go too, before its records (a redrive could not reopen it). */
    readonly deadLetters?: DeadLetterStore;
  },
): Promise<boolean> {
  const instanceId = run.snapshot.instanceId;
  if (!run.snapshot.purging) {
    const fenced = await commit(store, flow, run, () => [{ type: 'purge' }], options);
    if (!fenced.run.snapshot.purging) return false;
    // The snapshot says so too before anything goes: the journal (the fence with it) is deleted first.
    await compactRun(store, fenced.run);
  }
  const letters = options.deadLetters;
  // A page at a time until none is left; past the bound, the next pass goes on (the snapshot stays until then).
  for (let pages = 0; letters; pages++) {
    const page = await letters.ofInstance(instanceId);
    if (page.length === 0) break;
    if (pages === MAX_LETTER_PAGES) throw new Error(`purge of '${instanceId}': dead letters left for the next pass`);
    await Promise.all(page.map((letter) => letters.delete(letter)));
  }
  await store.purge(instanceId);
  return true;
}
