import { compileFlow, fillKey } from '../engine/compile.ts';
import type { AnyFlow } from '../engine/definition.ts';
import { laneDispatch } from '../engine/reducer.ts';
import { eachId } from '../engine/refs.ts';
import type { Dispatch, Effect, LaneItem, MapState, Snapshot } from '../engine/snapshot.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import { applyEvent, type Commit, loadRun, type RunState, skipTask } from './instances.ts';

/**
 * Map items run in lanes (see `MapState.lanes`): the item's commit is its
 * result, put on condition that it is absent, and one atomic add to the
 * map's counter. Who writes what:
 *
 * - the writer whose put created the result adds 1 to the counter (a writer
 *   that found it there adds nothing: the first one counted it, or died
 *   before counting, which the reaper repairs);
 * - the add that returns `d` starts item `window + d - 1` (each value of `d`
 *   is returned to exactly one writer, so each item is started once);
 * - the add that returns `count` commits `map-done` to the run's journal,
 *   the map's one journal entry after its start.
 *
 * A crash between the put and the add, or between the add and the start of
 * the next item, leaves the counter behind the results; the reaper's look at
 * a map whose counter stood still for longer than an item may run recounts
 * the results, starts the items that have none, and ends the map when all
 * are there (`checkMap`).
 */

/** The counter of a map run in lanes. */
export const mapCounterId = (mapKey: string): string => `map:${mapKey}`;

/** The map a task of the frontier or a dispatch belongs to, when that map runs in lanes. */
export function laneMapOf(flow: AnyFlow, snapshot: Snapshot, qid: string, idx: readonly number[]): string | undefined {
  const node = compileFlow(flow).nodes.get(qid);
  if (node?.owner.kind !== 'map') return undefined;
  const mapKey = fillKey(node.owner.qid, idx.slice(0, -1));
  return snapshot.maps[mapKey]?.lanes ? mapKey : undefined;
}

/** What a dispatch of an item in a lane tells the frontier when the item joins it (a failure, a pause). */
export function laneItemOf(d: Dispatch, m: MapState): LaneItem | undefined {
  if (!d.lane || !m.lanes) return undefined;
  return { map: d.lane.map, qid: d.qid, idx: [...m.lanes.idx, d.lane.item], input: d.input };
}

/** The outcome of counting one item. */
export interface Counted {
  /** The item this count starts (the window moves on), if any. */
  readonly next?: Dispatch;
  /** Effects of the `map-done` commit, when this count was the map's last. */
  readonly effects: readonly Effect[];
  readonly run: RunState;
}

/**
 * Counts an item of a map run in lanes whose result this writer's put just
 * created: adds 1 to the map's counter, starts the next item, and ends the
 * map on its last item.
 */
export async function countItem(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  mapKey: string,
  options: { readonly now: () => number },
): Promise<Counted> {
  const m = run.snapshot.maps[mapKey];
  if (!m?.lanes) return { effects: [], run };
  const instanceId = run.snapshot.instanceId;
  const d = await store.addToCounter(instanceId, mapCounterId(mapKey), 1);
  const item = m.lanes.window + d - 1;
  const next = item < m.count ? laneDispatch(flow, run.snapshot, mapKey, m, item) : undefined;
  if (d !== m.count) return { ...(next ? { next } : {}), effects: [], run };
  return endMap(store, flow, run, mapKey, options);
}

/** Commits the end of a map run in lanes: its successor follows in the returned effects. */
async function endMap(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  mapKey: string,
  options: { readonly now: () => number },
): Promise<{ readonly effects: readonly Effect[]; readonly run: RunState }> {
  const r = await applyEvent(
    store,
    flow,
    run.snapshot.instanceId,
    { type: 'map-done', key: mapKey },
    {
      now: options.now,
      known: run,
    },
  );
  return { effects: r.effects, run: r.run };
}

/**
 * The reaper's look at a map run in lanes, once its check time has come.
 * A counter that moved since the last look means progress: the look is
 * recorded, nothing else. A counter that stood still for a whole check
 * period (longer than any item may run) means the map stalled (a worker died
 * between writes, a message was lost): the results are recounted; if all are
 * there the map ends, else each item of the window without a result is
 * started again.
 *
 * @returns the dispatches to send and the effects of what was committed.
 */
export async function checkMap(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  mapKey: string,
  options: { readonly now: () => number },
): Promise<{ readonly dispatches: readonly Dispatch[]; readonly effects: readonly Effect[]; readonly run: RunState }> {
  const m = run.snapshot.maps[mapKey];
  if (!m?.lanes || !m.template) return { dispatches: [], effects: [], run };
  const instanceId = run.snapshot.instanceId;
  const counted = await store.getCounter(instanceId, mapCounterId(mapKey));
  let dispatches: Dispatch[] = [];
  if (counted === m.lanes.seen) {
    const template = m.template;
    const prefix = template.slice(0, template.lastIndexOf('[]'));
    const ids = new Set(await store.listValueIds(instanceId, prefix));
    const done = Array.from({ length: m.count }, (_, i) => ids.has(eachId(template, i)));
    const results = done.filter(Boolean).length;
    if (results >= m.count) return { dispatches: [], ...(await endMap(store, flow, run, mapKey, options)) };
    const started = Math.min(m.count, m.lanes.window + results);
    // Items with a step in the frontier (after a failure or a pause) go on from there.
    const inFrontier = new Set<number>();
    for (const t of Object.values(run.snapshot.tasks)) {
      if (laneMapOf(flow, run.snapshot, t.qid, t.idx) === mapKey) inFrontier.add(t.idx[m.lanes.idx.length] as number);
    }
    // A new generation, so the queue's deduplication does not swallow the second start of an item.
    const gen = 1 + Math.max(1, options.now());
    for (let i = 0; i < started; i++) {
      if (!done[i] && !inFrontier.has(i)) dispatches.push({ ...laneDispatch(flow, run.snapshot, mapKey, m, i), gen });
    }
  }
  const r = await applyEvent(
    store,
    flow,
    instanceId,
    { type: 'map-checked', key: mapKey, done: counted },
    { now: options.now, known: run },
  );
  if (!r.changed) dispatches = [];
  return { dispatches, effects: r.effects, run: r.run };
}

/**
 * Skips a task with an operator-supplied output (see `skipTask`), and counts
 * it when it is an item of a map run in lanes that had joined the frontier
 * (a failed item): the map goes on as if the item had run.
 *
 * @returns the skip's commit, with the effects of the count added.
 */
export async function skipAndCount(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  taskKey: string,
  output: unknown,
  options: { readonly now: () => number; readonly watch?: boolean; readonly actor?: string },
): Promise<Commit> {
  const before = await loadRun(store, flow, instanceId);
  const t = before && Object.hasOwn(before.snapshot.tasks, taskKey) ? before.snapshot.tasks[taskKey] : undefined;
  const mapKey = before && t ? laneMapOf(flow, before.snapshot, t.qid, t.idx) : undefined;
  const r = await skipTask(store, flow, instanceId, taskKey, output, {
    ...options,
    ...(before ? { known: before } : {}),
  });
  if (!mapKey) return r;
  const counted = await countItem(store, flow, r.run, mapKey, { now: options.now });
  const started: Effect[] = counted.next ? [{ type: 'dispatch', dispatch: counted.next }] : [];
  return { ...r, run: counted.run, effects: [...r.effects, ...started, ...counted.effects] };
}
