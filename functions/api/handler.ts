import middy, { type MiddyfiedHandler } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type ApiDeps, makeApi } from '../../shared/api/api.ts';
import { httpErrors } from '../middy.ts';

/** The API Lambda: the transport-free API behind the shared HTTP error middleware. */
export type ApiHandler = MiddyfiedHandler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;

/**
 * Builds the API Lambda handler over the given deps (tests pass in-memory
 * adapters).
 *
 * @example
 * ```ts
 * const handler = makeHandler({ store, queue, registry, secrets, clock: systemClock });
 * await handler(event, context);
 * ```
 */
export function makeHandler(deps: ApiDeps): ApiHandler {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(makeApi(deps)).use(httpErrors());
}
