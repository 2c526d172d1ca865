import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { ApiRequest, ApiRequestHandler, ApiResponse } from './request.ts';

/**
 * The Lambda edge of the API and the UI: an API Gateway HTTP API (payload
 * 2.0) event becomes an {@link ApiRequest}, an {@link ApiResponse} becomes a
 * structured result. Tolerant of events built by hand (tests): header names
 * in any case, a missing `requestContext`.
 */

/** A handler of HTTP API (payload 2.0) events, as API Gateway invokes a Lambda function. */
export type HttpApiEventHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * The request an HTTP API event carries:
 * - `method` upper case, `''` when the event has none;
 * - `path` from `rawPath` (else `requestContext.http.path`, else `/`), with the
 *   stage prefix moved to `basePath` (present under a named stage, absent
 *   under `$default`); nothing else is changed, the trailing slash included;
 * - `query` from `queryStringParameters` (API Gateway has already joined a
 *   repeated parameter's values with `,`); `rawQueryString` is not read;
 * - `headers` by lower-case name; when an event built by hand names a
 *   header in two cases, the lower-case one wins, else the first; `cookies`
 *   (which API Gateway moves out of the headers) come back as one `cookie`
 *   header joined by `; `;
 * - `body` as text, base64-decoded when `isBase64Encoded` (as UTF-8).
 *
 * @example
 * ```ts
 * requestFromHttpApiEvent({ ...event, rawPath: '/prod/v1/workflows/', requestContext: { ...ctx, stage: 'prod' } });
 * // { method: 'GET', path: '/v1/workflows/', basePath: '/prod', query: {}, headers: {…} }
 * ```
 */
export function requestFromHttpApiEvent(event: APIGatewayProxyEventV2): ApiRequest {
  const { basePath, path } = splitStage(event);
  const body =
    event.body === undefined || event.body === null
      ? undefined
      : event.isBase64Encoded
        ? Buffer.from(event.body, 'base64').toString('utf8')
        : event.body;
  return {
    method: (event.requestContext?.http?.method ?? '').toUpperCase(),
    path,
    ...(basePath ? { basePath } : {}),
    query: definedEntries(Object.entries(event.queryStringParameters ?? {})),
    headers: headersOf(event),
    ...(body === undefined ? {} : { body }),
  };
}

/**
 * The structured result for a response: a text body as it is, a binary
 * body base64-encoded with `isBase64Encoded`.
 *
 * @example
 * ```ts
 * httpApiResultOf({ status: 200, headers: {}, body: Buffer.from('hi') });
 * // { statusCode: 200, headers: {}, body: 'aGk=', isBase64Encoded: true }
 * ```
 */
export function httpApiResultOf(response: ApiResponse): APIGatewayProxyStructuredResultV2 {
  const { status, headers, body } = response;
  if (body === undefined) return { statusCode: status, headers: { ...headers } };
  if (typeof body === 'string') return { statusCode: status, headers: { ...headers }, body };
  return {
    statusCode: status,
    headers: { ...headers },
    body: Buffer.from(body).toString('base64'),
    isBase64Encoded: true,
  };
}

/**
 * A core handler served over HTTP API events: the adapter `makeApi` and the
 * UI's Lambda put in front of their cores. What the core throws is thrown on
 * (the Lambda's middy stack answers it).
 *
 * @example
 * ```ts
 * export const handler = overHttpApiEvents(makeApiCore(deps));
 * ```
 */
export function overHttpApiEvents(handler: ApiRequestHandler): HttpApiEventHandler {
  return async function httpApiEvent(event) {
    return httpApiResultOf(await handler(requestFromHttpApiEvent(event)));
  };
}

/** The stage prefix (`/prod` under a named stage, '' under `$default`) and the path after it. */
function splitStage(event: APIGatewayProxyEventV2): { basePath: string; path: string } {
  const raw = event.rawPath || event.requestContext?.http?.path || '/';
  const stage = event.requestContext?.stage;
  if (stage && stage !== '$default' && (raw === `/${stage}` || raw.startsWith(`/${stage}/`))) {
    return { basePath: `/${stage}`, path: raw.slice(stage.length + 1) || '/' };
  }
  return { basePath: '', path: raw };
}

function headersOf(event: APIGatewayProxyEventV2): Record<string, string> {
  const entries = Object.entries(event.headers ?? {});
  const headers = new Map<string, string>();
  // API Gateway sends lower-case names only; of an event built by hand, the lower-case spelling wins.
  for (const [name, value] of entries) if (value !== undefined && name === name.toLowerCase()) headers.set(name, value);
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (value !== undefined && !headers.has(lower)) headers.set(lower, value);
  }
  if (event.cookies && event.cookies.length > 0 && !headers.has('cookie'))
    headers.set('cookie', event.cookies.join('; '));
  return Object.fromEntries(headers);
}

/** An own-property record of the defined values (a `__proto__` name stays a plain key). */
function definedEntries(entries: readonly [string, string | undefined][]): Record<string, string> {
  return Object.fromEntries(entries.filter((e): e is [string, string] => e[1] !== undefined));
}
