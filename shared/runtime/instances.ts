import { createHash } from 'node:crypto';
import { compileFlow } from '../engine/compile.ts';
import { type AnyFlow, DEFAULT_SIGNAL_BUFFER } from '../engine/definition.ts';
import { DefinitionMismatchError, type SerializedError, serializeError } from '../engine/errors.ts';
import { type HistoryEntry, historyOf } from '../engine/history.ts';
import { controlOf, initSnapshot, reduce, signalRefusal, withChain } from '../engine/reducer.ts';
import { type ApiErrorCode, SayiirError } from '../errors.ts';

export { pendingEffects } from '../engine/reducer.ts';

import { inputId, outputId, type Ref, refValueIds } from '../engine/refs.ts';
import type {
  ChainStep,
  Dispatch,
  Effect,
  LaneItem,
  LaneSignalTarget,
  Reduction,
  RunEvent,
  Snapshot,
} from '../engine/snapshot.ts';
import { InstanceNotFoundError, JournalConflictError } from '../ports/errors.ts';
import { type InstanceStore, type JournalEntry, journalValueId, type StoredInstance } from '../ports/instance-store.ts';
import { effectiveRetention, type Retention, retentionMsOf } from './defaults.ts';
import type { WorkflowRegistry } from './registry.ts';

/**
 * The engine's one write path over an {@link InstanceStore}, shared by the
 * API, the worker, the reaper and the in-process runner.
 *
 * Who writes what, under which condition:
 *
 * - start: the snapshot (state after `start`, journal version 0) with the
 *   input, if no instance has the id;
 * - every later event: one journal entry at `version + 1`, if that `seq` is
 *   free. It holds the events, the payload they commit (a task's output, a
 *   signal's payload) and their history entries, so commit, lock and history
 *   are one write. On a conflict the writer reads the entries it missed,
 *   re-applies the pure reducer, and tries the next `seq`;
 * - compaction: the snapshot, if the stored one is older. It is a cache of
 *   the journal (plus the listing and due-index keys), written when a chain
 *   parks or ends, every {@link COMPACT_EVERY} entries, and after control
 *   calls; a lost compaction costs a longer read, never a commit.
 *
 * A value that must be found by a deterministic id (a map item's result,
 * read by template, or the output of a task of a child run in lanes: see
 * `CompiledFlow.outputsById`) is put first, on condition that it is absent;
 * the journal entry that completes the task then refers to it. Children run
 * in lanes write no journal entry while they go well: see `lanes.ts`.
 */

/** A chain compacts at least this often, so a state read stays short. */
export const COMPACT_EVERY = 64;

const MAX_CONFLICT_RETRIES = 1_000;

/**
 * Pause after the n-th lost race in a row. The first few retries go at once
 * (the read of the missed entries is pause enough); then full jitter over a
 * window growing to 8 ms, so that a writer whose rivals commit again at once
 * (a chain runs on) still gets its turn.
 */
function conflictBackoff(attempt: number): Promise<void> {
  if (attempt < 3) return Promise.resolve();
  const window = Math.min(8, 2 ** (attempt - 3));
  return new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * window)));
}

/** A run as a writer holds it in memory. */
export interface RunState {
  /** The current state: the compacted snapshot with every entry after it applied. */
  readonly snapshot: Snapshot;
  /** The version of the stored compaction. */
  readonly compacted: number;
  /** Values this process has seen (inputs, committed outputs), by value id: they need no read. */
  readonly values: Map<string, unknown>;
}

/** The values `ref` reads, from those the run has seen, the others read (and kept). */
export async function readValues(store: InstanceStore, run: RunState, ref: Ref): Promise<ReadonlyMap<string, unknown>> {
  const missing = [...refValueIds(ref)].filter((id) => !run.values.has(id));
  if (missing.length > 0)
    for (const [id, v] of await store.getValues(run.snapshot.instanceId, missing)) run.values.set(id, v);
  return run.values;
}

