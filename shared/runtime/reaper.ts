import { compileFlow, taskOf } from '../engine/compile.ts';
import type { AnyFlow } from '../engine/definition.ts';
import { DEFAULT_POOL, poolsOf } from '../engine/describe.ts';
import { laneDelayWrites, laneWaitNames, laneWaitOf } from '../engine/lanes.ts';
import { dueWork, purgeDue } from '../engine/reducer.ts';
import type { Dispatch, RunEvent, TaskActivity } from '../engine/snapshot.ts';
import { FINAL_STATUSES } from '../engine/snapshot.ts';
import type { Priority } from '../engine/task.ts';
import type { Claim, ClaimStore } from '../ports/claim-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeadLetterStore } from '../ports/dead-letter-store.ts';
import type { DeadLetterQueue } from '../ports/dead-letters.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import type { TimerIndex } from '../ports/timers.ts';
import { drainDeadLetters, putDeadLettersOf } from './dead-letters.ts';
import { REAPER_DEFAULTS } from './defaults.ts';
import { dispatchesOf, sendDispatches } from './effects.ts';
import { applyEvents, compactRun, type RunState, runOf } from './instances.ts';
import { settleLaneSignals } from './lane-signals.ts';
import { checkLanes, fireLaneTimers, type LaneLook, laneClaimExpired, putLaneResult } from './lanes.ts';
import type { WorkflowRegistry } from './registry.ts';
import { purgeRun } from './retention.ts';

/**
 * The reaper, transport-free: reconciles what the journal says against what
 * the queues and workers may have lost. One pass:
 *
 * 1. candidates = instances with a due time (timers, old dispatches, control
 *    calls' watched entries, lane timers) plus instances of claims whose
 *    lease expired (their worker died);
 * 2. per instance, the due lane timers are fired (`fireLaneTimers`: no
 *    journal entry), then one journal entry that fires every due timer, re-dispatches
 *    tasks whose worker died (expired claim) or whose dispatch is old with no
 *    live claim (a message lost before or after the queue), and marks
 *    long-running tasks with a live claim as checked (a claim that expired on
 *    a step of a child in its lane is counted there, `laneClaimExpired`: a
 *    lane timer sends the step again, or the failure joins this entry); then, for each map or
 *    fork run in lanes whose check time has come, a look that ends it or
 *    starts again its children that stopped (`checkLanes`); then a
 *    compaction, which also repairs one a dead writer left undone;
 * 3. sends the resulting dispatches, then releases the expired claims and
 *    takes the watched entries off the due index;
 * 4. purges finished runs whose retention ended (see `purgeRun`), listed
 *    apart from live work (`TimerIndex.duePurges`) and taken after it, so a
 *    backlog of purges never holds up a timer;
 * 5. drains each pool's SQS DLQ into the dead-letter store (see
 *    `drainDeadLetters`): what SQS gave up on becomes an inspectable record.
 *
 * Every step is idempotent: two reapers racing lose a journal race (one
 * reloads and finds nothing left to do) or send a duplicate message that the
 * claims absorb.
 */
export interface ReaperDeps {
  readonly store: InstanceStore;
  readonly timers: TimerIndex;
  readonly claims: ClaimStore;
  readonly queue: TaskQueue;
  readonly registry: WorkflowRegistry;
  readonly clock: Clock;
  /** Instances per pass, from each source; also DLQ messages drained per pool. @default REAPER_DEFAULTS.batchSize */
  readonly batchSize?: number;
  /**
   * How long a backlog in its queue explains a dispatch that no worker took
   * (see `REAPER_DEFAULTS.maxQueueWaitMs`): past it, the reaper sends it again.
   * @default REAPER_DEFAULTS.maxQueueWaitMs
   */
  readonly maxQueueWaitMs?: number;
  /**
   * Where a task is recorded when the reaper's commit fails its run (its
   * worker died on its last attempt), and where the pools' DLQ messages are
   * drained to (with {@link deadLetterQueue}).
   */
  readonly deadLetters?: DeadLetterStore;
  /**
   * The pools' SQS DLQs, drained into {@link deadLetters} each pass, for
   * every pool a registered workflow uses.
   * @default none: nothing is drained
   */
  readonly deadLetterQueue?: DeadLetterQueue;
  /** Called with each pass's summary by {@link reapFor} (logs, metrics). */
  readonly onPass?: (summary: ReapSummary) => void;
}

export interface ReapSummary {
  readonly instances: number;
  readonly timersFired: number;
  readonly redispatched: number;
  readonly expiredClaims: number;
  /** Messages moved from the pools' SQS DLQs into the dead-letter store. */
  readonly drained: number;
  readonly errors: number;
  /** Finished runs purged (their retention ended). */
  readonly purged: number;
  /**
   * A source gave a whole batch and the pass moved something: more may be
   * due already, so the next pass need not wait.
   */
  readonly backlog: boolean;
}

