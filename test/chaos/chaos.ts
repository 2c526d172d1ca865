import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { type EmulatedLocalStack, startLocalStack } from '../../local/stack.ts';
import { type InstanceView, SayiirApiError, SayiirClient } from '../../shared/client/index.ts';
import { compileFlow, taskOf } from '../../shared/engine/compile.ts';
import { resolveRetry } from '../../shared/engine/retry.ts';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import type { TaskReport } from '../../shared/runtime/worker.ts';
import { ChaosFaults, FAULT_KINDS, type FaultKind, type FaultProbabilities, type SnapshotSeen } from './faults.ts';
import { Prng } from './prng.ts';
import { chaosWorkflows, ExecutionLog, type Expected, planRun, type RunPlan } from './workflows.ts';

/**
 * The chaos runner: starts the local stack on a temporary data folder with
 * short timings, starts many concurrent runs of the example workflows and of
 * the chaos workflows (`workflows.ts`), injects faults at random (`faults.ts`:
 * workers killed at every phase, duplicated and lost messages, throttled
 * DynamoDB and SQS requests, and whole-stack restarts on the same data), then
 * waits for every run to end and checks what the design promises:
 *
 * - no run lost: every run reaches a final state within `deadlineMs` of its start;
 * - no wrong output: each ends in the state and with the output (or error)
 *   its input implies;
 * - no double commit: no task is completed by two journal entries, and no
 *   map item's result is put twice (counted at the SDK: the task-completed
 *   events of successful conditional PutItems of `J#` items, and successful
 *   conditional PutItems of `V#out:` items).
 *
 * Seeded: the plan (workflows, inputs, pauses before starts, after how many
 * starts each restart strikes and how long the stack stays down) comes from
 * a PRNG stream, and each fault decision from a hash of the seed and the
 * event it strikes (see `prng.ts`), so one seed injects the same faults into
 * the same events from one run of the suite to the next. Thread timing still
 * varies, so the figures vary a little; the verdicts must not.
 *
 * @example
 * ```ts
 * const report = await runChaos({ runs: 50, seed: 7 });
 * console.log(formatReport(report));
 * if (!report.ok) process.exitCode = 1;
 * ```
 */
export interface ChaosOptions {
  /** Runs to start. */
  readonly runs: number;
  /** Seed of the plan and of every fault decision. */
  readonly seed: number;
  /** Whole-stack restarts, spread over the run (at least 1 is advised). @default 1 */
  readonly restarts?: number;
  /** Fault probabilities; see {@link FaultProbabilities}. @default DEFAULT_PROBABILITIES */
  readonly probabilities?: Partial<FaultProbabilities>;
  /** Mean pause before a run starts in a free slot (ms). @default 40 */
  readonly staggerMs?: number;
  /** Most kills of one task (fewer when its retry budget has less room). @default 3 */
  readonly maxKillsPerTask?: number;
  /** Runs in flight at once: the next run starts when one ends. @default 30 */
  readonly concurrency?: number;
  /** How long after its start a run must have ended, or it counts as lost (ms). @default 60_000 */
  readonly deadlineMs?: number;
  /** Pause after the last run ended, before counting commits, so late duplicates land (ms). @default 1_000 */
  readonly settleMs?: number;
  /** Print the stored state (snapshot, journal tail, lane timers, value ids) of each lost run. @default false */
  readonly dumpLost?: boolean;
  /** Pause between reaper passes (ms). @default 500 */
  readonly reaperIntervalMs?: number;
  /** @default 1_000 */
  readonly redispatchAfterMs?: number;
  /** See `ReaperDeps.maxQueueWaitMs`. @default 5_000 */
  readonly maxQueueWaitMs?: number;
  /** @default { reserveTtlMs: 1_000, leaseMs: 2_000, heartbeatMs: 400 } */
  readonly claims?: { readonly reserveTtlMs: number; readonly leaseMs: number; readonly heartbeatMs: number };
  /**
   * Worker function timeout (s). 3 lets a 500 ms task run inline (it needs
   * its timeout plus 2 s of the invocation left).
   * @default 3
   */
  readonly workerTimeoutSeconds?: number;
  /**
   * Visibility timeout the pollers ask for on receive (s), so that the
   * messages of a failed batch come back soon. The local stack's queues hide
   * a message for 6 × the worker timeout (AWS's advice); any value from the
   * worker timeout up is a valid pool setting (`PoolDefinition.visibilityTimeoutSeconds`).
   * @default workerTimeoutSeconds
   */
  readonly visibilityTimeoutSeconds?: number;
  /** @default 4 */
  readonly pollerConcurrency?: number;
  /** Data folder. @default a new temporary folder, removed at the end */
  readonly dataDir?: string;
  /** Progress lines. @default nothing */
  readonly log?: (line: string) => void;
}

