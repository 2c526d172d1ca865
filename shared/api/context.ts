import type { AnyFlow } from '../engine/definition.ts';
import type { Snapshot } from '../engine/snapshot.ts';
import type { ClaimStore } from '../ports/claim-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeadLetterStore } from '../ports/dead-letter-store.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import type { Retention } from '../runtime/defaults.ts';
import { assertSameDefinition, readRun } from '../runtime/instances.ts';
import { WorkflowNotFoundError, type WorkflowRegistry } from '../runtime/registry.ts';
import { type Caller, callerSees, type Role } from './auth.ts';
import { HttpError } from './errors.ts';
import type { ApiResponse } from './request.ts';
import type { RouteParams } from './router.ts';

/**
 * What every route module shares: the context and request a handler gets,
 * and the lookups that check an id, the caller's scope and the flow of a
 * stored run. The route modules import this one, never each other.
 */

/** What a route handler works with. */
export interface RouteContext {
  readonly store: InstanceStore;
  readonly queue: TaskQueue;
  readonly registry: WorkflowRegistry;
  readonly clock: Clock;
  readonly newId: () => string;
  /** See `Snapshot.redispatchAfterMs`; `undefined` keeps the engine's default. */
  readonly redispatchAfterMs: number | undefined;
  /** How long a finished run is kept (stored per instance at its start); `undefined`: `RETENTION_DEFAULT_MS`. */
  readonly retention: Retention | undefined;
  /** To revoke the claims of running tasks on cancel (they see their AbortSignal at the next heartbeat). */
  readonly claims: ClaimStore | undefined;
  /** The dead-letter store, for `/v1/dlq`. */
  readonly deadLetters: DeadLetterStore | undefined;
  /** Who is calling: its role was checked against the route's; its workflow scope is checked by the handler. */
  readonly caller: Caller;
}

/** One request, as a route handler sees it (authenticated, routed, body within limits). */
export interface RouteRequest {
  readonly params: RouteParams;
  readonly query: Readonly<Record<string, string | undefined>>;
  /** Decoded body text, `undefined` when there is none. */
  readonly body: string | undefined;
  /** A request header by name, in any case. */
  header(name: string): string | undefined;
}

/** A route's handler: the response to send (a client error may be thrown as an `HttpError` instead). */
export type RouteHandler = (ctx: RouteContext, req: RouteRequest) => Promise<ApiResponse>;

/** A route: its handler and the least role that may call it. */
export interface Route {
  readonly handler: RouteHandler;
  readonly role: Role;
}

/** Client-supplied instance ids (also not `.` or `..`, which no URL path can address: see {@link isInstanceId}). */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** What an instance id must be, as the API says it. */
export const INSTANCE_ID_RULE = "instanceId: must be 1-128 letters, digits, '_', '.', ':' or '-', and not '.' or '..'";

/**
 * Whether a string can be an instance id: {@link INSTANCE_ID_PATTERN}, and
 * not a dot segment (`.` and `..` are resolved away by clients and proxies,
 * so a run with such an id could never be addressed again).
 */
export function isInstanceId(value: string): boolean {
  return INSTANCE_ID_PATTERN.test(value) && value !== '.' && value !== '..';
}

/**
 * The instance's current state (its journal folded in), or a 404; a 400
 * for an id no instance can have (so the store never sees one over its
 * key limits).
 */
export async function instanceOr404(ctx: RouteContext, instanceId: string): Promise<Snapshot> {
  if (!isInstanceId(instanceId)) throw new HttpError(400, 'invalid_request', INSTANCE_ID_RULE);
  const snapshot = await readRun(ctx.store, ctx.registry, instanceId);
  // A run of a workflow outside the caller's scope is, to that caller, no run at all.
  if (!snapshot || !callerSees(ctx.caller, snapshot.workflow)) {
    throw new HttpError(404, 'instance_not_found', `instance '${instanceId}' not found`);
  }
  return snapshot;
}

/** A registered workflow the caller may see, or a 404 (the same as for an unknown one). */
export function workflowOr404(ctx: RouteContext, name: string): AnyFlow {
  if (!callerSees(ctx.caller, name)) throw new WorkflowNotFoundError(name);
  return ctx.registry.get(name);
}

/** The history's actor and the control calls' `actor` option: the caller's key name. */
export const actorOf = (ctx: RouteContext) => ({ actor: ctx.caller.name });

/** The flow that drives a stored instance; it must still be registered, with the same structure. */
export function flowOf(ctx: RouteContext, snapshot: Snapshot): AnyFlow {
  if (!ctx.registry.has(snapshot.workflow)) {
    throw new HttpError(
      404,
      'workflow_not_found',
      `instance '${snapshot.instanceId}' belongs to workflow '${snapshot.workflow}', which is no longer registered`,
    );
  }
  const flow = ctx.registry.get(snapshot.workflow);
  assertSameDefinition(flow, snapshot);
  return flow;
}