export async function reapOnce(deps: ReaperDeps): Promise<ReapSummary> {
  const now = deps.clock.now();
  const limit = deps.batchSize ?? REAPER_DEFAULTS.batchSize;
  const [due, expired] = await Promise.all([deps.timers.due(now, limit), deps.claims.expired(now, limit)]);
  const work = new Map<string, Work>();
  const of = (id: string) => {
    let w = work.get(id);
    if (!w) work.set(id, (w = { claims: [], watched: [], timers: [] }));
    return w;
  };
  for (const d of due) {
    const w = of(d.instanceId);
    if (d.watched !== undefined) w.watched.push(d.watched);
    if (d.timer !== undefined) w.timers.push(d.timer);
  }
  for (const c of expired) of(c.instanceId).claims.push(c);
  let timersFired = 0;
  let redispatched = 0;
  let purged = 0;
  let errors = 0;
  const backlog = backlogOf(deps.queue);
  // Instances are independent of each other: a few at a time, so a pass of a
  // full batch takes a few round trips per instance, not the sum of them all.
  const workOff = async (items: [string, Work][]) => {
    const lane = async () => {
      for (let next = items.shift(); next; next = items.shift()) {
        const [instanceId, w] = next;
        try {
          const r = await reapInstance(deps, instanceId, w, backlog);
          timersFired += r.timersFired;
          redispatched += r.redispatched;
          if (r.purged) purged++;
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(REAPER_DEFAULTS.concurrency, items.length) }, lane));
  };
  await workOff([...work]);
  // Then finished runs whose retention ended, read apart: however many wait, live work went first.
  const duePurges = await deps.timers.duePurges(now, limit);
  const purges = duePurges.filter((d) => !work.has(d.instanceId));
  await workOff(purges.map((d) => [d.instanceId, { claims: [], watched: [], timers: [] }]));
  let drained = 0;
  if (deps.deadLetters && deps.deadLetterQueue) {
    const drain = { store: deps.deadLetters, queue: deps.deadLetterQueue, clock: deps.clock, instances: deps.store };
    const pools = new Set([DEFAULT_POOL, ...[...deps.registry.all()].flatMap(poolsOf)]);
    for (const pool of pools) {
      try {
        drained += await drainDeadLetters(drain, pool, { max: limit });
      } catch {
        errors++;
      }
    }
  }
  return {
    instances: work.size + purges.length,
    timersFired,
    redispatched,
    expiredClaims: expired.length,
    drained,
    errors,
    purged,
    backlog:
      (due.length >= limit || expired.length >= limit || duePurges.length >= limit) &&
      timersFired + redispatched + purged + expired.length > 0,
  };
}

/** What a pass found due for one instance: expired claims, watched entries, lane timers. */
interface Work {
  readonly claims: Claim[];
  readonly watched: number[];
  readonly timers: string[];
}

/** How many messages wait in a queue, asked at most once per queue per pass. */
type Backlog = (pool: string, priority: Priority) => Promise<number>;

function backlogOf(queue: TaskQueue): Backlog {
  const asked = new Map<string, Promise<number>>();
  return (pool, priority) => {
    const k = `${pool}|${priority}`;
    let w = asked.get(k);
    // Unknown counts as no backlog: a needless re-dispatch is absorbed by the claims, a missed one is not.
    if (!w) asked.set(k, (w = queue.waiting(pool, priority).catch(() => 0)));
    return w;
  };
}

/** The pool and priority a task's dispatches go to. */
function routeOf(flow: AnyFlow, qid: string): { pool: string; priority: Priority } {
  const node = compileFlow(flow).nodes.get(qid);
  const options = node ? taskOf(node).options : {};
  return { pool: options.pool ?? DEFAULT_POOL, priority: options.priority ?? 'normal' };
}

/** The claim a dispatched task runs under: its own, or the chain's it was run inline in. */
const claimKeyOf = (key: string, t: TaskActivity): string => t.claim ?? key;

