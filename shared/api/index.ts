/**
 * The HTTP API as a transport-free core (`makeApiCore`: an `ApiRequest` in,
 * an `ApiResponse` out) with its Lambda adapter (`makeApi`: an API Gateway
 * HTTP API payload 2.0 event in, a structured result out). `functions/api`
 * wraps the adapter for Lambda; the local gateway serves the core.
 *
 * @example
 * ```ts
 * import { makeApi, makeApiCore } from './shared/api/index.ts';
 * const api = makeApi(deps); // Lambda events
 * const core = makeApiCore(deps); // neutral requests
 * ```
 */

export type { Api, ApiDeps } from './api.ts';
export { DEFAULT_MAX_BODY_BYTES, makeApi, makeApiCore } from './api.ts';
export {
  API_KEY_CACHE_MS,
  ApiKeyAuthorizer,
  ApiKeySecretFormatError,
  DEFAULT_API_KEY_SECRET,
  parseApiKeys,
} from './auth.ts';
export type { RouteContext, RouteHandler, RouteRequest } from './context.ts';
export { INSTANCE_ID_PATTERN } from './context.ts';
export type { ApiErrorCode } from './errors.ts';
export { errorResponse, GENERIC_SERVER_ERROR, HttpError, jsonResponse, toHttpError } from './errors.ts';
export type { HttpApiEventHandler } from './http-api-event.ts';
export { httpApiResultOf, overHttpApiEvents, requestFromHttpApiEvent } from './http-api-event.ts';
export type { ApiRequest, ApiRequestHandler, ApiResponse } from './request.ts';
export { apiRouter, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './routes.ts';
export type { InstanceSummaryView, InstanceView, TaskView, WaitView, WorkflowView } from './views.ts';
