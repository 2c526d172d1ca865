export type {
  HistoryEntryView,
  InstanceSummaryView,
  InstanceView,
  LaneTimerView,
  ParallelView,
  TaskView,
  WaitView,
  WorkflowView,
} from '../api/views.ts';
export { type ApiErrorCode, SayiirError } from '../errors.ts';
export {
  RunFailedError,
  RunHandle,
  RunTimeoutError,
  SayiirApiError,
  SayiirClient,
  type SayiirClientOptions,
  SayiirConnectionError,
  type StartOptions,
  type WaitOptions,
} from './client.ts';
export { retentionText } from './retention-text.ts';