async function reapInstance(
  deps: ReaperDeps,
  instanceId: string,
  { claims: listed, watched, timers: laneTimers }: Work,
  backlog: Backlog,
): Promise<{ timersFired: number; redispatched: number; purged?: boolean }> {
  const now = deps.clock.now();
  // The expiry index is eventually consistent and passes may overlap: act only
  // on what a consistent read of each claim still says.
  const current = await Promise.all(listed.map((c) => deps.claims.get(c.instanceId, c.taskKey)));
  const expired = current.filter((c): c is Claim => c !== undefined && c.expiresAt <= now);
  const finish = async () => {
    await Promise.all(expired.map((c) => deps.claims.release(c)));
    await Promise.all(watched.map((seq) => deps.store.unwatch(instanceId, seq)));
  };
  const stored = await deps.store.load(instanceId);
  const workflow = stored?.snapshot.workflow;
  if (!stored || workflow === undefined || !deps.registry.has(workflow)) {
    await finish();
    return { timersFired: 0, redispatched: 0 };
  }
  const flow = deps.registry.get(workflow);
  let run: RunState = runOf(flow, stored);
  // Children parked on their lane timers go on in their lanes: nothing is committed to the run's
  // journal, but the end of a parent whose last child ended on its delay.
  const maxQueueWaitMs = deps.maxQueueWaitMs ?? REAPER_DEFAULTS.maxQueueWaitMs;
  const running = async (keys: readonly string[]) => {
    const held = await Promise.all(keys.map((k) => deps.claims.get(instanceId, k)));
    return held.some((c) => c !== undefined && c.expiresAt > deps.clock.now());
  };
  const look: LaneLook = {
    now: () => deps.clock.now(),
    running,
    queued: async (d) => (await backlog(d.pool, d.priority)) > 0,
    maxQueueWaitMs,
  };
  const fire = (ids: readonly string[]) =>
    fireLaneTimers(deps.store, flow, run, ids, {
      now: () => deps.clock.now(),
      send: (dispatches) => deps.queue.send(dispatches),
      look,
    });
  // A lane signal wait's timer is its timeout: settled with the run's lane signals, which also gives a child a
  // signal that waits for it (its deliverer died before settling) and sends on one whose binder died.
  const settles = laneWaitNames(flow).size > 0 && !FINAL_STATUSES.has(run.snapshot.status);
  const waits = settles ? laneTimers.filter((id) => laneWaitOf(flow, id) !== undefined) : [];
  const lane = await fire(laneTimers.filter((id) => !waits.includes(id)));
  run = lane.run;
  await sendDispatches(deps.queue, lane.effects);
  let laneFired = lane.fired;
  if (settles) {
    const settled = await settleLaneSignals(deps.store, flow, run, {
      now: () => deps.clock.now(),
      timedOut: waits,
      all: true,
    });
    run = settled.run;
    const sent = [...settled.dispatches, ...dispatchesOf(settled.effects)];
    if (sent.length > 0) await deps.queue.send(sent);
    laneFired += waits.length;
  }
  const snapshot = run.snapshot;
  if (FINAL_STATUSES.has(snapshot.status)) {
    let purged = false;
    if (purgeDue(snapshot, now)) {
      purged = await purgeRun(deps.store, flow, run, {
        now: () => deps.clock.now(),
        ...(deps.deadLetters ? { deadLetters: deps.deadLetters } : {}),
      });
    } else await compactRun(deps.store, run);
    await finish();
    return { timersFired: laneFired, redispatched: 0, purged };
  }
  const { timers, stale, lanes } = dueWork(snapshot, now);
  const queued = async (f: AnyFlow, t: TaskActivity): Promise<boolean> => {
    const { pool, priority } = routeOf(f, t.qid);
    return (await backlog(pool, priority)) > 0;
  };
  const events: RunEvent[] = timers.map((key) => ({ type: 'timer-fired', key }));
  const handled = new Set<string>();
  // Steps of children in lanes whose worker died, failed for good: dead-lettered with their lane dispatch.
  const laneFailures: Dispatch[] = [];
  // Lapses' lane timers, due at once: fired in this pass, not the next.
  const lapses: string[] = [];
  for (const c of expired) {
    const frontierTask = Object.entries(snapshot.tasks).some(([key, t]) => claimKeyOf(key, t) === c.taskKey);
    if (!frontierTask) {
      const death = await laneClaimExpired(deps.store, flow, run, c, { now: () => deps.clock.now(), running });
      if (death.kind === 'failed') {
        run = death.run;
        await sendDispatches(deps.queue, death.effects);
        events.push(death.event);
        laneFailures.push(death.dispatch);
      }
      if (death.kind === 'timer' && death.id !== undefined && (death.dueAt ?? Number.POSITIVE_INFINITY) <= now)
        lapses.push(death.id);
      continue;
    }
    for (const [key, t] of Object.entries(snapshot.tasks)) {
      if (t.state !== 'dispatched' || claimKeyOf(key, t) !== c.taskKey) continue;
      // A claim left by an older attempt says nothing about the current one.
      if (t.claim === undefined && t.attempt !== c.attempt) continue;
      handled.add(key);
      // Only the chain's first task can have died before starting: its successors ran under a started claim.
      const beforeStart = c.state === 'reserved' && t.claim === undefined;
      events.push(
        snapshot.status === 'PAUSED'
          ? { type: 'task-held', key, attempt: t.attempt }
          : {
              type: 'redispatch',
              key,
              attempt: t.attempt,
              reason: beforeStart ? 'reservation-expired' : 'lease-expired',
            },
      );
    }
  }
  if (lapses.length > 0) {
    const fired = await fire(lapses);
    run = fired.run;
    await sendDispatches(deps.queue, fired.effects);
  }
  for (const key of stale) {
    const t = snapshot.tasks[key];
    if (!t || handled.has(key)) continue;
    const claim = await deps.claims.get(instanceId, claimKeyOf(key, t));
    const live = claim !== undefined && claim.expiresAt > now && (t.claim !== undefined || claim.attempt === t.attempt);
    if (live) events.push({ type: 'dispatch-checked', key });
    else if (snapshot.status === 'PAUSED') events.push({ type: 'task-held', key, attempt: t.attempt });
    // No worker took it yet: while its queue has a backlog, it is most likely waiting there. Check again later,
    // until it has waited longer than a backlog explains.
    else if (now - (t.dispatchedAt ?? now) < maxQueueWaitMs && (await queued(flow, t)))
      events.push({ type: 'dispatch-checked', key });
    else events.push({ type: 'redispatch', key, attempt: t.attempt, reason: 'lost' });
  }
  let redispatched = 0;
  if (events.length > 0) {
    // A delay that sends a child back to its lane is marked as passed before it fires (see `backToLaneAfter`).
    // One that ends its child puts the child's result and counts it (see `endsChild`).
    const writes = laneDelayWrites(flow, snapshot, timers);
    await Promise.all(writes.marks.map((id) => deps.store.putValue(instanceId, id, true)));
    for (const end of writes.results) {
      const counted = await putLaneResult(deps.store, flow, run, end, { now: () => deps.clock.now() });
      if (!counted) continue;
      run = counted.run;
      if (counted.next) await deps.queue.send([counted.next]);
      await sendDispatches(deps.queue, counted.effects);
    }
    if (deps.deadLetters)
      await putDeadLettersOf(deps.deadLetters, deps.store, flow, run.snapshot, events, deps.clock.now(), laneFailures);
    const r = await applyEvents(deps.store, flow, instanceId, events, { now: () => deps.clock.now(), known: run });
    run = r.run;
    await sendDispatches(deps.queue, r.effects);
    redispatched = events.filter((e) => e.type === 'redispatch').length;
  }
  for (const parent of lanes) {
    const r = await checkLanes(deps.store, flow, run, parent, look);
    run = r.run;
    if (r.dispatches.length > 0) await deps.queue.send(r.dispatches);
    await sendDispatches(deps.queue, r.effects);
    redispatched += r.dispatches.length;
  }
  await compactRun(deps.store, run);
  await finish();
  return { timersFired: timers.length + laneFired, redispatched };
}

