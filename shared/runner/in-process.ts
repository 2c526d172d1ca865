import { FakeClock, systemClock } from '../adapters/memory/clock.ts';
import { MemoryInstanceStore } from '../adapters/memory/instance-store.ts';
import { MemorySecrets } from '../adapters/memory/secrets.ts';
import type { AnyFlow, Flow } from '../engine/definition.ts';
import { ensureError } from '../engine/errors.ts';
import { materialize, refValueIds } from '../engine/refs.ts';
import type { Dispatch, Effect, RunError, RunStatus, Snapshot } from '../engine/snapshot.ts';
import { FINAL_STATUSES } from '../engine/snapshot.ts';
import type { Clock } from '../ports/clock.ts';
import { InstanceNotFoundError } from '../ports/errors.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { Secrets } from '../ports/secrets.ts';
import { executeTask } from '../runtime/execute-task.ts';
import {
  applyEvent,
  assertSameDefinition,
  completeTask,
  deliverSignal,
  pendingEffects,
  retryTask,
  skipTask,
  startInstance,
} from '../runtime/instances.ts';

/** Where the runner stands when a crash hook fires. */
export type CheckpointPhase =
  /** The task ran; its output is not stored yet. */
  | 'executed'
  /** The output is stored; the snapshot does not record it yet. */
  | 'committed'
  /** The snapshot records it; its effects are not carried out yet. */
  | 'checkpointed';

export interface RunOptions {
  /** @default a new `MemoryInstanceStore` */
  readonly store?: InstanceStore;
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
  /** Signals delivered right after the start (buffered until waited for). */
  readonly signals?: readonly { readonly name: string; readonly payload?: unknown }[];
  /**
   * Called at each phase of each task's checkpoint; throwing from it
   * simulates a crash there: the runner stops without another write and
   * `result()` rejects with {@link RunnerCrashedError}.
   */
  readonly onCheckpoint?: (phase: CheckpointPhase, dispatch: Dispatch) => void;
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
export class RunnerCrashedError extends Error {
  override readonly name = 'RunnerCrashedError';
  constructor(override readonly cause: Error) {
    super(`runner crashed: ${cause.message}`);
  }
}

/** A run in progress in this process. */
export interface WorkflowHandle<O> {
  readonly instanceId: string;
  readonly store: InstanceStore;
  /** Settles when the run finishes, or waits with nothing else to do. */
  result(): Promise<RunResult<O>>;
  /** Resolves the next time no task runs and no event is being applied. */
  idle(): Promise<void>;
  signal(name: string, payload?: unknown): Promise<void>;
  cancel(reason?: string): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Retries a task the run failed on, with a fresh attempt budget (the run continues). */
  retryTask(taskKey: string): Promise<void>;
  /** Completes a pending or failed task with the given output instead of running it. */
  skipTask(taskKey: string, output: unknown): Promise<void>;
}

class Runner<O> implements WorkflowHandle<O> {
  readonly store: InstanceStore;
  /** The store as this runner writes to it: no write once the runner has crashed. */
  readonly writes: InstanceStore;
  readonly clock: Clock;
  private readonly virtual: FakeClock | undefined;
  private readonly secrets: Secrets;
  private readonly running = new Map<string, AbortController>();
  private readonly timers = new Map<string, AbortController>();
  private inflight = 0;
  private dead: Error | undefined;
  private settled = false;
  private idleWaiters: (() => void)[] = [];
  private resolveResult!: (r: RunResult<O>) => void;
  private rejectResult!: (e: Error) => void;
  private resultPromise!: Promise<RunResult<O>>;
  private signalSeq = 0;

  constructor(
    private readonly flow: AnyFlow,
    readonly instanceId: string,
    private readonly options: RunOptions,
  ) {
    this.store = options.store ?? new MemoryInstanceStore();
    this.writes = fencedStore(this.store, () => this.dead);
    if (options.clock === undefined || options.clock === 'virtual') {
      this.virtual = new FakeClock(Date.now());
      this.clock = this.virtual;
    } else {
      this.clock = options.clock;
    }
    this.secrets = options.secrets ?? new MemorySecrets();
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
    void work()
      .catch((e) => this.crash(ensureError(e)))
      .finally(() => {
        this.inflight--;
        if (this.inflight === 0) void this.onIdle();
      });
  }

