import middy, { type MiddyfiedHandler } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { type ApiDeps, makeApi } from '../../shared/api/api.ts';
import { ensureError } from '../../shared/engine/errors.ts';
import type { Telemetry } from '../../shared/observability/observer.ts';
import { httpErrors } from '../middy.ts';

/** The API Lambda: the transport-free API behind the shared HTTP error middleware. */
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
  const logger = t
    ? (error: unknown) => {
        const e = ensureError(error);
        t.log.error('request failed', { error: e.name, message: e.message });
      }
    : undefined;
  const flush = async () => t?.metrics.flush();
  const withContext = async (request: { context: Context }) => t?.log.addContext?.(request.context);
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(makeApi(deps))
    .use({ before: withContext, after: flush, onError: flush })
    .use(httpErrors(logger ? { logger } : {}));
}
