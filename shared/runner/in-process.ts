import { MemoryClaimStore } from '../adapters/memory/claim-store.ts';
import { FakeClock, systemClock } from '../adapters/memory/clock.ts';
import { MemoryInstanceStore } from '../adapters/memory/instance-store.ts';
import { MemorySecrets } from '../adapters/memory/secrets.ts';
import type { AnyFlow, Flow } from '../engine/definition.ts';
import { ensureError } from '../engine/errors.ts';
import { dueTimes } from '../engine/reducer.ts';
import { materialize, refValueIds } from '../engine/refs.ts';
import type { Dispatch, RunError, RunEvent, RunStatus, Snapshot } from '../engine/snapshot.ts';
import { FINAL_STATUSES } from '../engine/snapshot.ts';
import { SayiirError } from '../errors.ts';
import { observedStore, type Telemetry, taskObserver } from '../observability/observer.ts';
import { tracedQueue } from '../observability/tracing.ts';
import type { ClaimStore } from '../ports/claim-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeadLetterStore } from '../ports/dead-letter-store.ts';
import { InstanceNotFoundError } from '../ports/errors.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { Secrets } from '../ports/secrets.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import type { TimerIndex } from '../ports/timers.ts';
import { controlRun } from '../runtime/control.ts';
import { sendDispatches } from '../runtime/effects.ts';
import { deliveryIdOf, loadRun, pendingEffects, readRun, retryTask, startInstance } from '../runtime/instances.ts';
import { deliverSignalToLanes } from '../runtime/lane-signals.ts';
import { skipAndCount } from '../runtime/lanes.ts';
import { reapOnce } from '../runtime/reaper.ts';
import { WorkflowRegistry } from '../runtime/registry.ts';
import { processDispatch, type WorkerDeps, WorkerKilledError, type WorkerPhase } from '../runtime/worker.ts';

/**
 * Where a run can be made to crash: the worker's phases (see `WorkerPhase`):
 * - `reserved`: claim taken, nothing run;
 * - `executed`: the task ran, its completion is not committed;
 * - `stored`: its output is put by its id, its completion not committed (a
 *   map item's result, a task of a child run in lanes);
 * - `checkpointed`: the completion is committed, successors not dispatched;
 * - `dispatched`: successors sent, the chain not compacted, the claim not released.
 */
export type CheckpointPhase = WorkerPhase;

export interface RunOptions {
  /** @default a new `MemoryInstanceStore` */
  readonly store?: InstanceStore & TimerIndex;
  /**
   * `virtual` (the default) jumps time forward whenever the run is idle
   * with a timer pending, so a `delay('24h')` takes no real time in a unit
   * test. Pass a `FakeClock` to move time yourself, or `systemClock`.
   * @default 'virtual'
   */
  readonly clock?: Clock | 'virtual';
  /** @default a random UUID */
  readonly instanceId?: string;
  /** @default an empty `MemorySecrets` */
  readonly secrets?: Secrets;
  /** Where a task whose failure fails the run is recorded, as the deployed workers do. @default none */
  readonly deadLetters?: DeadLetterStore;
  /** Signals delivered right after the start (buffered until waited for). */
  readonly signals?: readonly { readonly name: string; readonly payload?: unknown }[];
  /**
   * Called at each phase of each task; throwing from it simulates a crash
   * there: the runner stops without another write and `result()` rejects
   * with {@link RunnerCrashedError}.
   */
  readonly onCheckpoint?: (phase: CheckpointPhase, dispatch: Dispatch) => void;
  /** Log lines and metrics of the run, as the deployed functions write them. @default none */
  readonly telemetry?: Telemetry;
}

export interface RunResult<O> {
  readonly instanceId: string;
  /** `RUNNING` means the run is waiting (for a signal) with nothing else to do. */
  readonly status: RunStatus;
  readonly output?: O;
  readonly error?: RunError;
  readonly snapshot: Snapshot;
  readonly store: InstanceStore;
}

/** The runner stopped on purpose in an `onCheckpoint` hook. */
export class RunnerCrashedError extends SayiirError {
  override readonly name = 'RunnerCrashedError';
  constructor(override readonly cause: Error) {
    super(`runner crashed: ${cause.message}`);
  }
}