  private crash(error: Error): void {
    if (this.dead) return;
    this.dead = error;
    for (const c of [...this.running.values(), ...this.timers.values()]) c.abort(error);
    this.rejectResult(error instanceof RunnerCrashedError ? error : new RunnerCrashedError(error));
  }

  private alive(): boolean {
    return !this.dead && !this.settled;
  }

  private async onIdle(): Promise<void> {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
    if (!this.alive() || this.inflight > 0) return;
    const snapshot = await this.store.get(this.instanceId);
    if (!snapshot || !this.alive() || this.inflight > 0) return;
    if (FINAL_STATUSES.has(snapshot.status)) return this.settle(snapshot);
    if (this.virtual) {
      const next = this.virtual.nextWake();
      if (next !== undefined) {
        this.virtual.advanceTo(next);
        return;
      }
    }
    // Waiting for a signal with nothing that can move by itself. A paused
    // run does not settle: its handle's owner resumes or cancels it.
    if (this.timers.size === 0 && snapshot.status === 'RUNNING') await this.settle(snapshot);
  }

  private async settle(snapshot: Snapshot): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    for (const c of this.timers.values()) c.abort(new Error('settled'));
    let output: O | undefined;
    if (snapshot.status === 'COMPLETED' && snapshot.output) {
      const values = await this.store.getValues(this.instanceId, refValueIds(snapshot.output));
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

  handle(effects: readonly Effect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case 'dispatch':
          this.track(() => this.runTask(e.dispatch));
          break;
        case 'timer':
          this.armTimer(e.key, e.dueAt);
          break;
        case 'abort':
          for (const k of e.keys) this.running.get(k)?.abort(new Error('run ended'));
          break;
        default:
          break; // complete / fail: settled when idle
      }
    }
  }

  private armTimer(key: string, dueAt: number): void {
    this.timers.get(key)?.abort(new Error('re-armed'));
    const controller = new AbortController();
    this.timers.set(key, controller);
    // A pending timer is not in-flight work: the run is idle while it waits.
    this.clock.sleep(Math.max(0, dueAt - this.clock.now()), controller.signal).then(
      () => {
        if (this.timers.get(key) === controller) this.timers.delete(key);
        if (!this.alive()) return;
        this.track(async () => {
          const r = await applyEvent(this.writes, this.flow, this.instanceId, { type: 'timer-fired', key }, () =>
            this.clock.now(),
          );
          if (this.alive()) this.handle(r.effects);
        });
      },
      () => {
        if (this.timers.get(key) === controller) this.timers.delete(key);
      },
    );
  }

  private checkpoint(phase: CheckpointPhase, d: Dispatch): void {
    if (this.dead) throw this.dead;
    try {
      this.options.onCheckpoint?.(phase, d);
    } catch (e) {
      const crash = new RunnerCrashedError(ensureError(e));
      this.crash(crash);
      throw crash;
    }
  }

  private async runTask(d: Dispatch): Promise<void> {
    if (!this.alive()) return;
    const controller = new AbortController();
    this.running.set(d.key, controller);
    try {
      const values = await this.store.getValues(d.instanceId, refValueIds(d.input));
      const input = materialize(d.input, values);
      const outcome = await executeTask({
        flow: this.flow,
        dispatch: d,
        input,
        // Task timeouts run on real time under the virtual clock: a busy task
        // must not time out because the workflow's timers jumped ahead.
        clock: this.virtual ? systemClock : this.clock,
        secrets: this.secrets,
        signal: controller.signal,
      });
      if (!this.alive()) return;
      const now = () => this.clock.now();
      if (outcome.ok) {
        this.checkpoint('executed', d);
        const r = await completeTask(this.writes, this.flow, d, outcome.value, now, () =>
          this.checkpoint('committed', d),
        );
        if (!this.alive()) return;
        this.checkpoint('checkpointed', d);
        this.handle(r.effects);
      } else {
        if (controller.signal.aborted && !this.alive()) return;
        const r = await applyEvent(
          this.store,
          this.flow,
          d.instanceId,
          { type: 'task-failed', key: d.key, attempt: d.attempt, error: outcome.error },
          now,
        );
        if (this.alive()) this.handle(r.effects);
      }
    } catch (e) {
      if (e instanceof RunnerCrashedError) return;
      throw e;
    } finally {
      if (this.running.get(d.key) === controller) this.running.delete(d.key);
    }
  }