/** Applies one committed journal entry to the state before it. Pure. */
export function applyEntry(flow: AnyFlow, snapshot: Snapshot, entry: JournalEntry): Snapshot {
  return { ...reduceAll(flow, snapshot, entry.events, entry.at).current, version: entry.seq };
}

function applyTail(flow: AnyFlow, run: RunState, tail: readonly JournalEntry[]): RunState {
  let snapshot = run.snapshot;
  for (const entry of tail) {
    if (entry.seq <= snapshot.version) continue;
    snapshot = applyEntry(flow, snapshot, entry);
    if (entry.value) run.values.set(journalValueId(entry.seq), entry.value.data);
  }
  return { ...run, snapshot };
}

/** Throws when a stored instance was started from another definition. */
export function assertSameDefinition(flow: AnyFlow, snapshot: Snapshot): void {
  if (snapshot.defHash !== flow.hash) {
    throw new DefinitionMismatchError(snapshot.instanceId, snapshot.defHash, flow.hash);
  }
}

/**
 * Reads a run: its compacted snapshot and the journal after it, folded.
 *
 * @throws {DefinitionMismatchError} the instance belongs to another definition.
 */
export async function loadRun(store: InstanceStore, flow: AnyFlow, instanceId: string): Promise<RunState | undefined> {
  const stored = await store.load(instanceId);
  return stored ? runOf(flow, stored) : undefined;
}

/**
 * A stored instance as a run: its tail applied to its snapshot.
 *
 * @throws {DefinitionMismatchError} the instance belongs to another definition.
 */
export function runOf(flow: AnyFlow, stored: StoredInstance): RunState {
  assertSameDefinition(flow, stored.snapshot);
  const run: RunState = {
    snapshot: stored.snapshot,
    compacted: stored.snapshot.version,
    values: new Map(stored.values),
  };
  return applyTail(flow, run, stored.tail);
}

/**
 * The current state of an instance for a reader that knows only its id:
 * folded with the instance's flow when it is registered with the same
 * definition, the compacted snapshot otherwise.
 */
export async function readRun(
  store: InstanceStore,
  registry: WorkflowRegistry,
  instanceId: string,
): Promise<Snapshot | undefined> {
  const stored = await store.load(instanceId);
  if (!stored) return undefined;
  // A run fenced for its purge is gone for every reader (see `purgeRun`).
  if (stored.snapshot.purging || stored.tail.some((e) => e.events.some((ev) => ev.type === 'purge'))) return undefined;
  const { snapshot } = stored;
  if (stored.tail.length === 0 || !registry.has(snapshot.workflow)) return snapshot;
  const flow = registry.get(snapshot.workflow);
  return flow.hash === snapshot.defHash ? runOf(flow, stored).snapshot : snapshot;
}

export interface StartResult {
  readonly snapshot: Snapshot;
  readonly effects: readonly Effect[];
}

/**
 * Creates an instance and applies `start`, in one conditional put.
 *
 * @throws {InstanceExistsError} the id is taken.
 */
export async function startInstance(
  store: InstanceStore,
  flow: AnyFlow,
  input: unknown,
  options: {
    readonly instanceId: string;
    readonly now: number;
    readonly nonce?: string;
    readonly redispatchAfterMs?: number;
    /**
     * How long its records are kept once it finished, unless the flow names
     * its own (`FlowOptions.retention`). @default RETENTION_DEFAULT_MS
     */
    readonly retention?: Retention;
    /** Who started it (an API key's name), for the history. */
    readonly actor?: string;
  },
): Promise<StartResult> {
  const { instanceId, now } = options;
  const retentionMs = retentionMsOf(effectiveRetention(flow.options.retention, options.retention));
  const init = initSnapshot(flow, instanceId, inputId(options.nonce ?? randomNonce()), now, {
    ...(options.redispatchAfterMs === undefined ? {} : { redispatchAfterMs: options.redispatchAfterMs }),
    ...(retentionMs === undefined ? {} : { retentionMs }),
  });
  const r = reduce(flow, init, { type: 'start' }, now);
  const snapshot: Snapshot = { ...r.snapshot, version: 0 };
  await store.create(snapshot, input, byActor(historyOf({ type: 'start' }, snapshot, r.effects, now), options.actor));
  return { snapshot, effects: r.effects };
}

