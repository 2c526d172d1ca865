import { HttpError } from './errors.ts';
import type { ApiRequest } from './request.ts';

/**
 * Reading a transport-neutral {@link ApiRequest}: headers, the path as
 * routed, the body within its limit, JSON bodies and query parameters.
 */

/**
 * A header's value by name, in any case (an {@link ApiRequest} holds
 * lower-case names), or `undefined` when it was not sent.
 *
 * @example
 * ```ts
 * headerValue(request, 'X-Api-Key'); // request.headers['x-api-key']
 * ```
 */
export function headerValue(request: ApiRequest, name: string): string | undefined {
  const key = name.toLowerCase();
  return Object.hasOwn(request.headers, key) ? request.headers[key] : undefined;
}

/**
 * The path the router sees: the request's path without one trailing slash.
 * Nothing else is normalised: empty segments (`//`) and dot segments reach
 * the router as they came (see `Router.match`).
 *
 * @example
 * ```ts
 * routedPath('/v1/workflows/'); // '/v1/workflows'
 * routedPath('/'); // '/'
 * ```
 */
export function routedPath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * The body, checked against the size limit, measured in UTF-8 bytes of the
 * body text (a base64-encoded body is measured decoded).
 *
 * @throws {HttpError} 413 `payload_too_large` when the body is over `maxBytes` bytes.
 *
 * @example
 * ```ts
 * bodyWithin('é'.repeat(600), 1024); // throws 413: 1,200 bytes
 * ```
 */
export function bodyWithin(body: string | undefined, maxBytes: number): string | undefined {
  if (body === undefined) return undefined;
  const size = Buffer.byteLength(body, 'utf8');
  if (size > maxBytes) {
    throw new HttpError(413, 'payload_too_large', `request body is ${size} bytes, over the limit of ${maxBytes} bytes`);
  }
  return body;
}

/**
 * Whether a `content-type` value names JSON: `application/json` or a
 * structured `application/<subtype>+json`, with any parameters (such as
 * `charset`), in any case.
 *
 * @example
 * ```ts
 * isJsonMediaType('application/json; charset=utf-8'); // true
 * isJsonMediaType('application/merge-patch+json'); // true
 * isJsonMediaType('text/plain'); // false
 * ```
 */
export function isJsonMediaType(contentType: string): boolean {
  const type = (contentType.split(';', 1)[0] ?? '').trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9!#$&^_.-]+\+json$/.test(type);
}

/**
 * Refuses a body sent as something other than JSON: a form or a text body
 * (what `curl -d` and `fetch` with a string body send by default) is not
 * read as JSON by accident. A body without any `content-type` is read as
 * JSON (the API reads nothing else), and an absent or blank body needs none.
 *
 * @throws {HttpError} 415 `unsupported_media_type`.
 */
export function assertJsonBody(contentType: string | undefined, body: string | undefined): void {
  if (contentType === undefined || isBlank(body) || isJsonMediaType(contentType)) return;
  throw new HttpError(
    415,
    'unsupported_media_type',
    `content-type: '${contentType.slice(0, 100)}' is not JSON; send the body as application/json`,
  );
}

/**
 * Deepest nesting of arrays and objects accepted in a request body, the
 * outermost value counting as level 1 (so a start body's `input` may nest 63
 * levels). Deeper values would overflow the stack of every recursive walk
 * downstream (schema validation, storage, views); no workflow needs them.
 */
export const MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b; // {
const OPEN_BRACKET = 0x5b; // [
const CLOSE_BRACE = 0x7d; // }
const CLOSE_BRACKET = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Whether JSON text nests arrays and objects deeper than `max` levels. One
 * pass over the characters, skipping strings, with no recursion: it decides
 * before `JSON.parse` (or any walk over the value) can run out of stack.
 * Malformed text is measured as well as it can be; `JSON.parse` judges it next.
 *
 * @example
 * ```ts
 * nestedDeeperThan('[[1]]', 1); // true
 * nestedDeeperThan('{"a":"[[[["}', 1); // false: brackets in strings do not count
 * ```
 */
export function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return false;
}

/**
 * The JSON value of a body, or `undefined` when the body is absent or blank.
 * Every route that reads a body reads it through here, so the depth limit
 * holds for all of them.
 *
 * @throws {HttpError} 400 `invalid_request` when the body nests deeper than
 *   {@link MAX_JSON_DEPTH}; 400 `malformed_json` when it is not JSON.
 */
export function parseJsonBody(text: string | undefined): unknown {
  if (text === undefined || isBlank(text)) return undefined;
  if (nestedDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new HttpError(
      400,
      'invalid_request',
      `request body: arrays and objects nested deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new HttpError(400, 'malformed_json', `malformed JSON in request body: ${(e as Error).message}`);
  }
}

/** Whether a body is absent or only whitespace: the API reads both as "no body". */
export function isBlank(text: string | undefined): boolean {
  return text === undefined || text.trim() === '';
}

/**
 * The body of a route whose body is optional (control and recovery calls):
 * `{}` when absent or blank, else a JSON object with no field outside
 * `allowed`. One rule, so `pause` with a stray body is refused as `cancel`
 * with one is.
 *
 * @throws {HttpError} 400 `malformed_json`, or `invalid_request` for a
 *   non-object or naming the first unknown field.
 *
 * @example
 * ```ts
 * optionalObjectBody(undefined, ['reason']); // {}
 * optionalObjectBody('{"reason":"x"}', ['reason']); // { reason: 'x' }
 * optionalObjectBody('{"why":"x"}', ['reason']); // throws 400 'why: unknown field …'
 * ```
 */
export function optionalObjectBody(text: string | undefined, allowed: readonly string[]): Record<string, unknown> {
  const body = parseJsonBody(text);
  if (body === undefined) return {};
  if (!isJsonObject(body)) {
    const shape = allowed.length === 0 ? '{}' : `{ ${allowed.map((f) => `"${f}"?: …`).join(', ')} }`;
    throw new HttpError(400, 'invalid_request', `request body must be empty or a JSON object: ${shape}`);
  }
  rejectUnknownFields(body, allowed);
  return body;
}

/**
 * An optional string field of a parsed body: `undefined` when absent or
 * `null`, else a string of at most `maxLength` characters.
 *
 * @throws {HttpError} 400 naming the field.
 */
export function optionalStringField(
  body: Record<string, unknown>,
  field: string,
  maxLength: number,
): string | undefined {
  const value = Object.hasOwn(body, field) ? body[field] : undefined;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new HttpError(400, 'invalid_request', `${field}: must be a string`);
  if (value.length > maxLength) {
    throw new HttpError(400, 'invalid_request', `${field}: must be at most ${maxLength} characters`);
  }
  return value;
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
    const fields = allowed.length === 0 ? 'none allowed' : `allowed: ${allowed.map((a) => `'${a}'`).join(', ')}`;
    throw new HttpError(400, 'invalid_request', `${unknown}: unknown field (${fields})`);
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
 * An `after` query parameter of the history: absent, or a version (a whole
 * number, at most `Number.MAX_SAFE_INTEGER`).
 *
 * @throws {HttpError} 400 naming `after`.
 */
export function afterParam(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new HttpError(400, 'invalid_request', 'after: must be a version, a whole number');
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
