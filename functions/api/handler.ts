import middy, { type MiddyfiedHandler } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { type ApiDeps, makeApi, makeApiCore } from '../../shared/api/api.ts';
import type { ApiRequestHandler } from '../../shared/api/request.ts';
import { ensureError } from '../../shared/engine/errors.ts';
import type { Telemetry } from '../../shared/observability/observer.ts';
import { answerError, httpErrors } from '../middy.ts';

/** The API Lambda: the transport-free API core behind the HTTP API event adapter and the shared HTTP error middleware. */
export type ApiHandler = MiddyfiedHandler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;

/** The API's deps, and where its logs and metrics go. */
export interface ApiHandlerDeps extends ApiDeps {
  /** @default errors to `console.error`, no metrics */
  readonly telemetry?: Telemetry;
}

/**
 * Builds the API Lambda handler over the given deps (tests pass in-memory
 * adapters). With telemetry, a request that fails with a 5xx is one error
 * line (the error's name and message, never the request), and the metrics
 * of the request (runs started, cancelled…) are flushed as it ends.
 *
 * @example
 * ```ts
 * const handler = makeHandler({ store, queue, registry, secrets, clock: systemClock });
 * await handler(event, context);
 * ```
 */
export function makeHandler(deps: ApiHandlerDeps): ApiHandler {
  const t = deps.telemetry;
  const logger = failureLogger(t);
  const flush = async () => t?.metrics.flush();
  const withContext = async (request: { context: Context }) => t?.log.addContext?.(request.context);
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(makeApi(deps))
    .use({ before: withContext, after: flush, onError: flush })
    .use(httpErrors(logger ? { logger } : {}));
}

/**
 * The same API as {@link makeHandler}, without Lambda: a transport-neutral
 * request in, a response out, for a server that is not API Gateway (the
 * local stack's gateway). A thrown error is answered as on Lambda (a generic
 * 500, logged), and the request's metrics are flushed as it ends.
 *
 * @example
 * ```ts
 * await startHttpGateway({ handler: makeRequestHandler({ store, queue, registry, secrets, clock, telemetry }) });
 * ```
 */
export function makeRequestHandler(deps: ApiHandlerDeps): ApiRequestHandler {
  const t = deps.telemetry;
  const core = makeApiCore(deps);
  const log = failureLogger(t) ?? ((error: unknown) => console.error(error));
  return async function serveApiRequest(request) {
    try {
      return await core(request);
    } catch (error) {
      return answerError(error, log);
    } finally {
      await t?.metrics.flush();
    }
  };
}

/** With telemetry, a failure is one error line: the error's name and message, never the request. */
function failureLogger(t: Telemetry | undefined): ((error: unknown) => void) | undefined {
  if (!t) return undefined;
  return (error: unknown) => {
    const e = ensureError(error);
    t.log.error('request failed', { error: e.name, message: e.message });
  };
}
