import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { type ReaperDeps, type ReapSummary, reapFor } from '../../shared/runtime/reaper.ts';

export interface ReaperHandlerOptions {
  /** Pause between passes within one invocation. @default 5_000 */
  readonly intervalMs?: number;
  /** Stop looping when less than this much invocation time is left. @default 10_000 */
  readonly stopBeforeMs?: number;
}

/**
 * The reaper Lambda: woken by EventBridge once a minute, it loops passes
 * inside the invocation (budgeted by the remaining time) so that expired
 * claims and due timers are handled within seconds.
 */
export function makeHandler(deps: ReaperDeps, options: ReaperHandlerOptions = {}) {
  const base = async (_event: ScheduledEvent, context: Context): Promise<ReapSummary> => {
    const summary = await reapFor(deps, () => context.getRemainingTimeInMillis(), options);
    console.log(JSON.stringify({ level: 'info', msg: 'reaper pass', ...summary }));
    return summary;
  };
  return middy(base);
}
