import type { AnyFlow } from '../engine/definition.ts';
import type { RunEvent } from '../engine/snapshot.ts';
import type { ClaimStore } from '../ports/claim-store.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import { sendDispatches } from './effects.ts';
import { applyEvent, type Commit } from './instances.ts';

/** What a control call (cancel, pause, resume) works with. */
export interface ControlDeps {
  readonly store: InstanceStore;
  readonly queue: TaskQueue;
  /** To revoke the claims of running tasks on cancel (they see their AbortSignal at the next heartbeat). */
  readonly claims: ClaimStore | undefined;
  readonly now: () => number;
  /** Who makes the call (an API key's name), for the history. */
  readonly actor?: string;
}

/**
 * Applies a control event from outside any claim (watched until compacted),
 * sends what it dispatched, and revokes the claims of tasks it aborted: a
 * cancel reaches a running task at its worker's next heartbeat. A task run
 * inline in a chain is revoked through the chain's claim.
 */
export async function controlRun(
  deps: ControlDeps,
  flow: AnyFlow,
  instanceId: string,
  event: RunEvent,
): Promise<Commit> {
  const r = await applyEvent(deps.store, flow, instanceId, event, {
    now: deps.now,
    watch: true,
    ...(deps.actor === undefined ? {} : { actor: deps.actor }),
  });
  await sendDispatches(deps.queue, r.effects);
  const claims = deps.claims;
  if (claims) {
    const revoked = new Set(r.effects.flatMap((e) => (e.type === 'abort' ? e.claims : [])));
    await Promise.all([...revoked].map((key) => claims.revoke(instanceId, key)));
  }
  return r;
}
