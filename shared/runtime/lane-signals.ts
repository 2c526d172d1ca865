import { createHash } from 'node:crypto';
import { compileFlow, fillKey, stepOfKey } from '../engine/compile.ts';
import type { AnyFlow } from '../engine/definition.ts';
import {
  childInFrontier,
  type LaneGroup,
  laneChildOf,
  laneDispatch,
  laneGroupIn,
  laneOf,
  laneWaitNames,
  laneWaitOf,
  NO_TIMEOUT_DUE,
} from '../engine/lanes.ts';
import { outputId } from '../engine/refs.ts';
import type { Dispatch, Effect, LaneSignalTarget, RunEvent } from '../engine/snapshot.ts';
import { InstanceNotFoundError } from '../ports/errors.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import {
  type ApplyOptions,
  type Commit,
  type CommitOptions,
  commit,
  deliverSignal,
  loadRun,
  type RunState,
  readValues,
} from './instances.ts';
import { factsOf, hasValue, loadLaneFacts, readValue, resolvedLaneSteps } from './lanes.ts';

/**
 * Signal waits of children run in lanes (see `laneWaitOf`): a child parks
 * on one with no commit to the run's journal, and signals still go
 * through it. Who writes what, under which condition:
 *
 * - a child that reaches such a wait (the worker that put the output of
 *   the task before it) takes a ticket: an atomic add of 1 to the signal's
 *   waiter counter (`waitersId`), whose value names the ticket; then puts
 *   the ticket's record (`ticketId`), the wait's key, if absent; then the
 *   wait's lane timer (`LaneTimer`, id the wait's key, due at its timeout),
 *   if absent. So a lane timer of a wait is only ever put after a record of
 *   one of its tickets: a parked child is always in the queue. A record put
 *   that finds the ticket taken (a scanner passed it over as a hole, below)
 *   takes another ticket. A timer put that finds one there (a duplicate of
 *   the task) changes nothing more: the child waits under its first ticket;
 * - the run's journal decides, one entry at a time, which wait a signal goes
 *   to (`LaneSignals` in the snapshot): the oldest wait of the frontier, else
 *   the lane waiter of the queue's head ticket (`served`), else the buffer.
 *   A delivery reads the head before it commits and names its waiter
 *   (`signal.toLane`); a signal that waited in the buffer is taken by a
 *   `signal-taken` entry. Each gives the signal's value id to the wait's
 *   key (`given`): a key is given one at most, and an entry for a key that
 *   is given one, or waits in the frontier, changes nothing;
 * - a scanner of the queue (a deliverer, a child that just parked, the
 *   reaper) reads the records from the head: a ticket whose wait is given
 *   one, or went past it, is passed over; a ticket with no record is a
 *   hole (its child died between its add and its put, or is about to put):
 *   the scanner puts a tombstone in its place, if absent, and passes over
 *   it only if that put created it; else it reads the record the child put;
 * - whoever sees a key in `given` (the committer, then any later reader of
 *   the run) puts the value under the wait's output id, if absent (only the
 *   given value is ever put there), sends the step after the wait in the
 *   child's lane on it, and fires the wait's timer; the next signal entry
 *   that one commits drops the keys whose outputs it read put (`bound`);
 * - a wait's timer that comes due (its timeout) with no signal given and
 *   no output commits `signal-timed-out`: the wait is given `null` (it
 *   goes on) or the run fails, as in the frontier.
 *
 * No wakeup is lost: a child reads the run after its record is put, and a
 * signal buffered before that read is one it takes then; a signal
 * committed after it reads the queue after the record is put, and finds it.
 * A scanner that reads a hole and a child that puts its record in it race
 * on one conditional put, which one of them wins.
 */

/** Tickets a scanner reads from the head in one go before it commits what it passed over. */
const SCAN = 16;

/** A signal's name as it appears in ids: any string may name a signal, ids take only some characters. */
const nameKey = (name: string): string => createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 16);

/** The counter whose value names the next ticket of a lane waiter of signal `name`. */
export const waitersId = (name: string): string => `sigq:${nameKey(name)}`;

/** The value id of the record of ticket `n` of signal `name`: the wait's key, or {@link PASSED}. */
export const ticketId = (name: string, n: number): string => `sigq:${nameKey(name)}:${n}`;