/** A run in progress in this process. */
/** Options of {@link WorkflowHandle.signal}. */
export interface SignalSendOptions {
  /** The client's key for this delivery: a send retried with the same key is delivered once. */
  readonly idempotencyKey?: string;
}

export interface WorkflowHandle<O> {
  readonly instanceId: string;
  readonly store: InstanceStore;
  /** Settles when the run finishes, or waits with nothing else to do. */
  result(): Promise<RunResult<O>>;
  /** Resolves the next time no task runs and no event is being applied. */
  idle(): Promise<void>;
  /**
   * Sends a signal. With an `idempotencyKey`, a retried send is delivered once.
   * @throws {SignalBufferFullError} nothing waits for it and the run already holds the flow's `signalBuffer` of them.
   */
  signal(name: string, payload?: unknown, options?: SignalSendOptions): Promise<void>;
  cancel(reason?: string): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Retries a task the run failed on, with a fresh attempt budget (the run continues). */
  retryTask(taskKey: string): Promise<void>;
  /** Completes a pending or failed task with the given output instead of running it. */
  skipTask(taskKey: string, output: unknown): Promise<void>;
}

/** Looks at a stalled map or fork in lanes in a row, with no task run in between, before an idle run stops moving by itself. */
const MAX_IDLE_LANE_LOOKS = 3;

/** Heartbeat period of in-process workers: short, so a cancel reaches a running task at once. */
const IN_PROCESS_HEARTBEAT_MS = 50;

/**
 * The in-process runner: the worker and the reaper of the deployed engine,
 * driven over memory adapters in this process. A queue message is a call of
 * `processDispatch` (every pool runs here); an idle run with a timer pending
 * wakes at its due time (at once under the virtual clock) and runs a reaper
 * pass. So a unit test exercises the same claims, chains, journal commits
 * and recovery as a Lambda does.
 */
class Runner<O> implements WorkflowHandle<O> {
  readonly store: InstanceStore & TimerIndex;
  /** The store as this runner writes to it: no write once the runner has crashed. */
  private readonly writes: InstanceStore & TimerIndex;
  readonly clock: Clock;
  private readonly virtual: FakeClock | undefined;
  private readonly claims: ClaimStore;
  private readonly registry: WorkflowRegistry;
  private readonly queue: TaskQueue;
  private readonly workers = new Map<string, WorkerDeps>();
  private readonly secrets: Secrets;
  private inflight = 0;
  /** Reaper looks at stalled maps and forks in lanes since a task last ran (see `onIdle`). */
  private idleLooks = 0;
  private dead: Error | undefined;
  private settled = false;
  private wake: AbortController | undefined;
  private idleWaiters: (() => void)[] = [];
  private resolveResult!: (r: RunResult<O>) => void;
  private rejectResult!: (e: Error) => void;
  private resultPromise!: Promise<RunResult<O>>;

  constructor(
    private readonly flow: AnyFlow,
    readonly instanceId: string,
    private readonly options: RunOptions,
  ) {
    this.store = options.store ?? new MemoryInstanceStore();
    const t = options.telemetry;
    this.writes = fencedStore(t ? observedStore(this.store, t) : this.store, () => this.dead);
    if (options.clock === undefined || options.clock === 'virtual') {
      this.virtual = new FakeClock(Date.now());
      this.clock = this.virtual;
    } else {
      this.clock = options.clock;
    }
    this.secrets = options.secrets ?? new MemorySecrets();
    this.claims = new MemoryClaimStore();
    this.registry = new WorkflowRegistry([flow]);
    // Every message is delivered at once: nothing ever waits in this queue.
    this.queue = tracedQueue<TaskQueue>(
      { send: async (dispatches) => this.deliver(dispatches), waiting: async () => 0 },
      () => this.clock.now(),
    );
    this.openResult();
  }