/** Median and maximum of a set of durations (ms). */
export interface Spread {
  readonly count: number;
  readonly medianMs: number;
  readonly maxMs: number;
}

export interface ChaosReport {
  readonly seed: number;
  readonly runs: number;
  readonly durationMs: number;
  readonly byWorkflow: Readonly<Record<string, number>>;
  readonly expectedFailures: number;
  /** Faults injected, by kind (`restart`: stack restarts). */
  readonly faults: Readonly<Record<FaultKind, number>>;
  /** Throttles by kind and command. */
  readonly throttledCommands: Readonly<Record<string, number>>;
  /** Requests where absorbable throttles outlasted the SDK's retries. */
  readonly absorbedThrottlesEscaped: number;
  /** Workers killed in flight by the restarts. */
  readonly restartKills: number;
  /** Runs not final when each restart began. */
  readonly runningAtRestart: readonly number[];
  /** Runs that did not end before the deadline. */
  readonly lostRuns: readonly string[];
  readonly wrongOutputs: readonly {
    readonly instanceId: string;
    readonly expected: unknown;
    readonly actual: unknown;
  }[];
  /** Output items created more than once. */
  readonly doubleCommits: readonly { readonly item: string; readonly count: number }[];
  /** Snapshot writes that changed the status of a run already seen final. */
  readonly finalStateChanges: readonly { instanceId: string; from: string; to: string; version: number }[];
  /** Output items created (each should be created once). */
  readonly commits: number;
  readonly executions: {
    /** Task executions (chaos flows: counted by the tasks; examples: worker reports). */
    readonly total: number;
    /** Distinct tasks (instance, task key) executed. */
    readonly tasks: number;
    readonly maxPerTask: number;
    /** Tasks executed more than once (retries by design included). */
    readonly tasksRunMoreThanOnce: number;
    /** Executions of an attempt already executed: the at-least-once re-runs that faults cause. */
    readonly reRunsOfSameAttempt: number;
  };
  /** Recovery time; see {@link RECOVERY_DEFINITION}. */
  readonly recovery: Spread & {
    readonly byKind: Readonly<Partial<Record<FaultKind, Spread>>>;
    /** Faults that held up work of a run that never ended. */
    readonly unrecovered: number;
    /** Faults that held nothing up (a message of a task already done, a run already over). */
    readonly heldNothingUp: number;
  };
  /** Workers' task reports by outcome. */
  readonly taskReports: Readonly<Record<string, number>>;
  /** The runs that took longest from their start to their final state, slowest first (how close they came to the deadline). */
  readonly slowest: readonly { readonly instanceId: string; readonly workflow: string; readonly ms: number }[];
  /** A run counts as lost when it is not final this long after its start. */
  readonly deadlineMs: number;
  readonly ok: boolean;
}

/** What the report's recovery figures measure. */
export const RECOVERY_DEFINITION =
  'for each fault that may hold up a run (a worker kill, a lost message, a throttle the engine saw on a request ' +
  'naming the run, a restart), the tasks it holds up are read from the last snapshot of the run seen before it: ' +
  "the killed task at its attempt (kill before the commit), the run's other tasks in flight (kill after the " +
  "commit, when successors are dispatched), the message's task at its attempt (lost message), the request's task " +
  'or else every task in flight (throttle), every task in flight (restart). Recovery time is the time from the ' +
  'fault to the first snapshot write in which none of them is still dispatched at that attempt (committed, failed ' +
  'into a retry, or the run ended). Faults that held nothing up (a message of a task already done) are not timed; ' +
  'duplicates and SDK-absorbed throttles hold nothing up by design and are counted, not timed.';