/** The tombstone a scanner puts in a ticket with no record (see the protocol above). */
const PASSED = { passed: true };

/** Rounds of one settling, each one commit: a bound on the work of one call, not a rule (the next call goes on). */
const MAX_ROUNDS = 64;

/** What settling a run's lane signals did (see {@link settleLaneSignals}). */
export interface Settled {
  /** The steps after waits that were given a signal, to send. */
  readonly dispatches: readonly Dispatch[];
  /** Effects of what was committed (a run that failed on a timeout). */
  readonly effects: readonly Effect[];
  readonly run: RunState;
}

/**
 * A child of group `g` parks on its lane wait `wait` (a step, see
 * `laneSignalAfter`), once the task before it put its output: a ticket,
 * its record, the wait's timer, then the run's lane signals settled on a
 * fresh read of the run (a signal that waited in the buffer is taken
 * now). Nothing else is committed to the run's journal.
 *
 * @returns `parked: false` when the wait's timer was there (a duplicate of the task before it parked the child first).
 */
export async function waitInLane(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  g: LaneGroup,
  item: number,
  wait: string,
  options: Pick<CommitOptions, 'now'>,
): Promise<Settled & { readonly parked: boolean }> {
  const instanceId = run.snapshot.instanceId;
  const key = fillKey(wait, laneOf(flow, g, item).idx);
  const step = laneWaitOf(flow, key);
  if (!step) throw new Error(`step '${wait}' of '${flow.name}' is not a signal wait in a lane`);
  for (;;) {
    const ticket = (await store.addToCounter(instanceId, waitersId(step.signal), 1)) - 1;
    if ((await store.putValue(instanceId, ticketId(step.signal, ticket), key)) === 'created') break;
  }
  const dueAt = step.timeoutMs === undefined ? NO_TIMEOUT_DUE : options.now() + step.timeoutMs;
  const put = await store.putTimer(instanceId, { id: key, dueAt, parent: g.key, item });
  const fresh = (await loadRun(store, flow, instanceId)) ?? run;
  const settled = await settleLaneSignals(store, flow, fresh, { ...options, names: [step.signal] });
  return { ...settled, parked: put === 'created' };
}

/**
 * Delivers a signal to a run whose children may wait for it in their lanes
 * (else as `deliverSignal` does): the wait of the queue's head ticket is
 * named in the delivery's entry when nothing in the frontier waits for it
 * and nothing waits in the buffer, then the run's lane signals are settled.
 */
export async function deliverSignalToLanes(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  name: string,
  payload: unknown,
  options: ApplyOptions & { readonly deliveryId?: string },
): Promise<Commit & { readonly dispatches: readonly Dispatch[] }> {
  if (!laneWaitNames(flow).has(name))
    return { ...(await deliverSignal(store, flow, instanceId, name, payload, options)), dispatches: [] };
  const run = options.known ?? (await loadRun(store, flow, instanceId));
  if (!run) throw new InstanceNotFoundError(instanceId);
  const s = run.snapshot;
  const frontier = Object.values(s.waits).some((w) => w.kind === 'signal' && w.signal === name);
  const buffered = (s.signals[name]?.length ?? 0) > 0;
  const next = frontier || buffered || !live(run) ? undefined : await nextWaiter(store, flow, run, name);
  const toLane = next?.wait === undefined ? undefined : (next as LaneSignalTarget);
  const bound = await boundKeys(store, run);
  const r = await deliverSignal(store, flow, instanceId, name, payload, {
    ...options,
    known: run,
    ...(toLane ? { toLane } : {}),
    ...(bound.length > 0 ? { bound } : {}),
  });
  if (!r.changed) return { ...r, dispatches: [] };
  const gave = toLane && Object.hasOwn(r.run.snapshot.laneSignals?.given ?? {}, toLane.wait) ? [toLane.wait] : [];
  const settled = await settleLaneSignals(store, flow, r.run, { now: options.now, names: [name], gave });
  return { ...r, run: settled.run, effects: [...r.effects, ...settled.effects], dispatches: settled.dispatches };
}

