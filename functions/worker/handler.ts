import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DispatchParseError } from '../../shared/adapters/sqs/errors.ts';
import { parseDispatchRecord } from '../../shared/adapters/sqs/message.ts';
import { ensureError } from '../../shared/engine/errors.ts';
import type { Log } from '../../shared/observability/log.ts';
import { noTelemetry, type Telemetry, taskObserver } from '../../shared/observability/observer.ts';
import { processDispatch, type TaskReport, type WorkerDeps, WorkerKilledError } from '../../shared/runtime/worker.ts';

/** The worker's deps, and where its logs and metrics go. */
export interface WorkerHandlerDeps extends WorkerDeps {
  /** @default no logs, no metrics */
  readonly telemetry?: Telemetry;
}

/**
 * The worker Lambda for one pool: SQS batch in, partial batch failures out.
 * A record fails (and comes back after its visibility timeout) only when it
 * could not be processed for a transient reason; a malformed message is
 * logged and dropped, since redelivering it cannot help.
 *
 * Each invocation logs one line per task outcome (with its Lambda request
 * id), and flushes its metrics when it ends: task counts and timings, tasks
 * in flight, and the share of the invocation spent in task code
 * (`WorkerUtilization`).
 */
export function makeHandler(deps: WorkerHandlerDeps) {
  const t = deps.telemetry ?? noTelemetry;
  let inFlight = 0;
  const base = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const startedAt = Date.now();
    t.log.addContext?.(context);
    const log = t.log.child({ function_request_id: context.awsRequestId });
    let busyMs = 0;
    const observe = taskObserver({ log, metrics: t.metrics });
    const onTask = (r: TaskReport) => {
      busyMs += r.timing?.durationMs ?? 0;
      observe(r);
      deps.onTask?.(r);
    };
    const scoped: WorkerDeps = { ...deps, onTask };
    const remaining = () => context.getRemainingTimeInMillis();
    const settled = await Promise.allSettled(
      event.Records.map(async (record) => {
        t.metrics.gauge('TasksInFlight', { pool: deps.pool }, ++inFlight);
        try {
          return await handleRecord(scoped, record, remaining, log);
        } finally {
          t.metrics.gauge('TasksInFlight', { pool: deps.pool }, --inFlight);
        }
      }),
    );
    if (event.Records.length > 0) {
      const wallMs = Math.max(1, Date.now() - startedAt);
      t.metrics.gauge('WorkerUtilization', { pool: deps.pool }, Math.min(100, (100 * busyMs) / wallMs));
    }
    t.metrics.flush();
    // A killed worker (fault injection) takes the whole invocation down, once its records have stopped.
    const killed = settled.find((r) => r.status === 'rejected');
    if (killed?.status === 'rejected') throw killed.reason;
    const ids = settled.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
    return { batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) };
  };
  return middy(base);
}

async function handleRecord(
  deps: WorkerDeps,
  record: SQSRecord,
  remaining: () => number,
  log: Log,
): Promise<string | undefined> {
  try {
    const dispatch = parseDispatchRecord(record);
    await processDispatch(deps, dispatch, remaining);
    return undefined;
  } catch (e) {
    // A killed worker takes its whole invocation down, as a crashed Lambda does.
    if (e instanceof WorkerKilledError) throw e;
    if (e instanceof DispatchParseError) {
      log.error('malformed dispatch dropped', {
        messageId: record.messageId,
        error: e.reason,
        bodyBytes: Buffer.byteLength(record.body, 'utf8'),
        pool: deps.pool,
      });
      return undefined;
    }
    log.warn('dispatch will be redelivered', {
      messageId: record.messageId,
      error: ensureError(e).message,
      pool: deps.pool,
    });
    return record.messageId;
  }
}
