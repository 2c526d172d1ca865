import type middy from '@middy/core';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { errorResponse, toHttpError } from '../shared/api/errors.ts';
import { httpApiResultOf } from '../shared/api/http-api-event.ts';
import type { ApiResponse } from '../shared/api/request.ts';
import { startTracingFromEnv, tracingConfigured } from '../shared/observability/otlp.ts';

/**
 * The middy stacks shared by the Lambda handlers, and the lazy construction
 * of a handler's default dependencies.
 */

/** Options of {@link httpErrors}. */
export interface HttpErrorsOptions {
  /**
   * Where errors that become a 5xx are reported (4xx are the client's and
   * are not logged).
   * @default console.error
   */
  readonly logger?: (error: unknown) => void;
}

/**
 * Turns a thrown error into an HTTP response: an {@link HttpError} with a 4xx
 * status, or a Sayiir error whose class declares one, shows its code and
 * message; anything else becomes a 500 (or the HttpError's 5xx) with a
 * generic message, and is logged.
 *
 * @example
 * ```ts
 * export const handler = middy(api).use(httpErrors());
 * ```
 */
export function httpErrors(
  options: HttpErrorsOptions = {},
): middy.MiddlewareObj<unknown, APIGatewayProxyStructuredResultV2> {
  const log = options.logger ?? ((error: unknown) => console.error(error));
  const httpErrorsOnError: middy.MiddlewareFn<unknown, APIGatewayProxyStructuredResultV2> = async (request) => {
    // An earlier onError middleware already answered.
    if (request.response !== undefined && request.response !== null) return;
    request.response = httpApiResultOf(answerError(request.error, log));
  };
  return { onError: httpErrorsOnError };
}

/**
 * The response for a thrown error (see `errorResponse`), logging it when it
 * becomes a 5xx: the rule of {@link httpErrors}, for a transport without
 * middy (the local gateway).
 *
 * @example
 * ```ts
 * try { return await core(request); } catch (e) { return answerError(e, console.error); }
 * ```
 */
export function answerError(error: unknown, log: (error: unknown) => void): ApiResponse {
  const http = toHttpError(error);
  const clientError = http !== undefined && http.statusCode >= 400 && http.statusCode < 500;
  if (!clientError) log(error);
  return errorResponse(error);
}

/** A Lambda handler that returns a promise. */
export type AsyncHandler<E, R> = (event: E, context: Context) => Promise<R>;

/**
 * Builds the real handler on the first invocation, not at import: a module
 * that reads its environment at import cannot be imported by tests, and a
 * missing variable should fail the invocation with a clear message. A build
 * that throws is tried again on the next invocation.
 *
 * @example
 * ```ts
 * export const handler = lazyHandler(() => makeHandler(defaultApiDeps(workflows)));
 * ```
 */
export function lazyHandler<E, R>(build: () => AsyncHandler<E, R>): AsyncHandler<E, R> {
  let built: AsyncHandler<E, R> | undefined;
  return function lazy(event, context) {
    built ??= build();
    const handler = built;
    if (!tracingConfigured()) return handler(event, context);
    // Trace export (OTEL_EXPORTER_OTLP_ENDPOINT): started once, flushed before each invocation returns.
    return startTracingFromEnv().then(async (tracing) => {
      try {
        return await handler(event, context);
      } finally {
        await tracing?.flush();
      }
    });
  };
}