const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
/** Restarts that may still strike a run in flight, beyond those that did (see `killBudget`). */
const RESTARTS_AHEAD = 2;

interface RunState {
  readonly plan: RunPlan;
  /** Resolves when the run is seen final. */
  readonly ended: Promise<void>;
  end: () => void;
  /** When it counts as lost (set at its start). */
  deadline: number;
  /** When it was started, and when it was first seen final. */
  startedAt?: number;
  endedAt?: number;
  started: boolean;
  signalSent: boolean;
  signalling: boolean;
  final?: string;
  lastSeenAt: number;
}

/** Runs the chaos suite once; see {@link ChaosOptions}. */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const began = Date.now();
  const prng = new Prng(options.seed);
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'sayiir-chaos-')));
  const workerTimeoutSeconds = options.workerTimeoutSeconds ?? 3;
  const executions = new ExecutionLog();
  const workflows = chaosWorkflows(executions);
  const runs = new Map<string, RunState>();
  const plans = Array.from({ length: options.runs }, (_, i) => planRun(`c${options.seed}`, i, prng));
  for (const plan of plans) {
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    runs.set(plan.instanceId, {
      plan,
      ended,
      end,
      deadline: Number.POSITIVE_INFINITY,
      started: false,
      signalSent: false,
      signalling: false,
      lastSeenAt: 0,
    });
  }

  // Set once the stack runs; a snapshot seen waiting for a signal calls it.
  let sendSignal: (run: RunState) => Promise<void> = async () => undefined;
  const onSnapshot = (instanceId: string, seen: SnapshotSeen): void => {
    const run = runs.get(instanceId);
    if (!run) return;
    run.lastSeenAt = Date.now();
    if (FINAL.has(seen.status)) {
      run.final = seen.status;
      run.endedAt ??= Date.now();
      run.end();
      return;
    }
    const signal = run.plan.signal;
    if (signal && !run.signalSent && (signal.inLane || seen.waitingFor.includes(signal.name))) void sendSignal(run);
  };
  const restarts = options.restarts ?? 1;
  const maxKills = options.maxKillsPerTask ?? 3;
  const flows = new Map(workflows.map((f) => [f.name, f]));
  /**
   * Kills a task can take and still complete: a dead worker's attempt counts
   * as a failed one, so its retry budget must cover the attempts that fail
   * by design, one per restart that struck its run or may still strike it
   * (a restart kills what runs; runs are short next to the gap between
   * restarts, so at most {@link RESTARTS_AHEAD} more), one spare (a
   * reservation that outlives its TTL because the worker was slow, not dead,
   * may also cost an attempt), and the kills. A task designed to fail takes
   * any. So the fault mix does not shrink as the suite, and its restarts, grow.
   */
  const killBudget = (d: Dispatch): number => {
    const plan = runs.get(d.instanceId)?.plan;
    const designed = plan?.designedFailures?.[d.key] ?? 0;
    if (designed === Number.POSITIVE_INFINITY) return maxKills;
    const flow = flows.get(d.workflow);
    const node = flow ? compileFlow(flow).nodes.get(d.qid) : undefined;
    if (!node) return 0;
    const { maxAttempts } = resolveRetry(taskOf(node).options.retry);
    const struck = faults.restartsStruck(d.instanceId) + Math.min(restarts, RESTARTS_AHEAD);
    return Math.max(0, Math.min(maxKills, maxAttempts - 1 - designed - struck - 1));
  };
  const faults = new ChaosFaults(options.seed, options.probabilities, {
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? workerTimeoutSeconds,
    killBudget,
    onSnapshot,
  });
  const taskReports = new Map<string, number>();
  const exampleRuns = new Map<string, number>();
  const onTask = (r: TaskReport): void => {
    taskReports.set(r.outcome, (taskReports.get(r.outcome) ?? 0) + 1);
    if (!r.dispatch.workflow.startsWith('chaos-') && r.outcome !== 'skipped') {
      const id = `${r.dispatch.instanceId}\u0000${r.dispatch.key}\u0000${r.dispatch.attempt}`;
      exampleRuns.set(id, (exampleRuns.get(id) ?? 0) + 1);
    }
  };

  const start = async (): Promise<EmulatedLocalStack> => {
    const stack = await startLocalStack({
      emulateAws: true,
      dataDir,
      workflows,
      reaperIntervalMs: options.reaperIntervalMs ?? 500,
      redispatchAfterMs: options.redispatchAfterMs ?? 1_000,
      // Queues stay busy for the whole suite: a lost message is sent again after 5 s behind a backlog, not never.
      maxQueueWaitMs: options.maxQueueWaitMs ?? 5_000,
      claims: options.claims ?? { reserveTtlMs: 1_000, leaseMs: 2_000, heartbeatMs: 400 },
      workerTimeoutSeconds,
      pollerConcurrency: options.pollerConcurrency ?? 4,
      instrument: faults.instrument,
      onTask,
      workerFaults: faults.workerFault,
      log: (line) => log(`  stack: ${line}`),
    });
    faults.enabled = true;
    return stack;
  };

  // The stack in use; replaced by a pending promise while it restarts.
  let current: Promise<EmulatedLocalStack> = start();
  let stack = await current;
  try {
    // Calls give up eventually (a stack that never comes back), far past any run's deadline.
    const hardDeadline = () => Date.now() > began + (options.deadlineMs ?? 60_000) * 2 + plans.length * 2_000;

    /**
     * A call through the typed client that rides out restarts, lost
     * connections and 5xx (throttles the engine surfaced to the API): its
     * value, or the API's 4xx refusal.
     */
    const call = async <T>(what: string, op: (client: SayiirClient) => Promise<T>): Promise<T | SayiirApiError> => {
      for (let attempt = 0; ; attempt++) {
        if (hardDeadline()) throw new Error(`${what}: gave up`);
        try {
          const s = await current;
          return await op(new SayiirClient({ url: s.url, apiKey: s.apiKey, fetch: fetchWithTimeout }));
        } catch (e) {
          if (e instanceof SayiirApiError && e.status < 500) return e;
          await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 4)));
        }
      }
    };

    sendSignal = async (run: RunState): Promise<void> => {
      const signal = run.plan.signal;
      if (!signal || run.signalSent || run.signalling) return;
      run.signalling = true;
      try {
        const r = await call('signal', (c) => c.getHandle(run.plan.instanceId).signal(signal.name, signal.payload));
        // Delivered, or 409: the run is over (it failed before waiting).
        if (!(r instanceof SayiirApiError) || r.status === 409) run.signalSent = true;
        else log(`signal ${run.plan.instanceId}: ${r.status} ${r.code} ${r.message}`);
      } catch (e) {
        log(`signal ${run.plan.instanceId}: ${String(e)}`);
      } finally {
        run.signalling = false;
      }
    };

    const startRun = async (run: RunState): Promise<void> => {
      const { plan } = run;
      const r = await call('start', (c) =>
        c.start(plan.workflow, plan.input, { instanceId: plan.instanceId, onConflict: 'useExisting' }),
      );
      if (r instanceof SayiirApiError) throw new Error(`start ${plan.instanceId}: ${r.status} ${r.code} ${r.message}`);
      run.started = true;
      run.startedAt = Date.now();
      run.deadline = run.startedAt + runDeadlineMs;
      run.lastSeenAt = Date.now();
      if (plan.signal?.early) await sendSignal(run);
    };

    // The plan: at most `concurrency` runs in flight, each start a random gap
    // after a slot frees; restart k once a share k/(restarts+1) of the runs
    // have started, so that it strikes with a full house in flight.
    const concurrency = options.concurrency ?? 30;
    const staggerMs = options.staggerMs ?? 40;
    const gaps = plans.map(() => prng.between(0, 2 * staggerMs));
    const restartAfter = Array.from({ length: restarts }, (_, k) =>
      Math.max(1, Math.round(((k + 1 + prng.between(-0.2, 0.2)) * plans.length) / (restarts + 1))),
    );
    const downtimes = restartAfter.map(() => prng.between(200, 800));
    const runDeadlineMs = options.deadlineMs ?? 60_000;
    const runningAtRestart: number[] = [];
    const failedStarts: string[] = [];

    const restart = async (k: number): Promise<void> => {
      runningAtRestart.push(faults.recordRestart(Date.now()));
      log(`restart ${k + 1}/${restarts}: ${runningAtRestart.at(-1)} runs in flight`);
      let resume!: (s: EmulatedLocalStack) => void;
      let fail!: (e: unknown) => void;
      current = new Promise((ok, ko) => {
        resume = ok;
        fail = ko;
      });
      current.catch(() => undefined);
      faults.enabled = false;
      faults.stopping = true;
      // The process is dead: it sends nothing more. Let the requests it already
      // sent be served first: dynalite crashes the process when a request is
      // still being served as its database closes.
      for (const until = Date.now() + 5_000; faults.inFlightRequests > 0 && Date.now() < until; ) await sleep(10);
      await stack.stop();
      faults.stopping = false;
      await sleep(downtimes[k] ?? 500);
      try {
        stack = await start();
        resume(stack);
      } catch (e) {
        fail(e);
        throw e;
      }
    };
    let restarting: Promise<void> = Promise.resolve();
    let startedCount = 0;
    let restartsDone = 0;

    let next = 0;
    const slot = async (): Promise<void> => {
      while (next < plans.length) {
        const i = next++;
        const run = runs.get(plans[i]?.instanceId ?? '');
        if (!run) continue;
        await sleep(gaps[i] ?? 0);
        try {
          await startRun(run);
        } catch (e) {
          failedStarts.push(run.plan.instanceId);
          log(String(e));
          continue;
        }
        startedCount++;
        if (restartsDone < restarts && startedCount >= (restartAfter[restartsDone] ?? Number.POSITIVE_INFINITY)) {
          const k = restartsDone++;
          restarting = restarting.then(() => restart(k));
          restarting.catch(() => undefined); // awaited, and thrown, at the end
        }
        await Promise.race([run.ended, sleep(Math.max(0, run.deadline - Date.now()), undefined, { ref: false })]);
      }
    };
    const slots = Array.from({ length: Math.min(concurrency, plans.length) }, slot);

    // While runs go on: snapshots seen at the SDK drive the runs (signals, ends);
    // a slow poll of the API covers writes whose response was lost in a restart.
    const pending = () => [...runs.values()].filter((r) => r.started && !r.final && Date.now() < r.deadline);
    let lastProgress = Date.now();
    let slotsDone = false;
    void Promise.all(slots).then(() => (slotsDone = true));
    while (!slotsDone || pending().length > 0) {
      const quiet = pending()
        .filter((r) => Date.now() - r.lastSeenAt > 5_000)
        .slice(0, 5);
      await Promise.all(
        quiet.map(async (run) => {
          run.lastSeenAt = Date.now();
          const view = await call('status', (c) => c.getHandle(run.plan.instanceId).status());
          if (!(view instanceof SayiirApiError)) faults.seeSnapshot(run.plan.instanceId, fromView(view));
        }),
      );
      if (Date.now() - lastProgress > 5_000) {
        lastProgress = Date.now();
        const ended = [...runs.values()].filter((r) => r.final).length;
        log(
          `${ended}/${runs.size} runs ended, ${pending().length} in flight, faults ${JSON.stringify(Object.fromEntries(faults.counts))}`,
        );
      }
      await sleep(500);
    }
    await restarting;
    await sleep(options.settleMs ?? 1_000);
    faults.enabled = false;
    faults.dispose();

    // Verdicts, from the API (the truth as a client sees it).
    const lostRuns: string[] = [...failedStarts];
    const wrongOutputs: { instanceId: string; expected: unknown; actual: unknown }[] = [];
    await Promise.all(
      [...runs.values()].map(async (run) => {
        if (!run.started) return;
        const view = await call('status', (c) => c.getHandle(run.plan.instanceId).status());
        if (view instanceof SayiirApiError || !FINAL.has(view.status)) {
          lostRuns.push(run.plan.instanceId);
          if (options.dumpLost) {
            const id = run.plan.instanceId;
            const stored = await stack.store.load(id);
            const timers = await stack.store.listTimers(id, '');
            const values = await stack.store.listValueIds(id, '');
            console.log(`lost ${id}: ${JSON.stringify({ stored, timers, values }, null, 1)}`);
          }
          return;
        }
        if (!matches(run.plan.expected, view)) {
          wrongOutputs.push({
            instanceId: run.plan.instanceId,
            expected: describeExpected(run.plan.expected),
            actual: view,
          });
        }
      }),
    );

    const doubleCommits = [...faults.commits].filter(([, n]) => n > 1).map(([item, count]) => ({ item, count }));
    const recovery = recoveryOf(faults);
    const report: ChaosReport = {
      seed: options.seed,
      runs: plans.length,
      durationMs: Date.now() - began,
      byWorkflow: countBy(plans.map((p) => p.workflow)),
      expectedFailures: plans.filter((p) => p.expected.status === 'FAILED').length,
      faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, faults.counts.get(k) ?? 0])) as Record<FaultKind, number>,
      throttledCommands: Object.fromEntries([...faults.throttledCommands].sort()),
      absorbedThrottlesEscaped: faults.absorbedEscaped,
      restartKills: faults.restartKills,
      runningAtRestart,
      lostRuns: lostRuns.sort(),
      wrongOutputs,
      doubleCommits,
      finalStateChanges: faults.finalStateChanges,
      commits: faults.commits.size,
      executions: executionsOf(executions, exampleRuns),
      recovery,
      taskReports: Object.fromEntries(taskReports),
      slowest: [...runs.values()]
        .flatMap((r) =>
          r.startedAt !== undefined && r.endedAt !== undefined
            ? [{ instanceId: r.plan.instanceId, workflow: r.plan.workflow, ms: r.endedAt - r.startedAt }]
            : [],
        )
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 3),
      deadlineMs: runDeadlineMs,
      ok:
        lostRuns.length === 0 &&
        wrongOutputs.length === 0 &&
        doubleCommits.length === 0 &&
        faults.finalStateChanges.length === 0,
    };
    return report;
  } finally {
    faults.enabled = false;
    faults.dispose();
    await stack.stop().catch(() => undefined);
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
  }
}

