/**
 * The HTTP API as a transport-free core: an API Gateway HTTP API (payload
 * 2.0) event in, a response out. `functions/api` wraps it for Lambda.
 *
 * @example
 * ```ts
 * import { makeApi } from './shared/api/index.ts';
 * const api = makeApi(deps);
 * ```
 */

export type { Api, ApiDeps } from './api.ts';
export { DEFAULT_MAX_BODY_BYTES, makeApi } from './api.ts';
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
export { apiRouter, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './routes.ts';
export type { InstanceSummaryView, InstanceView, TaskView, WaitView, WorkflowView } from './views.ts';