/** The outcome of a commit. */
export interface Commit extends Reduction {
  /** The run after the commit (or as re-read, when nothing changed). */
  readonly run: RunState;
  /** The committed entry's `seq`, when something was committed. */
  readonly seq?: number;
  /** The successor recorded as run inline (see {@link CommitOptions.chain}). */
  readonly chained?: ChainStep;
  /** For an output put under its deterministic id (see `CompiledFlow.outputsById`): whether this put created it (see `completeTask`, `skipTask`). */
  readonly valueCreated?: boolean;
}

export interface CommitOptions {
  readonly now: () => number;
  /** A payload committed with the events, addressed as `journalValueId(seq)`. */
  readonly value?: { readonly data: unknown };
  /** Put the entry on the due index until {@link InstanceStore.unwatch} (commits made outside a claim). */
  readonly watchAfterMs?: number;
  /**
   * Called with the effects of the reduction before it is committed: a
   * successor the caller will run inline, recorded with the entry.
   */
  readonly chain?: (effects: readonly Effect[]) => ChainStep | undefined;
  /** Who made the change (an API key's name), recorded on each of its history entries. */
  readonly actor?: string;
}

/** History entries stamped with who made them, when someone did. */
function byActor(history: HistoryEntry[], actor: string | undefined): HistoryEntry[] {
  return actor === undefined ? history : history.map((h) => ({ ...h, actor }));
}

/**
 * Commits events as one journal entry at the run's next `seq`. `events` is
 * called with that `seq` (for value ids that name the entry), again after
 * every lost race, on the state as it then is. Events that change nothing are
 * left out; when none changes anything, nothing is written.
 *
 * @throws {JournalConflictError} after {@link MAX_CONFLICT_RETRIES} lost races.
 */
export async function commit(
  store: InstanceStore,
  flow: AnyFlow,
  start: RunState,
  events: (seq: number, snapshot: Snapshot) => readonly RunEvent[],
  options: CommitOptions,
): Promise<Commit> {
  let run = start;
  const instanceId = run.snapshot.instanceId;
  for (let i = 0; ; i++) {
    await conflictBackoff(i);
    const base = run.snapshot;
    const seq = base.version + 1;
    const at = options.now();
    const reduced = reduceAll(flow, base, events(seq, base), at);
    if (reduced.applied.length === 0) return { run, snapshot: base, effects: [], changed: false };
    const { current, effects } = reduced;
    // The successor run inline is chosen from the effects, then recorded with the completion.
    const step = options.chain?.(effects);
    const applied = step
      ? reduced.applied.map((a) => ({ ...a, event: withChainStep(a.event, step) }))
      : reduced.applied;
    const after: Snapshot = { ...current, version: seq, ...(step ? { tasks: withChain(current.tasks, step) } : {}) };
    const history = byActor(
      applied.flatMap((a) => historyOf(a.event, after, a.effects, at)),
      options.actor,
    );
    const entry: JournalEntry = {
      seq,
      at,
      events: applied.map((a) => a.event),
      history,
      ...(options.value ? { value: options.value } : {}),
      ...(options.watchAfterMs === undefined ? {} : { watchAt: at + options.watchAfterMs }),
    };
    try {
      await store.append(instanceId, entry);
    } catch (e) {
      if (!(e instanceof JournalConflictError) || i >= MAX_CONFLICT_RETRIES) throw e;
      run = applyTail(flow, run, await store.readJournal(instanceId, base.version));
      continue;
    }
    if (options.value) run.values.set(journalValueId(seq), options.value.data);
    return {
      run: { ...run, snapshot: after },
      snapshot: after,
      effects,
      changed: true,
      seq,
      ...(step ? { chained: step } : {}),
    };
  }
}

