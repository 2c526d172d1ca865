import { type CompiledNode, taskOf } from './compile.ts';
import { DEFAULT_POOL } from './describe.ts';
import type { Effect, Snapshot, TaskActivity } from './snapshot.ts';

/** The dispatch effect of a task in state `dispatched`. Pure. */
export function dispatchEffect(
  node: CompiledNode,
  run: Pick<Snapshot, 'instanceId' | 'workflow'>,
  key: string,
  t: TaskActivity,
): Extract<Effect, { type: 'dispatch' }> {
  const def = taskOf(node);
  return {
    type: 'dispatch',
    dispatch: {
      instanceId: run.instanceId,
      workflow: run.workflow,
      key,
      qid: t.qid,
      input: t.input,
      attempt: t.attempt,
      gen: t.gen ?? 1,
      priority: def.options.priority ?? 'normal',
      pool: def.options.pool ?? DEFAULT_POOL,
    },
  };
}