/** A snapshot as the API shows it, for the fallback poll. */
function fromView(view: InstanceView): SnapshotSeen {
  return {
    at: Date.now(),
    version: view.version,
    status: view.status,
    dispatched: new Map(view.tasks.filter((t) => t.state === 'dispatched').map((t) => [t.key, t.attempt])),
    waitingFor: view.waits.flatMap((w) => (w.kind === 'signal' && w.signal ? [w.signal] : [])),
  };
}

function matches(
  expected: Expected,
  view: { status?: string; output?: unknown; error?: { name?: string; message?: string; taskKey?: string } },
): boolean {
  if (expected.status === 'COMPLETED')
    return view.status === 'COMPLETED' && isDeepStrictEqual(view.output, expected.output);
  if (view.status !== 'FAILED' || view.error?.taskKey !== expected.taskKey) return false;
  // The last attempt's error: the task's own, or its worker's death.
  if (view.error.name === 'WorkerLostError') return true;
  return view.error.name === expected.errorName && expected.message.test(view.error.message ?? '');
}

function describeExpected(expected: Expected): unknown {
  return expected.status === 'COMPLETED' ? expected : { ...expected, message: String(expected.message) };
}

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function executionsOf(log: ExecutionLog, exampleRuns: ReadonlyMap<string, number>): ChaosReport['executions'] {
  const perTask = new Map<string, number>();
  let reRuns = 0;
  for (const { instanceId, key, perAttempt } of log.entries()) {
    let n = 0;
    for (const count of perAttempt.values()) {
      n += count;
      reRuns += count - 1;
    }
    perTask.set(`${instanceId}\u0000${key}`, n);
  }
  for (const [id, count] of exampleRuns) {
    const task = id.split('\u0000').slice(0, 2).join('\u0000');
    perTask.set(task, (perTask.get(task) ?? 0) + count);
    reRuns += count - 1;
  }
  const counts = [...perTask.values()];
  return {
    total: counts.reduce((a, b) => a + b, 0),
    tasks: counts.length,
    maxPerTask: Math.max(0, ...counts),
    tasksRunMoreThanOnce: counts.filter((n) => n > 1).length,
    reRunsOfSameAttempt: reRuns,
  };
}

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median =
    sorted.length === 0
      ? 0
      : sorted.length % 2
        ? (sorted[mid] ?? 0)
        : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { count: sorted.length, medianMs: Math.round(median), maxMs: Math.round(sorted.at(-1) ?? 0) };
}

