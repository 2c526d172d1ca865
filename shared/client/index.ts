export type { ApiErrorCode } from '../api/errors.ts';
export type {
  HistoryEntryView,
  InstanceSummaryView,
  InstanceView,
  TaskView,
  WaitView,
  WorkflowView,
} from '../api/views.ts';
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
