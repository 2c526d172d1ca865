import type { AnyFlow } from '../engine/definition.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import { commit, compactRun, type RunState } from './instances.ts';

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
 * 2. `InstanceStore.purge` deletes the journal, the values, the counters and
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
  options: { readonly now: () => number },
): Promise<boolean> {
  if (!run.snapshot.purging) {
    const fenced = await commit(store, flow, run, () => [{ type: 'purge' }], options);
    if (!fenced.run.snapshot.purging) return false;
    // The snapshot says so too before anything goes: the journal (the fence with it) is deleted first.
    await compactRun(store, fenced.run);
  }
  await store.purge(run.snapshot.instanceId);
  return true;
}
