import { createHash } from 'node:crypto';
import type { BodyNode, StepNode } from './definition.ts';

/**
 * The part of a flow a stored run depends on: what {@link hashSteps} hashes.
 *
 * Built field by field from the step tree, never from the API view
 * (`describeFlow`), so the view can grow without touching any hash. A task
 * appears as the id it runs under (its node's id, which is what task keys are
 * made of); its function and options are never read.
 */
export type StructureTask = { readonly id: string };

export type StructureBody = { readonly task: StructureTask } | { readonly flow: DefinitionStructure };

export type StructureStep =
  | { readonly kind: 'task'; readonly id: string; readonly task: StructureTask }
  | {
      readonly kind: 'fork';
      readonly id: string;
      readonly branches: readonly StructureBody[];
      readonly join: StructureTask;
    }
  | { readonly kind: 'delay'; readonly id: string }
  | { readonly kind: 'signal'; readonly id: string; readonly signal: string }
  | {
      readonly kind: 'route';
      readonly id: string;
      readonly keyTask: StructureTask;
      readonly keys: readonly string[];
      readonly branches: readonly { readonly key: string; readonly body: StructureBody }[];
      readonly fallback: StructureBody | null;
    }
  | { readonly kind: 'loop'; readonly id: string; readonly body: StructureTask }
  | { readonly kind: 'child'; readonly id: string; readonly flow: DefinitionStructure }
  | { readonly kind: 'map'; readonly id: string; readonly items: StructureTask; readonly body: StructureBody };

export interface DefinitionStructure {
  readonly name: string;
  readonly steps: readonly StructureStep[];
}

// The shapes below (key names, `{ id }` for a task, `fallback: null`) are the
// ones the hash has always been computed over: keep them, or every stored
// run's hash changes.

const taskRef = (id: string): StructureTask => ({ id });

function bodyStructure(b: BodyNode): StructureBody {
  return b.kind === 'task' ? { task: taskRef(b.id) } : { flow: definitionStructure(b.flow.name, b.flow.steps) };
}

function stepStructure(s: StepNode): StructureStep {
  switch (s.kind) {
    case 'task':
      return { kind: 'task', id: s.id, task: taskRef(s.id) };
    case 'fork':
      return { kind: 'fork', id: s.id, branches: s.branches.map(bodyStructure), join: taskRef(s.id) };
    case 'delay':
      return { kind: 'delay', id: s.id };
    case 'signal':
      return { kind: 'signal', id: s.id, signal: s.signal };
    case 'route':
      return {
        kind: 'route',
        id: s.id,
        keyTask: taskRef(s.id),
        keys: [...s.keys],
        branches: s.branches.map((b) => ({ key: b.key, body: bodyStructure(b.body) })),
        fallback: s.fallback ? bodyStructure(s.fallback) : null,
      };
    case 'loop':
      return { kind: 'loop', id: s.id, body: taskRef(s.id) };
    case 'child':
      return { kind: 'child', id: s.id, flow: definitionStructure(s.flow.name, s.flow.steps) };
    case 'map':
      return { kind: 'map', id: s.id, items: taskRef(s.id), body: bodyStructure(s.body) };
    default: {
      // A new step kind must decide here what of it is structure.
      const unknown: never = s;
      throw new Error(`no definition structure for step kind ${JSON.stringify((unknown as StepNode).kind)}`);
    }
  }
}

/**
 * The structure of a flow: the allowlisted fields {@link hashSteps} hashes.
 *
 * @example
 * ```ts
 * definitionStructure(hello.name, hello.steps);
 * // { name: 'hello', steps: [{ kind: 'task', id: 'greet', task: { id: 'greet' } }] }
 * ```
 */
export function definitionStructure(name: string, steps: readonly StepNode[]): DefinitionStructure {
  return { name, steps: steps.map(stepStructure) };
}

/** Canonical JSON: object keys sorted, so equal structures give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The definition hash of a flow: the first 16 hex digits of the sha-256 of
 * the canonical JSON of {@link definitionStructure}. A stored run resumes
 * only under a flow of the same hash (`DefinitionMismatchError` otherwise).
 *
 * The rule: the hash reads an explicit allowlist of the step tree, and
 * nothing else.
 *
 * - Counted (structure): the flow name; each step's kind and id, in order;
 *   the id each task runs under; fork branches (their ids, in order, and
 *   their bodies); the signal name a wait listens for; route keys (in
 *   order), route branches (key and body, in order) and the default branch;
 *   loop, map and child step ids; map bodies; child and body flows,
 *   recursively (name and steps).
 * - Not counted (tuning, can change under running instances): task retry
 *   policies, timeouts, priorities, pools and input/output schemas; delay
 *   durations; signal timeouts and `onTimeout`; loop `maxIterations` and
 *   `onMax`; map `maxConcurrency`; flow options (description, deadline,
 *   input schema); task functions.
 * - Not read at all: the API view (`describeFlow`, `workflowView`). A field
 *   added there, or to a step node, changes no hash; a field that must count
 *   is added to {@link definitionStructure} on purpose, knowing it changes
 *   the hash of every flow that has it.
 *
 * @example
 * ```ts
 * const f = flow<number>('f').then('inc', (n) => n + 1).build();
 * hashSteps(f.name, f.steps) === f.hash; // true: the builder stores it
 * ```
 */
export function hashSteps(name: string, steps: readonly StepNode[]): string {
  return createHash('sha256')
    .update(canonicalJson(definitionStructure(name, steps)))
    .digest('hex')
    .slice(0, 16);
}