/** An event that can start a chain's inline successor, with that successor recorded on it; any other as it is. */
function withChainStep(event: RunEvent, step: ChainStep): RunEvent {
  return event.type === 'task-completed' || event.type === 'lanes-joined' ? { ...event, chain: step } : event;
}

function reduceAll(flow: AnyFlow, base: Snapshot, events: readonly RunEvent[], at: number) {
  let current = base;
  const effects: Effect[] = [];
  const applied: { event: RunEvent; effects: readonly Effect[] }[] = [];
  for (const event of events) {
    const r = reduce(flow, current, event, at);
    if (!r.changed) continue;
    current = r.snapshot;
    effects.push(...r.effects);
    applied.push({ event, effects: r.effects });
  }
  return { applied, current, effects };
}

/** Stores the run's state as its compaction, if it is ahead of the stored one. */
export async function compactRun(store: InstanceStore, run: RunState): Promise<RunState> {
  if (run.snapshot.version <= run.compacted) return run;
  await store.compact(run.snapshot);
  return { ...run, compacted: run.snapshot.version };
}

/** Whether a chain that goes on should compact now (see {@link COMPACT_EVERY}). */
export function compactionDue(run: RunState): boolean {
  return run.snapshot.version - run.compacted >= COMPACT_EVERY;
}

/** How long a control call's entry stays watched before the reaper looks (if the call died before compacting). */
export const WATCH_AFTER_MS = 5_000;

export interface ApplyOptions {
  readonly now: () => number;
  /** A run the caller already read (saves the read; a stale one only costs a conflict). */
  readonly known?: RunState;
  /** A payload committed with the events (see {@link CommitOptions.value}). */
  readonly value?: { readonly data: unknown };
  /**
   * `true` for commits outside any claim (API calls): the entry is watched
   * until the compaction that follows it is written.
   * @default false
   */
  readonly watch?: boolean;
  /** Who made the change (an API key's name), for the history. */
  readonly actor?: string;
}

/**
 * Applies events in one journal entry, then compacts: the path of every
 * writer that does not run a chain (the API, the reaper). The result's
 * `changed` is true when any event changed the state; effects are
 * concatenated in order.
 *
 * @throws {InstanceNotFoundError} no such instance.
 * @throws {DefinitionMismatchError} the instance belongs to another definition.
 */
export async function applyEvents(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  events: readonly RunEvent[] | ((seq: number, snapshot: Snapshot) => readonly RunEvent[]),
  options: ApplyOptions,
): Promise<Commit> {
  const run = options.known ?? (await loadRun(store, flow, instanceId));
  if (!run) throw new InstanceNotFoundError(instanceId);
  const c = await commit(store, flow, run, typeof events === 'function' ? events : () => events, {
    now: options.now,
    ...(options.actor === undefined ? {} : { actor: options.actor }),
    ...(options.value ? { value: options.value } : {}),
    ...(options.watch ? { watchAfterMs: WATCH_AFTER_MS } : {}),
  });
  const compacted = await compactRun(store, c.run);
  if (c.seq !== undefined && options.watch) await store.unwatch(instanceId, c.seq);
  return { ...c, run: compacted };
}

/** {@link applyEvents} with one event. */
export function applyEvent(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  event: RunEvent,
  options: ApplyOptions,
): Promise<Commit> {
  return applyEvents(store, flow, instanceId, [event], options);
}

/** Who ran a task attempt and when it started, for the history. */
export interface TaskMeta {
  readonly worker?: string;
  readonly startedAt?: number;
}

/**
 * Commits a task's output with its completion (once: a re-run finds the
 * task no longer current and commits nothing). The output travels in the
 * journal entry, except a map item's result, which is put first under its
 * deterministic id (the first put wins, and the completion refers to it).
 * An output that does not fit the step (a map's items not an array…) fails
 * the attempt instead.
 */
