import type { Duration } from './duration.ts';
import type { Schema, TaskDef } from './task.ts';

/**
 * The definition of a flow: a tree of steps holding task functions. The
 * builder produces it; {@link compileFlow} turns it into the continuation
 * graph the reducer walks; {@link describeFlow} into plain JSON.
 */

/** What runs in a branch, a map item or a route branch: one task, or a whole flow. */
export type BodyNode =
  | { readonly kind: 'task'; readonly id: string; readonly task: TaskDef<unknown, unknown> }
  | { readonly kind: 'flow'; readonly id: string; readonly flow: AnyFlow };

export type StepNode =
  | { readonly kind: 'task'; readonly id: string; readonly task: TaskDef<unknown, unknown> }
  | {
      readonly kind: 'fork';
      /** The join's id. */
      readonly id: string;
      readonly branches: readonly BodyNode[];
      readonly join: TaskDef<unknown, unknown>;
    }
  | { readonly kind: 'delay'; readonly id: string; readonly ms: number }
  | {
      readonly kind: 'signal';
      readonly id: string;
      readonly signal: string;
      readonly timeoutMs?: number;
      readonly onTimeout: 'fail' | 'continue';
    }
  | {
      readonly kind: 'route';
      readonly id: string;
      /** Runs as a task whose output is the chosen key. */
      readonly keyTask: TaskDef<unknown, unknown>;
      readonly keys: readonly string[];
      readonly branches: readonly { readonly key: string; readonly body: BodyNode }[];
      readonly fallback?: BodyNode;
    }
  | {
      readonly kind: 'loop';
      readonly id: string;
      readonly body: TaskDef<unknown, unknown>;
      readonly maxIterations: number;
      readonly onMax: 'fail' | 'exit';
    }
  | { readonly kind: 'child'; readonly id: string; readonly flow: AnyFlow }
  | {
      readonly kind: 'map';
      readonly id: string;
      /** Runs as a task whose output is the array of items. */
      readonly items: TaskDef<unknown, unknown>;
      readonly body: BodyNode;
      readonly maxConcurrency: number;
    };

/** Options of a flow. */
export interface FlowOptions<I> {
  /** Validates the run input when an instance is started (HTTP 400 on failure). */
  readonly input?: Schema<I>;
  /** Free text shown in listings. */
  readonly description?: string;
  /** A run still unfinished this long after its start fails with `DeadlineExceededError`. @default none */
  readonly deadline?: Duration;
  /**
   * Signals of one name held for the run before anything waits for them;
   * one more is refused (HTTP 429) until the run consumes some. Keeps a run
   * that is sent signals it does not wait for small and controllable.
   * @default DEFAULT_SIGNAL_BUFFER (100)
   */
  readonly signalBuffer?: number;
  /**
   * How long this workflow's finished runs are kept before the reaper purges
   * them, or `'forever'`: overrides the deployment's retention (the
   * construct's `retention`, `RETENTION_DEFAULT_MS` by default) for this
   * workflow. At least one minute.
   * @default the deployment's
   */
  readonly retention?: Duration | 'forever';
}

/** Default of {@link FlowOptions.signalBuffer}. */
export const DEFAULT_SIGNAL_BUFFER = 100;

/**
 * A built flow. `I` is its input type and `O` its output type; both exist
 * only for the type checker.
 */
export interface Flow<I, O> {
  readonly kind: 'flow';
  readonly name: string;
  readonly steps: readonly StepNode[];
  readonly options: FlowOptions<I>;
  /** Stable hash of the structure: same structure, same hash. */
  readonly hash: string;
  /** @internal phantom types */
  readonly __io?: { readonly in: (input: I) => void; readonly out: O };
}

// biome-ignore lint/suspicious/noExplicitAny: a flow of any input and output
export type AnyFlow = Flow<any, any>;

export function isFlow(value: unknown): value is AnyFlow {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'flow';
}
