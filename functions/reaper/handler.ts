import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { reaperObserver, type Telemetry } from '../../shared/observability/observer.ts';
import { type ReaperDeps, type ReapSummary, reapFor } from '../../shared/runtime/reaper.ts';

export interface ReaperHandlerOptions {
  /** Pause between passes within one invocation. @default 5_000 */
  readonly intervalMs?: number;
  /** Stop looping when less than this much invocation time is left. @default 10_000 */
  readonly stopBeforeMs?: number;
}

/** The reaper's deps, and where its logs and metrics go. */
export interface ReaperHandlerDeps extends ReaperDeps {
  /** @default the invocation's summary to `console.log`, no metrics */
  readonly telemetry?: Telemetry;
}

/**
 * The reaper Lambda: woken by EventBridge once a minute, it loops passes
 * inside the invocation (budgeted by the remaining time) so that expired
 * claims and due timers are handled within seconds. Each pass that did
 * something is one log line; the metrics are flushed when the invocation ends.
 */
export function makeHandler(deps: ReaperHandlerDeps, options: ReaperHandlerOptions = {}) {
  const t = deps.telemetry;
  const base = async (_event: ScheduledEvent, context: Context): Promise<ReapSummary> => {
    if (!t) {
      const summary = await reapFor(deps, () => context.getRemainingTimeInMillis(), options);
      console.log(JSON.stringify({ level: 'info', msg: 'reaper pass', ...summary }));
      return summary;
    }
    t.log.addContext?.(context);
    const observe = reaperObserver({
      log: t.log.child({ function_request_id: context.awsRequestId }),
      metrics: t.metrics,
    });
    const onPass = (s: ReapSummary) => {
      observe(s);
      deps.onPass?.(s);
    };
    try {
      return await reapFor({ ...deps, onPass }, () => context.getRemainingTimeInMillis(), options);
    } finally {
      t.metrics.flush();
    }
  };
  return middy(base);
}
