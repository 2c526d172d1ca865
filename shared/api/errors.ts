import { type ApiErrorCode, SayiirError } from '../errors.ts';
import type { ApiResponse } from './request.ts';

export type { ApiErrorCode } from '../errors.ts';

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
export class HttpError extends SayiirError {
  override readonly name = 'HttpError';
  /** The same as {@link statusCode}: an HttpError is its own answer, 5xx included. */
  override readonly httpStatus: number;
  constructor(
    readonly statusCode: number,
    override readonly code: ApiErrorCode,
    message: string,
    /** Extra response headers (e.g. `allow` on a 405). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.httpStatus = statusCode;
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
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): ApiResponse {
  return { status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/**
 * The response for an error: `{ error: { code, message } }`. A client error
 * (see {@link toHttpError}) shows its code and message; a 5xx
 * {@link HttpError} keeps its status and code but gets a generic message;
 * anything else becomes a generic 500.
 *
 * @example
 * ```ts
 * errorResponse(new HttpError(409, 'conflict', 'taken')); // 409, message shown
 * errorResponse(new InstanceNotFoundError('o-1'));         // 404 instance_not_found, message shown
 * errorResponse(new Error('db password is hunter2'));      // 500 'internal error'
 * ```
 */
export function errorResponse(error: unknown): ApiResponse {
  const http = toHttpError(error);
  if (http && http.statusCode >= 400 && http.statusCode < 500) {
    return jsonResponse(http.statusCode, { error: { code: http.code, message: http.message } }, http.headers);
  }
  const status = http && http.statusCode >= 500 ? http.statusCode : 500;
  const code = http && http.statusCode >= 500 ? http.code : 'internal_error';
  return jsonResponse(status, { error: { code, message: GENERIC_SERVER_ERROR } });
}

/**
 * The HTTP meaning of an error, or `undefined` for an error that is a fault
 * of the service (left to become a generic 500): an {@link HttpError} as it
 * is, and any other {@link SayiirError} whose class declares a 4xx
 * `httpStatus` as that status with its `code` and message.
 *
 * @example
 * ```ts
 * toHttpError(new InstanceNotFoundError('o-1')); // HttpError 404 instance_not_found
 * toHttpError(new ClaimLostError('o-1', 'charge', 3)); // undefined: a 500
 * ```
 */
export function toHttpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  if (!(error instanceof SayiirError) || !isClientStatus(error.httpStatus)) return undefined;
  // A class that declares a status but forgets its code still answers its status.
  return new HttpError(error.httpStatus, (error.code ?? 'invalid_request') as ApiErrorCode, error.message);
}

/** True for a 4xx status. */
function isClientStatus(status: number | undefined): status is number {
  return status !== undefined && Number.isInteger(status) && status >= 400 && status < 500;
}