export async function completeTask(
  store: InstanceStore,
  flow: AnyFlow,
  run: RunState,
  dispatch: Dispatch,
  value: unknown,
  options: {
    readonly now: () => number;
    readonly meta?: TaskMeta;
    readonly chain?: CommitOptions['chain'];
    /** Called once the output is durable, before the completion is (fault injection). */
    readonly onValueStored?: () => void;
    /** Called before an output that does not fit the step fails the attempt (the worker records a dead letter). */
    readonly beforeFailure?: (error: SerializedError) => Promise<void>;
    /** A step of a child in its lane whose next step is not a task: the child joins the frontier with it. */
    readonly lane?: LaneItem;
  },
): Promise<Commit> {
  const { key, attempt } = dispatch;
  const meta = options.meta ?? {};
  const byId = compileFlow(flow).outputsById.has(dispatch.qid);
  let stored = value;
  let valueCreated: boolean | undefined;
  if (byId) {
    const id = outputId(key);
    valueCreated = (await store.putValue(run.snapshot.instanceId, id, value)) === 'created';
    if (!valueCreated) stored = (await store.getValues(run.snapshot.instanceId, [id])).get(id);
    run.values.set(id, stored);
    options.onValueStored?.();
  }
  let control: ReturnType<typeof controlOf>;
  try {
    control = controlOf(flow, dispatch.qid, stored);
  } catch (e) {
    const error = serializeError(e);
    await options.beforeFailure?.(error);
    const lane = options.lane ? { lane: options.lane } : {};
    return commit(store, flow, run, () => [{ type: 'task-failed', key, attempt, error, ...meta, ...lane }], {
      now: options.now,
    });
  }
  const r = await commit(
    store,
    flow,
    run,
    (seq) => [
      {
        type: 'task-completed',
        key,
        attempt,
        control,
        valueId: byId ? outputId(key) : journalValueId(seq),
        ...meta,
        ...(options.lane ? { lane: options.lane } : {}),
      },
    ],
    {
      now: options.now,
      ...(byId ? {} : { value: { data: stored } }),
      ...(options.chain ? { chain: options.chain } : {}),
    },
  );
  return valueCreated === undefined ? r : { ...r, valueCreated };
}

/**
 * Delivers a signal: its payload is committed with it (buffered if nothing
 * waits for it yet). With a `deliveryId`, a retried delivery changes
 * nothing; a full buffer also changes nothing. When `changed` is false,
 * `signalRefusal(flow, result.snapshot, name, deliveryId)` says why.
 */
export async function deliverSignal(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  name: string,
  payload: unknown,
  options: ApplyOptions & {
    readonly deliveryId?: string;
    /** The lane waiter to give it to (see `runtime/lane-signals.ts`). */
    readonly toLane?: LaneSignalTarget;
    /** Lane waits whose outputs are put (see `LaneSignals.given`). */
    readonly bound?: readonly string[];
  },
): Promise<Commit> {
  const { deliveryId, toLane, bound, ...apply } = options;
  const r = await applyEvents(
    store,
    flow,
    instanceId,
    (seq) => [
      {
        type: 'signal',
        name,
        valueId: journalValueId(seq),
        ...(deliveryId ? { deliveryId } : {}),
        ...(toLane ? { toLane } : {}),
        ...(bound ? { bound } : {}),
      },
    ],
    { ...apply, value: { data: payload } },
  );
  if (!r.changed && signalRefusal(flow, r.snapshot, name, deliveryId) === 'buffer-full') {
    throw new SignalBufferFullError(instanceId, name, flow.options.signalBuffer ?? DEFAULT_SIGNAL_BUFFER);
  }
  return r;
}