/**
 * Runs passes until `remainingMs()` drops under `stopBeforeMs`, pausing
 * `intervalMs` between passes: EventBridge wakes the reaper once a minute,
 * and looping inside the invocation detects failures within seconds. No
 * pause after a pass that found a whole batch due and moved something (see
 * `ReapSummary.backlog`): a backlog, of timers or of purges, is worked off
 * at once; a batch of nothing it can move waits as usual.
 */
export async function reapFor(
  deps: ReaperDeps,
  remainingMs: () => number,
  options: { readonly intervalMs?: number; readonly stopBeforeMs?: number } = {},
): Promise<ReapSummary> {
  const total = {
    instances: 0,
    timersFired: 0,
    redispatched: 0,
    expiredClaims: 0,
    drained: 0,
    errors: 0,
    purged: 0,
    backlog: false,
  };
  const interval = options.intervalMs ?? REAPER_DEFAULTS.intervalMs;
  const stopBefore = options.stopBeforeMs ?? REAPER_DEFAULTS.stopBeforeMs;
  do {
    const s = await reapOnce(deps);
    deps.onPass?.(s);
    total.instances += s.instances;
    total.timersFired += s.timersFired;
    total.redispatched += s.redispatched;
    total.expiredClaims += s.expiredClaims;
    total.drained += s.drained;
    total.errors += s.errors;
    total.purged += s.purged;
    total.backlog = s.backlog;
    if (s.backlog) continue; // no pause until it is worked off
    if (remainingMs() - interval < stopBefore) break;
    await deps.clock.sleep(interval);
  } while (remainingMs() >= stopBefore);
  return total;
}