  private event(run: () => Promise<{ effects: readonly Effect[] }>): Promise<void> {
    // A settled run may move again: a signal to a waiting run, a retry or skip of a failed one.
    if (this.settled) {
      this.settled = false;
      this.openResult();
    }
    return new Promise<void>((resolve, reject) => {
      this.track(async () => {
        try {
          const r = await run();
          if (this.alive()) this.handle(r.effects);
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  signal(name: string, payload?: unknown): Promise<void> {
    const deliveryId = `${Date.now().toString(36)}-${this.signalSeq++}-${globalThis.crypto.randomUUID()}`;
    return this.event(() =>
      deliverSignal(this.writes, this.flow, this.instanceId, name, payload ?? null, deliveryId, () => this.clock.now()),
    );
  }

  cancel(reason?: string): Promise<void> {
    return this.event(() =>
      applyEvent(this.writes, this.flow, this.instanceId, { type: 'cancel', ...(reason ? { reason } : {}) }, () =>
        this.clock.now(),
      ),
    );
  }

  pause(): Promise<void> {
    return this.event(() =>
      applyEvent(this.writes, this.flow, this.instanceId, { type: 'pause' }, () => this.clock.now()),
    );
  }

  resume(): Promise<void> {
    return this.event(() =>
      applyEvent(this.writes, this.flow, this.instanceId, { type: 'resume' }, () => this.clock.now()),
    );
  }

  retryTask(taskKey: string): Promise<void> {
    return this.event(() => retryTask(this.writes, this.flow, this.instanceId, taskKey, () => this.clock.now()));
  }

  skipTask(taskKey: string, output: unknown): Promise<void> {
    return this.event(() => skipTask(this.writes, this.flow, this.instanceId, taskKey, output, () => this.clock.now()));
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
  const clock = runner.clock;
  runner.track(async () => {
    const started = await startInstance(runner.writes, flow, input, instanceId, clock.now());
    runner.handle(started.effects);
    for (const s of options.signals ?? []) void runner.signal(s.name, s.payload);
  });
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
 * Continues a stored instance in this process: re-runs the tasks that were
 * in flight and re-arms the timers.
 *
 * @throws {InstanceNotFoundError} no such instance in `options.store`.
 * @throws {DefinitionMismatchError} it was started from another definition.
 */
export async function resumeWorkflow<I, O>(
  flow: Flow<I, O>,
  instanceId: string,
  options: RunOptions & { readonly store: InstanceStore },
): Promise<WorkflowHandle<O>> {
  const snapshot = await options.store.get(instanceId);
  if (!snapshot) throw new InstanceNotFoundError(instanceId);
  assertSameDefinition(flow, snapshot);
  const runner = new Runner<O>(flow, instanceId, options);
  runner.track(async () => {
    runner.handle(pendingEffects(flow, snapshot));
  });
  return runner;
}

/**
 * A crashed process writes nothing more: this wrapper refuses every write
 * once `dead()` returns an error, even one whose reads were already under
 * way when the crash happened.
 */
function fencedStore(store: InstanceStore, dead: () => Error | undefined): InstanceStore {
  const check = () => {
    const e = dead();
    if (e) throw e instanceof RunnerCrashedError ? e : new RunnerCrashedError(e);
  };
  return {
    create: async (snapshot, input) => {
      check();
      return store.create(snapshot, input);
    },
    get: (id) => store.get(id),
    update: async (snapshot) => {
      check();
      return store.update(snapshot);
    },
    putValue: async (id, valueId, value) => {
      check();
      return store.putValue(id, valueId, value);
    },
    getValues: (id, ids) => store.getValues(id, ids),
    list: (q) => store.list(q),
    appendHistory: async (id, entries) => {
      check();
      return store.appendHistory(id, entries);
    },
    readHistory: (id, options) => store.readHistory(id, options),
  };
}
