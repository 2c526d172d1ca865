/**
 * Testing helpers: run a workflow in-process on memory adapters (the same
 * worker and reaper code as on Lambda), move time yourself, run one task with
 * a fake context, swap a task's implementation by id.
 *
 * @example
 * ```ts
 * import { runTask, runWorkflow, withTasks } from 'sayiir-aws/testing';
 * const { output } = await runWorkflow(withTasks(fulfil, { charge: async () => ({ paid: true }) }), order);
 * ```
 */

export { FakeClock } from '../adapters/memory/clock.ts';
export { MemoryDeadLetterStore } from '../adapters/memory/dead-letter-store.ts';
export { MemoryInstanceStore } from '../adapters/memory/instance-store.ts';
export { MemorySecrets } from '../adapters/memory/secrets.ts';
export type {
  CheckpointPhase,
  RunOptions,
  RunResult,
  SignalSendOptions,
  WorkflowHandle,
} from '../runner/in-process.ts';
export { RunnerCrashedError, resumeWorkflow, runWorkflow, startWorkflow } from '../runner/in-process.ts';
export { fakeTaskContext, type RunTaskOptions, runTask } from './run-task.ts';
export { type TaskOverrides, withTasks } from './with-tasks.ts';
