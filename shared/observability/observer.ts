import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { HistoryEntry } from '../engine/history.ts';
import type { Snapshot } from '../engine/snapshot.ts';
import type { DeadLetterStore } from '../ports/dead-letter-store.ts';
import { JournalConflictError } from '../ports/errors.ts';
import type { InstanceStore, JournalEntry } from '../ports/instance-store.ts';
import type { ReapSummary } from '../runtime/reaper.ts';
import type { TaskReport } from '../runtime/worker.ts';
import { type Log, silentLog } from './log.ts';
import { type Metrics, noMetrics } from './metrics.ts';
import { ATTR, activeTraceId, rememberRunTrace, traceIdOf, traceparentOf } from './tracing.ts';

/** Where a component's logs and metrics go. */
export interface Telemetry {
  readonly log: Log;
  readonly metrics: Metrics;
}

/** Logs nothing, measures nothing. */
export const noTelemetry: Telemetry = { log: silentLog, metrics: noMetrics };

/**
 * The worker's `onTask`: each task report becomes one log line, its metrics,
 * and the `outcome` attribute of the task's span. A failed attempt is
 * `retried` while its run goes on, `failed` when it failed the run.
 *
 * @example
 * ```ts
 * const deps: WorkerDeps = { ...ports, onTask: taskObserver({ log: jsonLog(), metrics }) };
 * ```
 */
export function taskObserver(t: Telemetry): (report: TaskReport) => void {
  return (r) => {
    const d = r.dispatch;
    const dims = { workflow: d.workflow, pool: d.pool };
    const outcome = r.outcome !== 'failed' ? r.outcome : r.run?.status === 'RUNNING' ? 'retried' : 'failed';
    const timing = r.timing;
    const fields = {
      workflow: d.workflow,
      instanceId: d.instanceId,
      taskKey: d.key,
      attempt: d.attempt,
      pool: d.pool,
      outcome,
      inline: r.inline,
      durationMs: timing?.durationMs,
      queueWaitMs: timing?.queueWaitMs,
      traceId: activeTraceId() ?? traceIdOf(d.trace),
      reason: r.reason,
    };
    const span = trace.getActiveSpan();
    span?.setAttribute(ATTR.outcome, outcome);
    if (outcome === 'failed') span?.setStatus({ code: SpanStatusCode.ERROR });
    if (outcome === 'skipped') {
      t.metrics.count('TasksSkipped', dims);
      t.log.info('task skipped', fields);
      return;
    }
    t.metrics.count(
      outcome === 'completed' ? 'TasksCompleted' : outcome === 'retried' ? 'TasksRetried' : 'TasksFailed',
      dims,
    );
    if (timing) {
      t.metrics.observe('TaskDuration', dims, timing.durationMs);
      if (timing.stepMs !== undefined) t.metrics.observe('StepLatency', dims, timing.stepMs);
      if (timing.queueWaitMs !== undefined) t.metrics.observe('QueueWait', dims, timing.queueWaitMs);
    }
    if (outcome === 'completed') t.log.info('task completed', fields);
    else if (outcome === 'retried') t.log.warn('task retried', fields);
    else t.log.error('task failed', fields);
  };
}

/**
 * The reaper's `onPass`: a pass that did something (fired a timer, sent a
 * task again, released an expired claim, purged a finished run, or met an
 * error) is one log line; its re-dispatches, fired timers and purges are counted.
 */
export function reaperObserver(t: Telemetry): (s: ReapSummary) => void {
  return (s) => {
    t.metrics.count('ReaperRedispatches', {}, s.redispatched);
    t.metrics.count('ReaperTimersFired', {}, s.timersFired);
    t.metrics.count('RunsPurged', {}, s.purged);
    if (s.errors > 0) t.log.error('reaper pass', { ...s, traceId: activeTraceId() });
    else if (s.timersFired + s.redispatched + s.expiredClaims + s.purged > 0) t.log.info('reaper pass', { ...s });
  };
}

/** Runs whose workflow and start time a store has seen, so a journal entry (which names neither) can be measured. */
const MAX_KNOWN_RUNS = 10_000;

/**
 * The instance store, observed: a run's start (`create`, which also records
 * the start's trace context in the snapshot, when tracing is on), its end (the
 * `run-completed`, `run-failed` and `cancelled` history of an appended
 * entry, whoever commits it: worker, API or reaper), and journal conflicts
 * become log lines and metrics. Nothing else changes; errors pass through.
 *
 * @example
 * ```ts
 * const store = observedStore(new DynamoInstanceStore({ client, tableName }), telemetry);
 * ```
 */
