import type { AnyFlow } from '../engine/definition.ts';
import { type ApiErrorCode, SayiirError } from '../errors.ts';

/** A workflow name nobody registered. */
export class WorkflowNotFoundError extends SayiirError {
  override readonly name = 'WorkflowNotFoundError';
  override readonly httpStatus = 404;
  override readonly code: ApiErrorCode = 'workflow_not_found';
  constructor(readonly workflow: string) {
    super(`workflow '${workflow}' is not registered`);
  }
}

/**
 * The workflows a deployment serves, by name.
 *
 * @example
 * ```ts
 * const registry = new WorkflowRegistry([hello, fulfil]);
 * registry.get('hello');
 * ```
 */
export class WorkflowRegistry {
  private readonly byName = new Map<string, AnyFlow>();

  constructor(flows: readonly AnyFlow[]) {
    for (const f of flows) {
      if (this.byName.has(f.name)) throw new Error(`workflow '${f.name}' is registered twice`);
      this.byName.set(f.name, f);
    }
  }

  /** @throws {WorkflowNotFoundError} */
  get(name: string): AnyFlow {
    const f = this.byName.get(name);
    if (!f) throw new WorkflowNotFoundError(name);
    return f;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  all(): readonly AnyFlow[] {
    return [...this.byName.values()];
  }
}
