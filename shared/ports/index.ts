export type { Claim, ClaimStore } from './claim-store.ts';
export type { Clock } from './clock.ts';
export * from './errors.ts';
export type { InstanceStore, InstanceSummary, LaneRetry, LaneTimer, ListPage, ListQuery } from './instance-store.ts';
export type { Secrets } from './secrets.ts';
export type { TaskQueue } from './task-queue.ts';
export type { DueInstance, TimerIndex } from './timers.ts';