/** A signal nothing waits for yet, refused because the run already holds its flow's `signalBuffer` of that name. */
export class SignalBufferFullError extends SayiirError {
  override readonly name = 'SignalBufferFullError';
  override readonly httpStatus = 429;
  override readonly code: ApiErrorCode = 'signal_buffer_full';
  constructor(
    readonly instanceId: string,
    readonly signal: string,
    readonly limit: number,
  ) {
    super(
      `instance '${instanceId}' already holds ${limit} '${signal}' signals that nothing waits for yet (the flow's signalBuffer); send more once it consumes some`,
    );
  }
}

/**
 * The delivery id of a client's idempotency key: a 16-character digest, so
 * that a run's list of recent ids stays small whatever keys clients send.
 */
export function deliveryIdOf(idempotencyKey: string): string {
  return createHash('sha256').update(idempotencyKey, 'utf8').digest('base64url').slice(0, 16);
}

function randomNonce(): string {
  return globalThis.crypto.randomUUID();
}

/** The task's output is already committed: there is nothing left to skip. */
export class TaskAlreadyCompletedError extends SayiirError {
  override readonly name = 'TaskAlreadyCompletedError';
  override readonly httpStatus = 409;
  override readonly code: ApiErrorCode = 'task_completed';
  constructor(
    readonly instanceId: string,
    readonly taskKey: string,
  ) {
    super(`task '${taskKey}' of '${instanceId}' already has a committed output`);
  }
}

/** The task is not in a state the operation applies to. */
export class TaskStateError extends SayiirError {
  override readonly name = 'TaskStateError';
  override readonly httpStatus = 409;
  override readonly code: ApiErrorCode = 'invalid_task_state';
  constructor(
    readonly instanceId: string,
    readonly taskKey: string,
    message: string,
  ) {
    super(`task '${taskKey}' of '${instanceId}': ${message}`);
  }
}

/**
 * Skips a task with an operator-supplied output, committed with the `skip`.
 *
 * @throws {TaskStateError} the task is not in the frontier (or the run is over).
 * @throws {TaskAlreadyCompletedError} a map item's result was committed first.
 */
export async function skipTask(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  taskKey: string,
  output: unknown,
  options: ApplyOptions,
): Promise<Commit> {
  const run = options.known ?? (await loadRun(store, flow, instanceId));
  if (!run) throw new InstanceNotFoundError(instanceId);
  const { snapshot } = run;
  const t = Object.hasOwn(snapshot.tasks, taskKey) ? snapshot.tasks[taskKey] : undefined;
  if (!t || snapshot.status === 'COMPLETED' || snapshot.status === 'CANCELLED') {
    throw new TaskStateError(instanceId, taskKey, 'is not pending in this run');
  }
  if (snapshot.status === 'FAILED' && t.state !== 'failed') {
    throw new TaskStateError(instanceId, taskKey, 'the run failed on another task; retry or skip that one');
  }
  const control = controlOf(flow, t.qid, output);
  const byId = compileFlow(flow).outputsById.has(t.qid);
  if (byId && (await store.putValue(instanceId, outputId(taskKey), output)) === 'exists') {
    throw new TaskAlreadyCompletedError(instanceId, taskKey);
  }
  const r = await applyEvents(
    store,
    flow,
    instanceId,
    (seq) => [{ type: 'skip', key: taskKey, control, valueId: byId ? outputId(taskKey) : journalValueId(seq) }],
    { ...options, known: run, ...(byId ? {} : { value: { data: output } }) },
  );
  if (!r.changed) throw new TaskStateError(instanceId, taskKey, 'could not be skipped');
  return byId ? { ...r, valueCreated: true } : r;
}

/**
 * Retries a task the run failed on, with a fresh attempt budget.
 *
 * @throws {TaskStateError} the run did not fail on this task.
 */
export async function retryTask(
  store: InstanceStore,
  flow: AnyFlow,
  instanceId: string,
  taskKey: string,
  options: ApplyOptions,
): Promise<Commit> {
  const r = await applyEvent(store, flow, instanceId, { type: 'retry', key: taskKey }, options);
  if (!r.changed) throw new TaskStateError(instanceId, taskKey, 'the run did not fail on this task');
  return r;
}
