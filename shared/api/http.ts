import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { HttpError } from './errors.ts';

/**
 * Reading an API Gateway HTTP API (payload 2.0) event: headers, path,
 * method and body, tolerant of the small differences between API Gateway
 * and a local server that builds such events.
 */

/**
 * A header's value, looked up case-insensitively (API Gateway v2 lowercases
 * header names; a local server may not).
 */
export function headerValue(event: APIGatewayProxyEventV2, name: string): string | undefined {
  const headers = event.headers ?? {};
  const exact = headers[name];
  if (exact !== undefined) return exact;
  const want = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === want) return value;
  }
  return undefined;
}

/** The request method, upper case. */
export function requestMethod(event: APIGatewayProxyEventV2): string {
  return (event.requestContext?.http?.method ?? '').toUpperCase();
}

/**
 * The request path without the stage prefix (present under a named stage,
 * absent under `$default`) and without trailing slashes.
 */
export function requestPath(event: APIGatewayProxyEventV2): string {
  let path = event.rawPath || event.requestContext?.http?.path || '/';
  const stage = event.requestContext?.stage;
  if (stage && stage !== '$default' && (path === `/${stage}` || path.startsWith(`/${stage}/`))) {
    path = path.slice(stage.length + 1) || '/';
  }
  while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path;
}

/**
 * The decoded body text, or `undefined` when there is none.
 *
 * @throws {HttpError} 413 when the body (base64-decoded when
 *   `isBase64Encoded`) is over `maxBytes` bytes.
 */
export function readBody(event: APIGatewayProxyEventV2, maxBytes: number): string | undefined {
  if (event.body === undefined || event.body === null) return undefined;
  const bytes = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : undefined;
  const size = bytes ? bytes.length : Buffer.byteLength(event.body, 'utf8');
  if (size > maxBytes) {
    throw new HttpError(413, 'payload_too_large', `request body is ${size} bytes, over the limit of ${maxBytes} bytes`);
  }
  return bytes ? bytes.toString('utf8') : event.body;
}

/**
 * The JSON value of a body, or `undefined` when the body is absent or blank.
 *
 * @throws {HttpError} 400 `malformed_json`.
 */
export function parseJsonBody(text: string | undefined): unknown {
  if (text === undefined || text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new HttpError(400, 'malformed_json', `malformed JSON in request body: ${(e as Error).message}`);
  }
}

/** A JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Rejects fields outside `allowed`: a misspelt `instanceId` must not
 * silently start a second instance.
 *
 * @throws {HttpError} 400 naming the first unknown field.
 */
export function rejectUnknownFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).find((k) => !allowed.includes(k));
  if (unknown !== undefined) {
    throw new HttpError(
      400,
      'invalid_request',
      `${unknown}: unknown field (allowed: ${allowed.map((a) => `'${a}'`).join(', ')})`,
    );
  }
}

/**
 * A `limit` query parameter: `fallback` when absent, else an integer from 1 to `max`.
 *
 * @throws {HttpError} 400 naming `limit`.
 */
export function limitParam(raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= max)) throw new HttpError(400, 'invalid_request', `limit: must be an integer from 1 to ${max}`);
  return n;
}

/**
 * A `cursor` query parameter: absent, or a non-empty opaque string.
 *
 * @throws {HttpError} 400 naming `cursor`.
 */
export function cursorParam(raw: string | undefined): string | undefined {
  if (raw === '') throw new HttpError(400, 'invalid_request', 'cursor: must not be empty');
  return raw;
}

/**
 * A `wait` query parameter: `undefined` when absent, else a number of
 * seconds from 0 to `maxSeconds` (decimals allowed).
 *
 * @throws {HttpError} 400 naming `wait` and its bounds (negative, too large,
 *   empty or not a plain decimal number).
 *
 * @example
 * ```ts
 * waitParam('2.5', 25); // 2.5
 * waitParam(undefined, 25); // undefined
 * ```
 */
export function waitParam(raw: string | undefined, maxSeconds: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 0 && n <= maxSeconds)) {
    throw new HttpError(400, 'invalid_request', `wait: must be a number of seconds from 0 to ${maxSeconds}`);
  }
  return n;
}