  private openResult(): void {
    this.resultPromise = new Promise((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.resultPromise.catch(() => undefined);
  }

  result(): Promise<RunResult<O>> {
    return this.resultPromise;
  }

  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Runs `work` as one unit of in-flight activity; a failure crashes the runner. */
  track(work: () => Promise<void>): void {
    this.inflight++;
    this.wake?.abort();
    void work()
      .catch((e) => this.crash(ensureError(e)))
      .finally(() => {
        this.inflight--;
        if (this.inflight === 0) void this.onIdle();
      });
  }

  private crash(error: Error): void {
    if (this.dead) return;
    this.dead = error instanceof RunnerCrashedError ? error : new RunnerCrashedError(error);
    this.wake?.abort();
    this.rejectResult(this.dead);
  }

  private alive(): boolean {
    return !this.dead && !this.settled;
  }

  /** A queue message per dispatch, each handled as its own worker invocation. */
  private deliver(dispatches: readonly Dispatch[]): void {
    if (this.dead) throw this.dead;
    for (const d of dispatches) this.track(() => this.invoke(d));
  }

  private worker(pool: string): WorkerDeps {
    let deps = this.workers.get(pool);
    if (!deps) {
      deps = {
        store: this.writes,
        claims: this.claims,
        queue: this.queue,
        registry: this.registry,
        clock: this.clock,
        // Task timeouts run on real time under the virtual clock: a busy task
        // must not time out because the workflow's timers jumped ahead.
        ...(this.virtual ? { taskClock: systemClock } : {}),
        secrets: this.secrets,
        ...(this.options.deadLetters ? { deadLetters: this.options.deadLetters } : {}),
        pool,
        workerId: `in-process-${pool}`,
        // A cancel revokes the claim; the next heartbeat sees it and aborts the task.
        heartbeatMs: IN_PROCESS_HEARTBEAT_MS,
        ...(this.options.telemetry ? { onTask: taskObserver(this.options.telemetry) } : {}),
        faults: (phase, d) => {
          if (this.dead) throw new WorkerKilledError(phase, d.key);
          try {
            this.options.onCheckpoint?.(phase, d);
          } catch (e) {
            this.crash(ensureError(e));
            throw new WorkerKilledError(phase, d.key);
          }
        },
      };
      this.workers.set(pool, deps);
    }
    return deps;
  }

  private async invoke(d: Dispatch): Promise<void> {
    if (!this.alive()) return;
    this.idleLooks = 0;
    try {
      await processDispatch(this.worker(d.pool), d, () => Number.POSITIVE_INFINITY);
    } catch (e) {
      if (e instanceof WorkerKilledError || e instanceof RunnerCrashedError || this.dead) return;
      throw e;
    }
  }

  private async onIdle(): Promise<void> {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
    if (!this.alive() || this.inflight > 0) return;
    const snapshot = await readRun(this.writes, this.registry, this.instanceId);
    if (!snapshot || !this.alive() || this.inflight > 0) return;
    if (FINAL_STATUSES.has(snapshot.status)) return this.settle(snapshot);
    // What can move an idle run by itself: its timers, and the reaper's look at a
    // map or fork in lanes that stalled (a running run's only: a paused one waits
    // for its resume; and no more than a few looks in a row that started nothing).
    const laneLooks = snapshot.status === 'RUNNING' && this.idleLooks < MAX_IDLE_LANE_LOOKS;
    const timers = dueTimes(snapshot).filter((t) => t.kind === 'timer' || (t.kind === 'lanes' && laneLooks));
    // Children parked on their lane timers, which the reaper finds by themselves (see `LaneTimer`).
    const laneTimers = (await this.writes.listTimers(this.instanceId, '')).filter((t) => t.firedAt === undefined);
    if (!this.alive() || this.inflight > 0) return;
    if (laneTimers.length === 0 && timers.every((t) => t.kind === 'lanes')) this.idleLooks++;
    else this.idleLooks = 0;
    if (timers.length === 0 && laneTimers.length === 0) {
      // Waiting for a signal with nothing that can move by itself. A paused
      // run does not settle: its handle's owner resumes or cancels it.
      if (snapshot.status === 'RUNNING') await this.settle(snapshot);
      return;
    }
    // The reaper finds a run by its compacted snapshot's due time: after a crash
    // between a commit and its compaction that is later than the journal's, and
    // the pass that comes then repairs the compaction.
    const indexed = timers.length > 0 ? (await this.writes.get(this.instanceId))?.dueAt : undefined;
    if ((timers.length > 0 && indexed === undefined) || !this.alive() || this.inflight > 0) return;
    const dueAt = Math.min(
      indexed === undefined ? Number.POSITIVE_INFINITY : Math.max(indexed, Math.min(...timers.map((t) => t.dueAt))),
      ...laneTimers.map((t) => t.dueAt),
    );
    if (this.virtual) {
      this.virtual.advanceTo(dueAt);
      this.track(() => this.reap());
      return;
    }
    const wake = new AbortController();
    this.wake = wake;
    this.clock.sleep(Math.max(0, dueAt - this.clock.now()), wake.signal).then(
      () => {
        if (this.alive() && this.wake === wake) this.track(() => this.reap());
      },
      () => undefined,
    );
  }

  private async reap(): Promise<void> {
    await reapOnce({
      store: this.writes,
      timers: this.writes,
      claims: this.claims,
      queue: this.queue,
      registry: this.registry,
      clock: this.clock,
      ...(this.options.deadLetters ? { deadLetters: this.options.deadLetters } : {}),
    });
  }

  private async settle(snapshot: Snapshot): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    let output: O | undefined;
    if (snapshot.status === 'COMPLETED' && snapshot.output) {
      const values = await this.writes.getValues(this.instanceId, refValueIds(snapshot.output));
      output = materialize(snapshot.output, values) as O;
    }
    this.resolveResult({
      instanceId: this.instanceId,
      status: snapshot.status,
      ...(output === undefined ? {} : { output }),
      ...(snapshot.error ? { error: snapshot.error } : {}),
      snapshot,
      store: this.store,
    });
  }

  /** Starts the run, or continues a stored one: re-sends what was in flight (a restart lost the queue). */
  begin(input: { readonly start: unknown } | undefined): void {
    this.track(async () => {
      if (input) {
        const started = await startInstance(this.writes, this.flow, input.start, {
          instanceId: this.instanceId,
          now: this.clock.now(),
        });
        await sendDispatches(this.queue, started.effects);
        for (const s of this.options.signals ?? []) void this.signal(s.name, s.payload);
        return;
      }
      const run = await loadRun(this.writes, this.flow, this.instanceId);
      if (!run) throw new InstanceNotFoundError(this.instanceId);
      await sendDispatches(this.queue, pendingEffects(this.flow, run.snapshot));
    });
  }

  private event(run: () => Promise<unknown>): Promise<void> {
    // A settled run may move again: a signal to a waiting run, a retry or skip of a failed one.
    if (this.settled) {
      this.settled = false;
      this.openResult();
    }
    return new Promise<void>((resolve, reject) => {
      this.track(async () => {
        try {
          await run();
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  private now = () => this.clock.now();

  private control(event: RunEvent): Promise<void> {
    return this.event(() =>
      controlRun(
        { store: this.writes, queue: this.queue, claims: this.claims, now: this.now },
        this.flow,
        this.instanceId,
        event,
      ),
    );
  }

  signal(name: string, payload?: unknown, options: SignalSendOptions = {}): Promise<void> {
    return this.event(async () => {
      const r = await deliverSignalToLanes(this.writes, this.flow, this.instanceId, name, payload ?? null, {
        now: this.now,
        watch: true,
        ...(options.idempotencyKey === undefined ? {} : { deliveryId: deliveryIdOf(options.idempotencyKey) }),
      });
      await sendDispatches(this.queue, r.effects);
      if (r.dispatches.length > 0) await this.queue.send(r.dispatches);
    });
  }

  cancel(reason?: string): Promise<void> {
    return this.control({ type: 'cancel', ...(reason ? { reason } : {}) });
  }

  pause(): Promise<void> {
    return this.control({ type: 'pause' });
  }

  resume(): Promise<void> {
    return this.control({ type: 'resume' });
  }

  retryTask(taskKey: string): Promise<void> {
    return this.event(async () => {
      const r = await retryTask(this.writes, this.flow, this.instanceId, taskKey, { now: this.now, watch: true });
      await sendDispatches(this.queue, r.effects);
    });
  }

  skipTask(taskKey: string, output: unknown): Promise<void> {
    return this.event(async () => {
      const r = await skipAndCount(this.writes, this.flow, this.instanceId, taskKey, output, {
        now: this.now,
        watch: true,
      });
      await sendDispatches(this.queue, r.effects);
    });
  }
}

/**
 * Starts a run in this process, with in-memory adapters by default, and
 * returns a handle to signal, cancel, pause or await it.
 *
 * @example
 * ```ts
 * const run = startWorkflow(fulfil, order);
 * await run.signal('manager-approval', { ok: true });
 * const { status, output } = await run.result();
 * ```
 */
export function startWorkflow<I, O>(flow: Flow<I, O>, input: I, options: RunOptions = {}): WorkflowHandle<O> {
  const instanceId = options.instanceId ?? globalThis.crypto.randomUUID();
  const runner = new Runner<O>(flow, instanceId, options);
  runner.begin({ start: input });
  return runner;
}

/**
 * Runs a workflow to its end (or until it waits for a signal) in this
 * process, checkpointing after every task. For unit tests: no AWS needed.
 *
 * @example
 * ```ts
 * const { status, output } = await runWorkflow(hello, { name: 'Ada' });
 * expect(output).toBe('Hello, Ada!');
 * ```
 */
export function runWorkflow<I, O>(flow: Flow<I, O>, input: I, options: RunOptions = {}): Promise<RunResult<O>> {
  return startWorkflow(flow, input, options).result();
}

/**
 * Continues a stored instance in this process, as after a restart: re-sends
 * the tasks that were in flight; the reaper fires the timers when due.
 *
 * @throws {InstanceNotFoundError} no such instance in `options.store`.
 * @throws {DefinitionMismatchError} it was started from another definition.
 */
export async function resumeWorkflow<I, O>(
  flow: Flow<I, O>,
  instanceId: string,
  options: RunOptions & { readonly store: InstanceStore & TimerIndex },
): Promise<WorkflowHandle<O>> {
  // Fails here, not in the background, on an unknown id or another definition.
  if (!(await loadRun(options.store, flow, instanceId))) throw new InstanceNotFoundError(instanceId);
  const runner = new Runner<O>(flow, instanceId, options);
  runner.begin(undefined);
  return runner;
}

/**
 * A crashed process writes nothing more: this wrapper refuses every write
 * once `dead()` returns an error, even one whose reads were already under
 * way when the crash happened.
 */
function fencedStore(store: InstanceStore & TimerIndex, dead: () => Error | undefined): InstanceStore & TimerIndex {
  const check = () => {
    const e = dead();
    if (e) throw e;
  };
  return {
    create: async (snapshot, input, history) => {
      check();
      return store.create(snapshot, input, history);
    },
    load: (id) => store.load(id),
    readJournal: (id, after) => store.readJournal(id, after),
    append: async (id, entry) => {
      check();
      return store.append(id, entry);
    },
    compact: async (snapshot) => {
      check();
      return store.compact(snapshot);
    },
    unwatch: async (id, seq) => {
      check();
      return store.unwatch(id, seq);
    },
    get: (id) => store.get(id),
    putValue: async (id, valueId, value) => {
      check();
      return store.putValue(id, valueId, value);
    },
    getValues: (id, ids) => store.getValues(id, ids),
    listValueIds: (id, prefix) => store.listValueIds(id, prefix),
    addToCounter: async (id, counterId, by) => {
      check();
      return store.addToCounter(id, counterId, by);
    },
    getCounter: (id, counterId) => store.getCounter(id, counterId),
    putTimer: async (id, timer) => {
      check();
      return store.putTimer(id, timer);
    },
    fireTimer: async (id, timerId, at) => {
      check();
      return store.fireTimer(id, timerId, at);
    },
    listTimers: (id, prefix, page) => store.listTimers(id, prefix, page),
    getTimers: (id, ids) => store.getTimers(id, ids),
    list: (q) => store.list(q),
    readHistory: (id, options) => store.readHistory(id, options),
    due: (now, limit) => store.due(now, limit),
    duePurges: (now, limit) => store.duePurges(now, limit),
    purge: async (id) => {
      check();
      return store.purge(id);
    },
  };
}
