/**
 * Sayiir for AWS: the public API for workflow authors.
 *
 * @example
 * ```ts
 * import { flow, task, branch, runWorkflow } from 'sayiir-aws';
 * ```
 */

export { FakeClock, systemClock } from './adapters/memory/clock.ts';
export { MemoryDeadLetterStore } from './adapters/memory/dead-letter-store.ts';
export { MemoryInstanceStore } from './adapters/memory/instance-store.ts';
export { MemorySecrets } from './adapters/memory/secrets.ts';
export type { Body, BranchDef, LoopOptions, MapOptions, RouteOptions, SignalOptions } from './engine/builder.ts';
export { branch, FlowBuilder, ForkBuilder, flow, RouteBuilder } from './engine/builder.ts';
export type { AnyFlow, Flow, FlowOptions } from './engine/definition.ts';
export type { FlowJson } from './engine/describe.ts';
export { describeFlow } from './engine/describe.ts';
export type { Duration } from './engine/duration.ts';
export { toMillis } from './engine/duration.ts';
export {
  DefinitionMismatchError,
  DurationFormatError,
  ensureError,
  FlowDefinitionError,
  TaskSchemaError,
  TaskTimeoutError,
  TerminalError,
} from './engine/errors.ts';
export type { RetryPolicy } from './engine/retry.ts';
export type { RunError, RunStatus, Snapshot } from './engine/snapshot.ts';
export type { Priority, Schema, TaskContext, TaskDef, TaskFn, TaskOptions } from './engine/task.ts';
export { LoopResult, task } from './engine/task.ts';
export { type ApiErrorCode, SayiirError } from './errors.ts';
export type { DeadLetter, DeadLetterStore } from './ports/dead-letter-store.ts';
export type { CheckpointPhase, RunOptions, RunResult, SignalSendOptions, WorkflowHandle } from './runner/in-process.ts';
export { RunnerCrashedError, resumeWorkflow, runWorkflow, startWorkflow } from './runner/in-process.ts';
export { type LetterState, letterState } from './runtime/dead-letters.ts';
export { SignalBufferFullError } from './runtime/instances.ts';