/** Recovery times by {@link RECOVERY_DEFINITION}. */
function recoveryOf(faults: ChaosFaults): ChaosReport['recovery'] {
  const all: number[] = [];
  const byKind = new Map<FaultKind, number[]>();
  let unrecovered = 0;
  let heldNothingUp = 0;
  for (const f of faults.records) {
    if (f.kind === 'duplicate' || f.kind === 'throttle-absorbed') continue;
    if (!f.instanceId || f.blocked.length === 0) {
      heldNothingUp++;
      continue;
    }
    const seen = faults.snapshots.get(f.instanceId) ?? [];
    const freed = seen.find(
      (s) => s.at >= f.at && (FINAL.has(s.status) || f.blocked.every(([k, a]) => s.dispatched.get(k) !== a)),
    );
    if (!freed) {
      unrecovered++;
      continue;
    }
    const ms = freed.at - f.at;
    all.push(ms);
    byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), ms]);
  }
  return {
    ...spread(all),
    byKind: Object.fromEntries([...byKind].map(([k, v]) => [k, spread(v)])),
    unrecovered,
    heldNothingUp,
  };
}

/** The report as text, for people. */
export function formatReport(r: ChaosReport): string {
  const kinds = FAULT_KINDS.map((k) => `${k} ${r.faults[k]}`).join(', ');
  const lines = [
    `chaos: seed ${r.seed}, ${r.runs} runs in ${(r.durationMs / 1000).toFixed(1)} s — ${r.ok ? 'OK' : 'FAILED'}`,
    `  workflows: ${Object.entries(r.byWorkflow)
      .map(([w, n]) => `${w} ${n}`)
      .join(', ')} (${r.expectedFailures} designed to fail)`,
    `  faults: ${kinds}`,
    `    throttles by command: ${Object.entries(r.throttledCommands)
      .map(([c, n]) => `${c.replace('Command', '')} ${n}`)
      .join(', ')}`,
    `    absorbable throttles that outlasted the SDK retries: ${r.absorbedThrottlesEscaped}; workers killed by restarts: ${r.restartKills}; runs in flight at each restart: ${r.runningAtRestart.join(', ')}`,
    `  lost runs: ${r.lostRuns.length}${r.lostRuns.length ? ` (${r.lostRuns.slice(0, 10).join(', ')})` : ''}`,
    `  wrong outputs: ${r.wrongOutputs.length}`,
    ...r.wrongOutputs
      .slice(0, 10)
      .map((w) => `    ${w.instanceId}: expected ${JSON.stringify(w.expected)}, got ${JSON.stringify(w.actual)}`),
    `  double commits: ${r.doubleCommits.length} (of ${r.commits} outputs committed)`,
    ...r.doubleCommits.slice(0, 10).map((d) => `    ${d.item}: ${d.count}`),
    `  final states changed after the fact: ${r.finalStateChanges.length}`,
    `  executions: ${r.executions.total} of ${r.executions.tasks} tasks; max per task ${r.executions.maxPerTask}; ` +
      `${r.executions.tasksRunMoreThanOnce} tasks ran more than once (retries included); ` +
      `${r.executions.reRunsOfSameAttempt} re-runs of an attempt already run`,
    `  worker task reports: ${Object.entries(r.taskReports)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
    `  recovery (from a fault to when the tasks it held up left the dispatched state): median ${r.recovery.medianMs} ms, max ${r.recovery.maxMs} ms over ${r.recovery.count} faults that held work up ` +
      `(${r.recovery.heldNothingUp} held nothing up, ${r.recovery.unrecovered} never recovered)`,
    ...Object.entries(r.recovery.byKind).map(
      ([k, s]) => `    ${k}: median ${s.medianMs} ms, max ${s.maxMs} ms (${s.count})`,
    ),
    `  slowest runs (start to final state; lost past ${(r.deadlineMs / 1000).toFixed(0)} s): ${r.slowest
      .map((x) => `${x.workflow} ${x.instanceId} ${(x.ms / 1000).toFixed(1)} s`)
      .join(', ')}`,
  ];
  return lines.join('\n');
}

/** `fetch` with a 10 s limit per request: a call to a stack that hangs is retried, not awaited forever. */
const fetchWithTimeout: typeof fetch = (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(10_000) });
