import { dueWork } from '../engine/reducer.ts';
import type { RunEvent } from '../engine/snapshot.ts';
import { FINAL_STATUSES } from '../engine/snapshot.ts';
import type { Claim, ClaimStore } from '../ports/claim-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import type { TimerIndex } from '../ports/timers.ts';
import { sendDispatches } from './effects.ts';
import { applyEvents } from './instances.ts';
import type { WorkflowRegistry } from './registry.ts';

/**
 * The reaper, transport-free: reconciles what the store says against what
 * the queues may have lost. One pass:
 *
 * 1. candidates = instances with a due time (timers, old dispatches) plus
 *    instances of claims whose lease expired (their worker died);
 * 2. per instance, one conditional update that fires every due timer,
 *    re-dispatches tasks whose worker died (expired claim) or whose dispatch
 *    is old with no live claim (a message lost before or after the queue),
 *    and marks long-running tasks with a live claim as checked;
 * 3. sends the resulting dispatches, then releases the expired claims.
 *
 * Every step is idempotent: two reapers racing produce a version conflict
 * (one reloads and finds nothing left to do) or a duplicate message that
 * the claims absorb.
 */
export interface ReaperDeps {
  readonly store: InstanceStore;
  readonly timers: TimerIndex;
  readonly claims: ClaimStore;
  readonly queue: TaskQueue;
  readonly registry: WorkflowRegistry;
  readonly clock: Clock;
  /** Instances per pass, from each source. @default 100 */
  readonly batchSize?: number;
}

export interface ReapSummary {
  readonly instances: number;
  readonly timersFired: number;
  readonly redispatched: number;
  readonly expiredClaims: number;
  readonly errors: number;
}

export async function reapOnce(deps: ReaperDeps): Promise<ReapSummary> {
  const now = deps.clock.now();
  const limit = deps.batchSize ?? 100;
  const [due, expired] = await Promise.all([deps.timers.due(now, limit), deps.claims.expired(now, limit)]);
  const expiredByInstance = new Map<string, Claim[]>();
  for (const c of expired) {
    const list = expiredByInstance.get(c.instanceId) ?? [];
    list.push(c);
    expiredByInstance.set(c.instanceId, list);
  }
  const ids = new Set([...due.map((d) => d.instanceId), ...expiredByInstance.keys()]);
  let timersFired = 0;
  let redispatched = 0;
  let errors = 0;
  for (const instanceId of ids) {
    try {
      const r = await reapInstance(deps, instanceId, expiredByInstance.get(instanceId) ?? []);
      timersFired += r.timersFired;
      redispatched += r.redispatched;
    } catch {
      errors++;
    }
  }
  return { instances: ids.size, timersFired, redispatched, expiredClaims: expired.length, errors };
}

async function reapInstance(
  deps: ReaperDeps,
  instanceId: string,
  listed: readonly Claim[],
): Promise<{ timersFired: number; redispatched: number }> {
  const now = deps.clock.now();
  // The expiry index is eventually consistent and passes may overlap: act only
  // on what a consistent read of each claim still says.
  const current = await Promise.all(listed.map((c) => deps.claims.get(c.instanceId, c.taskKey)));
  const expired = current.filter((c): c is Claim => c !== undefined && c.expiresAt <= now);
  const releaseAll = () => Promise.all(expired.map((c) => deps.claims.release(c)));
  const snapshot = await deps.store.get(instanceId);
  if (!snapshot || FINAL_STATUSES.has(snapshot.status) || !deps.registry.has(snapshot.workflow)) {
    await releaseAll();
    return { timersFired: 0, redispatched: 0 };
  }
  const flow = deps.registry.get(snapshot.workflow);
  const { timers, stale } = dueWork(snapshot, now);
  const events: RunEvent[] = timers.map((key) => ({ type: 'timer-fired', key }));
  const handled = new Set<string>();
  for (const c of expired) {
    const t = snapshot.tasks[c.taskKey];
    // A claim left by an older attempt says nothing about the current one.
    if (t?.state !== 'dispatched' || t.attempt !== c.attempt) continue;
    handled.add(c.taskKey);
    events.push(
      snapshot.status === 'PAUSED'
        ? { type: 'task-held', key: c.taskKey, attempt: t.attempt }
        : {
            type: 'redispatch',
            key: c.taskKey,
            attempt: t.attempt,
            reason: c.state === 'reserved' ? 'reservation-expired' : 'lease-expired',
          },
    );
  }
  for (const key of stale) {
    const t = snapshot.tasks[key];
    if (!t || handled.has(key)) continue;
    const claim = await deps.claims.get(instanceId, key);
    if (claim && claim.expiresAt > now && claim.attempt === t.attempt) events.push({ type: 'dispatch-checked', key });
    else if (snapshot.status === 'PAUSED') events.push({ type: 'task-held', key, attempt: t.attempt });
    else events.push({ type: 'redispatch', key, attempt: t.attempt, reason: 'lost' });
  }
  let redispatched = 0;
  if (events.length > 0) {
    const r = await applyEvents(deps.store, flow, instanceId, events, () => deps.clock.now(), snapshot);
    await sendDispatches(deps.queue, r.effects);
    redispatched = events.filter((e) => e.type === 'redispatch').length;
  }
  await releaseAll();
  return { timersFired: timers.length, redispatched };
}

/**
 * Runs passes until `remainingMs()` drops under `stopBeforeMs`, pausing
 * `intervalMs` between passes: EventBridge wakes the reaper once a minute,
 * and looping inside the invocation detects failures within seconds.
 */
export async function reapFor(
  deps: ReaperDeps,
  remainingMs: () => number,
  options: { readonly intervalMs?: number; readonly stopBeforeMs?: number } = {},
): Promise<ReapSummary> {
  const total = { instances: 0, timersFired: 0, redispatched: 0, expiredClaims: 0, errors: 0 };
  const interval = options.intervalMs ?? 5_000;
  const stopBefore = options.stopBeforeMs ?? 10_000;
  do {
    const s = await reapOnce(deps);
    total.instances += s.instances;
    total.timersFired += s.timersFired;
    total.redispatched += s.redispatched;
    total.expiredClaims += s.expiredClaims;
    total.errors += s.errors;
    if (remainingMs() - interval < stopBefore) break;
    await deps.clock.sleep(interval);
  } while (remainingMs() >= stopBefore);
  return total;
}