/**
 * Brings a run's lane signal waits up to date (see the protocol above),
 * from `run` as read:
 *
 * - each wait of `timedOut` (its timer came due) that has no output and is
 *   given no signal times out (`signal-timed-out`); one with an output goes
 *   on, its timer fired;
 * - each wait given a signal whose output is not put yet gets it (the put
 *   that creates it sends the step after the wait and fires its timer):
 *   those that this call, or its caller (`gave`), gave a signal to; every
 *   one with `all` (the reaper: a giver may have died before the put);
 * - while a signal of `names` (default: every signal waited for in lanes)
 *   waits in the buffer and a ticket waits in its queue, the head's wait
 *   takes it (`signal-taken`), one entry per signal.
 *
 * Safe to call anywhere, any number of times: every write is conditional
 * or an entry the reducer refuses when it no longer applies.
 */
export async function settleLaneSignals(
  store: InstanceStore,
  flow: AnyFlow,
  start: RunState,
  options: Pick<CommitOptions, 'now'> & {
    readonly names?: readonly string[];
    readonly timedOut?: readonly string[];
    readonly gave?: readonly string[];
    readonly all?: boolean;
  },
): Promise<Settled> {
  const instanceId = start.snapshot.instanceId;
  const dispatches: Dispatch[] = [];
  const effects: Effect[] = [];
  let run = start;
  // The waits given a signal here: each giver puts what it gave (others would race it for the same put).
  const mine = new Set(options.gave);
  const committed = async (events: (snapshot: RunState['snapshot']) => readonly RunEvent[], gives?: string) => {
    const r = await commit(store, flow, run, (_, snapshot) => events(snapshot), { now: options.now });
    // A commit that changed nothing was made on a state that moved since: read it again.
    run = r.changed ? r.run : ((await loadRun(store, flow, instanceId)) ?? run);
    if (r.changed && gives !== undefined) mine.add(gives);
    effects.push(...r.effects);
  };
  // Puts the output of every wait given a signal whose output is not there; the put that creates it sends the child on.
  const bind = async () => {
    const given = run.snapshot.laneSignals?.given ?? {};
    for (const [key, valueId] of Object.entries(given)) {
      if (!options.all && !mine.has(key)) continue;
      if (await hasValue(store, instanceId, outputId(key))) continue;
      const value = valueId === null ? null : (await readValues(store, run, { v: valueId })).get(valueId);
      if ((await store.putValue(instanceId, outputId(key), value ?? null)) !== 'created') continue;
      const d = await goOn(store, flow, run, key);
      if (d) dispatches.push(d);
      await store.fireTimer(instanceId, key, options.now());
    }
  };
  for (const key of options.timedOut ?? []) {
    const step = laneWaitOf(flow, key);
    // Given one, not put yet: the put below sends it on and fires its timer.
    if (!step || !live(run) || Object.hasOwn(run.snapshot.laneSignals?.given ?? {}, key)) continue;
    if (await hasValue(store, instanceId, outputId(key))) {
      // Given one, put, but not sent on (its binder died): it goes on now.
      const d = await goOn(store, flow, run, key);
      if (d) dispatches.push(d);
      await store.fireTimer(instanceId, key, options.now());
      continue;
    }
    if (!(await waitOpen(store, flow, run, key, step.signal))) {
      // Its child no longer waits here (it went on in the frontier, its parent ended): nothing times out.
      await store.fireTimer(instanceId, key, options.now());
      continue;
    }
    const bound = await boundKeys(store, run);
    await committed(
      () => [{ type: 'signal-timed-out', name: step.signal, key, ...(bound.length > 0 ? { bound } : {}) }],
      key,
    );
    if (!live(run)) await store.fireTimer(instanceId, key, options.now());
  }
  const names = options.names ?? [...laneWaitNames(flow)];
  for (let round = 0; round < MAX_ROUNDS && live(run); round++) {
    await bind();
    const name = names.find((n) => (run.snapshot.signals[n]?.length ?? 0) > 0);
    if (name === undefined) break;
    const next = await nextWaiter(store, flow, run, name);
    // No waiter: the signal waits in the buffer (only a long run of passed tickets is worth an entry of its own).
    if (!next || (next.wait === undefined && next.served - next.head < SCAN)) break;
    const bound = await boundKeys(store, run);
    await committed(
      (snapshot) =>
        (snapshot.laneSignals?.served[name] ?? 0) === next.head
          ? [{ type: 'signal-taken', name, ...next, ...(bound.length > 0 ? { bound } : {}) }]
          : [],
      next.wait,
    );
  }
  if (live(run)) await bind();
  return { dispatches, effects, run };
}

