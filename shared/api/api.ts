import type { ClaimStore } from '../ports/claim-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { DeadLetterStore } from '../ports/dead-letter-store.ts';
import type { InstanceStore } from '../ports/instance-store.ts';
import type { Secrets } from '../ports/secrets.ts';
import type { TaskQueue } from '../ports/task-queue.ts';
import type { Retention } from '../runtime/defaults.ts';
import type { WorkflowRegistry } from '../runtime/registry.ts';
import { ApiKeyAuthorizer, DEFAULT_API_KEY_SECRET, roleAllows } from './auth.ts';
import { errorResponse, HttpError, toHttpError } from './errors.ts';
import { assertJsonBody, bodyWithin, headerValue, routedPath } from './http.ts';
import { type HttpApiEventHandler, overHttpApiEvents } from './http-api-event.ts';
import type { ApiRequestHandler } from './request.ts';
import { apiRouter } from './routes.ts';

/**
 * Default request body limit: 5.5 MiB. Lambda takes at most 6 MB in a
 * synchronous invocation's event (and returns at most 6 MB), and API
 * Gateway's HTTP API 10 MB; this leaves the event's envelope room, so a
 * 5 MB run input or signal payload comes through in one request. Values
 * over the offload threshold are stored in the payload bucket, not in items.
 */
export const DEFAULT_MAX_BODY_BYTES = 5.5 * 1024 * 1024;

/** What the HTTP API needs: ports, the workflows it serves, and a few limits. */
export interface ApiDeps {
  readonly store: InstanceStore;
  readonly queue: TaskQueue;
  readonly registry: WorkflowRegistry;
  readonly secrets: Secrets;
  readonly clock: Clock;
  /**
   * Secret holding the valid API keys: a JSON array of strings, or one string.
   * @default 'sayiir/api-keys'
   */
  readonly apiKeySecretName?: string;
  /**
   * Largest accepted request body, in bytes (after base64 decoding).
   * @default DEFAULT_MAX_BODY_BYTES (5.5 MiB)
   */
  readonly maxBodyBytes?: number;
  /**
   * Ids of new instances (when the client gives none) and of signal deliveries.
   * @default crypto.randomUUID
   */
  readonly newId?: () => string;
  /**
   * How long a dispatched task may stay unclaimed before the reaper sends it
   * again (stored per instance at its start). The local stack shortens it,
   * since its queues do not survive a restart.
   * @default 30_000
   */
  readonly redispatchAfterMs?: number;
  /**
   * How long a finished run's records are kept before the reaper purges
   * them (stored per instance at its start): milliseconds, or `'forever'`.
   * @default RETENTION_DEFAULT_MS (90 days)
   */
  readonly retention?: Retention;
  /** Claims, revoked on cancel so that running tasks see their AbortSignal. @default none: cancel stops dispatching only */
  readonly claims?: ClaimStore;
  /** The dead-letter store, for `/v1/dlq`. @default none: those routes answer 404 */
  readonly deadLetters?: DeadLetterStore;
}

/** The API as Lambda serves it: one HTTP API (payload 2.0) event in, one structured result out. */
export type Api = HttpApiEventHandler;

/**
 * Builds the HTTP API over its ports, behind the HTTP API event adapter
 * (see {@link makeApiCore} for what it answers): what `functions/api` wraps
 * for Lambda, and what tests call with hand-built events.
 *
 * @example
 * ```ts
 * const api = makeApi({ store, queue, registry: new WorkflowRegistry(workflows), secrets, clock: systemClock });
 * const res = await api(event); // { statusCode: 201, body: '{"instanceId":...}' }
 * ```
 */
export function makeApi(deps: ApiDeps): Api {
  return overHttpApiEvents(makeApiCore(deps));
}

/**
 * Builds the transport-free core of the HTTP API: an {@link ApiRequest} in,
 * an {@link ApiResponse} out. Each transport puts its adapter in front
 * ({@link makeApi} for Lambda, the local gateway for a Node server).
 *
 * Every request needs a valid `x-api-key` (checked before anything else);
 * then it is routed (one trailing slash ignored; a known path with another
 * method is a 405 with `allow`), the caller's role checked, its body size
 * and type checked, and handled. Client errors come back as
 * `{ error: { code, message } }` with a 4xx status. An unexpected error (a
 * store outage, a missing key secret) is thrown: the transport turns it into
 * a generic 500 and logs it.
 *
 * @example
 * ```ts
 * const handle = makeApiCore(deps);
 * const res = await handle({ method: 'GET', path: '/v1/workflows', query: {}, headers: { 'x-api-key': key } });
 * // { status: 200, headers: { 'content-type': 'application/json', … }, body: '{"items":[…]}' }
 * ```
 */
export function makeApiCore(deps: ApiDeps): ApiRequestHandler {
  const auth = new ApiKeyAuthorizer(deps.secrets, deps.clock, deps.apiKeySecretName ?? DEFAULT_API_KEY_SECRET);
  const router = apiRouter();
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const shared = {
    store: deps.store,
    queue: deps.queue,
    registry: deps.registry,
    clock: deps.clock,
    newId: deps.newId ?? (() => globalThis.crypto.randomUUID()),
    redispatchAfterMs: deps.redispatchAfterMs,
    retention: deps.retention,
    claims: deps.claims,
    deadLetters: deps.deadLetters,
  };

  return async function handleApiRequest(request) {
    try {
      const caller = await auth.verify(headerValue(request, 'x-api-key'));
      if (!caller) throw new HttpError(401, 'unauthorized', 'missing or invalid API key (header x-api-key)');
      const method = request.method;
      const path = routedPath(request.path);
      const match = router.match(method, path);
      if (match.kind === 'not-found') {
        throw new HttpError(404, 'route_not_found', `no route for ${method} ${path}`);
      }
      if (match.kind === 'method-not-allowed') {
        throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${path}`, {
          allow: match.allow.join(', '),
        });
      }
      const { handler, role } = match.handler;
      if (!roleAllows(caller.role, role)) {
        throw new HttpError(
          403,
          'forbidden',
          `key '${caller.name}' has role '${caller.role}'; ${method} ${path} needs '${role}'`,
        );
      }
      const body = bodyWithin(request.body, maxBodyBytes);
      assertJsonBody(headerValue(request, 'content-type'), body);
      return await handler(
        { ...shared, caller },
        {
          params: match.params,
          query: request.query,
          body,
          header: (name) => headerValue(request, name),
        },
      );
    } catch (e) {
      const http = toHttpError(e);
      if (http) return errorResponse(http);
      throw e;
    }
  };
}
