import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { DefinitionMismatchError, TerminalError } from '../engine/errors.ts';
import {
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidCursorError,
  JournalConflictError,
  PayloadTooLargeError,
} from '../ports/errors.ts';
import { SignalBufferFullError, TaskAlreadyCompletedError, TaskStateError } from '../runtime/instances.ts';
import { WorkflowNotFoundError } from '../runtime/registry.ts';

/**
 * Machine-readable error codes of the HTTP API, one per distinct cause, so a
 * client can branch on `error.code` without parsing messages.
 */
export type ApiErrorCode =
  | 'malformed_json'
  | 'invalid_request'
  | 'invalid_input'
  | 'unauthorized'
  | 'route_not_found'
  | 'workflow_not_found'
  | 'instance_not_found'
  | 'signal_not_found'
  | 'method_not_allowed'
  | 'instance_exists'
  | 'instance_finished'
  | 'invalid_transition'
  | 'definition_mismatch'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'invalid_task_state'
  | 'task_completed'
  | 'task_not_found'
  | 'invalid_output'
  | 'dead_letter_not_found'
  | 'pool_not_found'
  | 'signal_buffer_full'
  | 'forbidden'
  | 'internal_error';

/**
 * An error that is an HTTP response: its status, a code and a message for the
 * client. Messages of 4xx errors are shown to the client; those of 5xx errors
 * are replaced by a generic one (they may carry internals).
 *
 * @example
 * ```ts
 * throw new HttpError(404, 'instance_not_found', `instance '${id}' not found`);
 * ```
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly code: ApiErrorCode,
    message: string,
    /** Extra response headers (e.g. `allow` on a 405). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** The message a client sees for any 5xx error. */
export const GENERIC_SERVER_ERROR = 'internal error';

/** Headers of every API response. */
export const JSON_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json',
  'cache-control': 'no-store',
};

/**
 * A JSON response.
 *
 * @example
 * ```ts
 * return jsonResponse(200, { items: [] });
 * ```
 */
export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/**
 * The response for an error: `{ error: { code, message } }`. A 5xx keeps its
 * status and code but gets a generic message; anything that is not an
 * {@link HttpError} becomes a generic 500.
 *
 * @example
 * ```ts
 * errorResponse(new HttpError(409, 'conflict', 'taken')); // 409, message shown
 * errorResponse(new Error('db password is hunter2'));      // 500 'internal error'
 * ```
 */
export function errorResponse(error: unknown): APIGatewayProxyStructuredResultV2 {
  if (error instanceof HttpError && error.statusCode >= 400 && error.statusCode < 500) {
    return jsonResponse(error.statusCode, { error: { code: error.code, message: error.message } }, error.headers);
  }
  const statusCode = error instanceof HttpError && error.statusCode >= 500 ? error.statusCode : 500;
  const code = error instanceof HttpError && error.statusCode >= 500 ? error.code : 'internal_error';
  return jsonResponse(statusCode, { error: { code, message: GENERIC_SERVER_ERROR } });
}

/**
 * The HTTP meaning of an engine or port error, or `undefined` for an error
 * that is a fault of the service (left to become a generic 500).
 */
export function toHttpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  if (error instanceof WorkflowNotFoundError) return new HttpError(404, 'workflow_not_found', error.message);
  if (error instanceof InvalidCursorError) return new HttpError(400, 'invalid_request', error.message);
  if (error instanceof InstanceNotFoundError) return new HttpError(404, 'instance_not_found', error.message);
  if (error instanceof InstanceExistsError) return new HttpError(409, 'instance_exists', error.message);
  if (error instanceof PayloadTooLargeError) return new HttpError(413, 'payload_too_large', error.message);
  if (error instanceof DefinitionMismatchError) return new HttpError(409, 'definition_mismatch', error.message);
  // applyEvent retries conflicts many times before giving up: report a conflict, the client may retry.
  if (error instanceof JournalConflictError) return new HttpError(409, 'conflict', error.message);
  if (error instanceof SignalBufferFullError) return new HttpError(429, 'signal_buffer_full', error.message);
  if (error instanceof TaskStateError) return new HttpError(409, 'invalid_task_state', error.message);
  if (error instanceof TaskAlreadyCompletedError) return new HttpError(409, 'task_completed', error.message);
  if (error instanceof TerminalError) return new HttpError(400, 'invalid_output', error.message);
  return undefined;
}
