import type { AnyFlow, BodyNode, Flow, StepNode } from '../engine/definition.ts';
import { FlowDefinitionError } from '../engine/errors.ts';
import type { TaskDef, TaskFn } from '../engine/task.ts';

/** Replacement implementations, by task id. */
// biome-ignore lint/suspicious/noExplicitAny: a replacement is checked by id at run time, not by type
export type TaskOverrides = Readonly<Record<string, TaskFn<any, any>>>;

/**
 * A copy of a flow in which the tasks with the given ids run another
 * function (a fake payment, a stubbed HTTP call); their options (retry,
 * timeout, schemas) and the flow's structure and hash are unchanged, so the
 * copy runs exactly like the original in `runWorkflow`. Child flows, fork
 * branches, joins, route keys, loop bodies and map items are searched too.
 *
 * @throws FlowDefinitionError when an id names no task of the flow (a typo would otherwise test nothing).
 * @example
 * ```ts
 * import { runWorkflow, withTasks } from 'sayiir-aws/testing';
 * const { output } = await runWorkflow(withTasks(fulfil, { charge: async () => ({ paid: true }) }), order);
 * ```
 */
export function withTasks<I, O>(flow: Flow<I, O>, overrides: TaskOverrides): Flow<I, O> {
  const used = new Set<string>();
  const swap = <A, B>(def: TaskDef<A, B>): TaskDef<A, B> => {
    const fn = overrides[def.id];
    if (!fn) return def;
    used.add(def.id);
    return { ...def, fn };
  };
  const body = (node: BodyNode): BodyNode =>
    node.kind === 'task' ? { ...node, task: swap(node.task) } : { ...node, flow: copy(node.flow) };
  const step = (node: StepNode): StepNode => {
    switch (node.kind) {
      case 'task':
        return { ...node, task: swap(node.task) };
      case 'fork':
        return { ...node, branches: node.branches.map(body), join: swap(node.join) };
      case 'route':
        return {
          ...node,
          keyTask: swap(node.keyTask),
          branches: node.branches.map((b) => ({ ...b, body: body(b.body) })),
          ...(node.fallback ? { fallback: body(node.fallback) } : {}),
        };
      case 'loop':
        return { ...node, body: swap(node.body) };
      case 'map':
        return { ...node, items: swap(node.items), body: body(node.body) };
      case 'child':
        return { ...node, flow: copy(node.flow) };
      default:
        return node;
    }
  };
  const copy = <F extends AnyFlow>(f: F): F => ({ ...f, steps: f.steps.map(step) });
  const result = copy(flow);
  const unknown = Object.keys(overrides).filter((id) => !used.has(id));
  if (unknown.length > 0) {
    throw new FlowDefinitionError(flow.name, `withTasks: no task ${unknown.map((id) => `'${id}'`).join(', ')} in it`);
  }
  return result;
}