export function observedStore<S extends InstanceStore>(store: S, t: Telemetry): S {
  const known = new Map<string, { workflow: string; createdAt: number }>();
  const remember = (s: Snapshot | undefined) => {
    if (!s) return;
    rememberRunTrace(s.instanceId, s.trace);
    if (known.has(s.instanceId)) return;
    if (known.size >= MAX_KNOWN_RUNS) known.delete(known.keys().next().value as string);
    known.set(s.instanceId, { workflow: s.workflow, createdAt: s.createdAt });
  };
  const ended = (instanceId: string, h: HistoryEntry) => {
    const status = h.type === 'run-completed' ? 'COMPLETED' : h.type === 'run-failed' ? 'FAILED' : 'CANCELLED';
    const run = known.get(instanceId);
    const workflow = run?.workflow ?? 'unknown';
    const durationMs = run ? Math.max(0, h.at - run.createdAt) : undefined;
    t.metrics.count(status === 'COMPLETED' ? 'RunsCompleted' : status === 'FAILED' ? 'RunsFailed' : 'RunsCancelled', {
      workflow,
    });
    if (durationMs !== undefined) t.metrics.observe('RunDuration', { workflow }, durationMs);
    const fields = {
      workflow,
      instanceId,
      status,
      durationMs,
      taskKey: h.key,
      error: h.error?.name,
      traceId: activeTraceId(),
    };
    if (status === 'FAILED') t.log.error('run failed', fields);
    else t.log.info(status === 'COMPLETED' ? 'run completed' : 'run cancelled', fields);
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'create') {
        return async (created: Snapshot, input: unknown, history: readonly HistoryEntry[]) => {
          // The run's root trace context (the start request's span), kept for the work the journal starts later.
          const root = traceparentOf();
          const snapshot = root === undefined ? created : { ...created, trace: root };
          await target.create(snapshot, input, history);
          remember(snapshot);
          t.metrics.count('RunsStarted', { workflow: snapshot.workflow });
          t.log.info('run started', {
            workflow: snapshot.workflow,
            instanceId: snapshot.instanceId,
            inputBytes: byteSize(input),
            traceId: activeTraceId(),
          });
        };
      }
      if (prop === 'append') {
        return async (instanceId: string, entry: JournalEntry) => {
          try {
            await target.append(instanceId, entry);
          } catch (e) {
            if (e instanceof JournalConflictError) t.metrics.count('JournalConflicts', {});
            throw e;
          }
          for (const h of entry.history) {
            if (h.type === 'run-completed' || h.type === 'run-failed' || h.type === 'cancelled') ended(instanceId, h);
          }
        };
      }
      if (prop === 'load') {
        return async (instanceId: string) => {
          const stored = await target.load(instanceId);
          remember(stored?.snapshot);
          return stored;
        };
      }
      if (prop === 'get') {
        return async (instanceId: string) => {
          const s = await target.get(instanceId);
          remember(s);
          return s;
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * The dead-letter store, counting and logging each record put: the
 * `DeadLetters` metric and one ERROR line per task given up on (a
 * malformed message found in a DLQ is logged with its pool only).
 */
export function observedDeadLetters<S extends DeadLetterStore>(store: S, t: Telemetry): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== 'put') return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: Parameters<DeadLetterStore['put']>) => {
        const r = await target.put(...args);
        const [letter] = args;
        if (r === 'exists') return r; // the same attempt again: counted and logged the first time
        if (letter.origin === 'malformed') {
          t.metrics.count('DeadLetters', { workflow: 'unknown', pool: letter.pool });
          t.log.error('malformed message dead-lettered', { pool: letter.pool, bytes: letter.body.length });
          return r;
        }
        const d = letter.dispatch;
        t.metrics.count('DeadLetters', { workflow: d.workflow, pool: d.pool });
        t.log.error('task dead-lettered', {
          workflow: d.workflow,
          instanceId: d.instanceId,
          taskKey: d.key,
          attempt: d.attempt,
          pool: d.pool,
          attempts: letter.attempts,
          origin: letter.origin,
          error: letter.error?.name,
          traceId: activeTraceId() ?? traceIdOf(d.trace),
        });
        return r;
      };
    },
  });
}

/** Size of a value as JSON, in bytes: what a log line says of a payload. */
export function byteSize(value: unknown): number | undefined {
  try {
    const json = JSON.stringify(value);
    return json === undefined ? 0 : Buffer.byteLength(json, 'utf8');
  } catch {
    return undefined;
  }
}