/** Whether a run's children may still go on. */
function live(run: RunState): boolean {
  return run.snapshot.status === 'RUNNING' || run.snapshot.status === 'PAUSED';
}

/** The keys of `given` whose outputs are put: a signal entry drops them (see `LaneSignals.given`). */
async function boundKeys(store: InstanceStore, run: RunState): Promise<string[]> {
  const keys = Object.keys(run.snapshot.laneSignals?.given ?? {});
  const put = await Promise.all(keys.map((k) => hasValue(store, run.snapshot.instanceId, outputId(k))));
  return keys.filter((_, i) => put[i]);
}

/**
 * The queue of lane waiters of signal `name` from its head: the first
 * ticket whose wait may still be given a signal (`wait`, and `served` the
 * head after it), or how far the tickets passed over go (no `wait`), or
 * `undefined` when no ticket is past the head. A ticket with no record is
 * tombstoned (see the protocol above). At most {@link SCAN} tickets.
 */
async function nextWaiter(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  name: string,
): Promise<{ readonly head: number; readonly served: number; readonly wait?: string } | undefined> {
  const instanceId = run.snapshot.instanceId;
  const head = run.snapshot.laneSignals?.served[name] ?? 0;
  const count = await store.getCounter(instanceId, waitersId(name));
  let t = head;
  for (; t < Math.min(count, head + SCAN); t++) {
    const id = ticketId(name, t);
    let record = await readValue(store, instanceId, id);
    if (record === undefined) {
      if ((await store.putValue(instanceId, id, PASSED)) === 'created') continue;
      record = await readValue(store, instanceId, id);
    }
    if (typeof record === 'string' && (await waitOpen(store, flow, run, record, name)))
      return { head, served: t + 1, wait: record };
  }
  return t > head ? { head, served: t } : undefined;
}

/**
 * Whether the lane wait `key` may be given a signal `name`: it waits for
 * it, is given none and has no output, its child is not in the frontier,
 * and its parent still runs in lanes.
 */
async function waitOpen(store: InstanceStore, flow: AnyFlow, run: RunState, key: string, name: string) {
  const s = run.snapshot;
  if (laneWaitOf(flow, key)?.signal !== name || Object.hasOwn(s.waits, key)) return false;
  if (Object.hasOwn(s.laneSignals?.given ?? {}, key)) return false;
  if (!(await waitingChild(store, flow, run, key))) return false;
  return !(await hasValue(store, s.instanceId, outputId(key)));
}

/**
 * The child that the lane wait `key` is a step of, and its group, when it
 * still goes on in its lane: its parent runs in lanes and it is not in the
 * frontier.
 */
async function waitingChild(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  key: string,
): Promise<{ readonly g: LaneGroup; readonly item: number } | undefined> {
  const found = stepOfKey(compileFlow(flow).nodes, key);
  const child = found ? laneChildOf(flow, found.node.qid, found.idx) : undefined;
  if (!child) return undefined;
  await loadLaneFacts(store, flow, run, child.parent);
  const g = laneGroupIn(flow, run.snapshot, child.parent, factsOf(run));
  if (!g || child.item >= g.count || childInFrontier(flow, run.snapshot, g, child.item)) return undefined;
  return { g, item: child.item };
}

/**
 * The dispatch of the step after the lane wait `key`, whose output is put:
 * in its child's lane, on that output; `undefined` when the child has
 * nothing more to do here (see {@link waitingChild}).
 */
async function goOn(store: InstanceStore, flow: AnyFlow, run: RunState, key: string): Promise<Dispatch | undefined> {
  const child = await waitingChild(store, flow, run, key);
  if (!child) return undefined;
  const steps = await resolvedLaneSteps(store, flow, run.snapshot.instanceId, child.g, child.item);
  const at = steps.findIndex((x) => x.timer === key);
  const wait = steps[at];
  const next = steps[at + 1];
  if (!wait?.out || next?.key === undefined) return undefined;
  return laneDispatch(flow, run.snapshot, child.g, child.item, { qid: next.qid, input: wait.out });
}
