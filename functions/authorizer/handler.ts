import type { APIGatewayRequestAuthorizerEventV2, APIGatewaySimpleAuthorizerResult } from 'aws-lambda';

/**
 * The HTTP API's Lambda REQUEST authorizer: a gate, not the check.
 *
 * API Gateway answers 401 by itself when the identity source
 * (`$request.header.x-api-key`) is missing or empty, without invoking this
 * function; this function only refuses a header too long to be a key. The
 * comparison against the keys in Secrets Manager (constant time, cached) is
 * done by the api function, the only one allowed to read that secret, so the
 * secret and the comparison live in one place.
 *
 * No AWS SDK, no secret, no I/O: the authorizer's role can do nothing but log.
 */

/** Longest `x-api-key` value let through to the api function. */
export const MAX_API_KEY_LENGTH = 512;

/**
 * @example
 * ```ts
 * await handler({ headers: { 'x-api-key': 'k' } } as APIGatewayRequestAuthorizerEventV2); // { isAuthorized: true }
 * ```
 */
export async function handler(event: APIGatewayRequestAuthorizerEventV2): Promise<APIGatewaySimpleAuthorizerResult> {
  // HTTP API (payload 2.0) lowercases header names.
  const key = event.headers?.['x-api-key'];
  return { isAuthorized: typeof key === 'string' && key.trim().length > 0 && key.length <= MAX_API_KEY_LENGTH };
}
