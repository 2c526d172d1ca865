/**
 * The transport-neutral request and response of the HTTP API and the UI:
 * what the core handlers see, whatever carried the request (API Gateway's
 * payload 2.0 event on Lambda, a Node HTTP request locally). Each transport
 * has an adapter at its edge (`http-api-event.ts` for Lambda,
 * `local/http-gateway.ts` locally); nothing past it knows about events.
 */

/**
 * One HTTP request, as a transport hands it to a core handler.
 *
 * @example
 * ```ts
 * const request: ApiRequest = {
 *   method: 'POST',
 *   path: '/v1/workflows/hello/instances',
 *   query: {},
 *   headers: { 'x-api-key': key, 'content-type': 'application/json' },
 *   body: '{"input":{"name":"Ada"}}',
 * };
 * ```
 */
export interface ApiRequest {
  /** The method, upper case (`''` when the transport gave none). */
  readonly method: string;
  /**
   * The path under {@link basePath}, as the transport received it: not
   * percent-decoded (the router decodes it segment by segment, so `%2F`
   * stays inside its segment), not normalised, trailing slash kept (the
   * API drops one; the UI does not). API Gateway may deliver it already
   * decoded; the router reads both.
   */
  readonly path: string;
  /**
   * Where the service is mounted: `/prod` under a named API Gateway stage,
   * so that a page can link back under it.
   * @default '' (the root)
   */
  readonly basePath?: string;
  /**
   * Query parameters, decoded; a parameter given more than once holds its
   * values joined by `,` in the order sent (as API Gateway joins them).
   */
  readonly query: Readonly<Record<string, string>>;
  /**
   * Headers by lower-case name; a header sent more than once holds its values
   * joined by commas (`cookie`: by `; `).
   */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as text (a base64-encoded body already decoded), `undefined` when there is none. */
  readonly body?: string;
}

/**
 * One HTTP response from a core handler, for the transport to send.
 *
 * @example
 * ```ts
 * const response: ApiResponse = { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
 * ```
 */
export interface ApiResponse {
  readonly status: number;
  /** Headers by lower-case name. */
  readonly headers: Readonly<Record<string, string>>;
  /** Text, or bytes for a binary body (the Lambda adapter sends them base64-encoded). @default no body */
  readonly body?: string | Uint8Array;
}

/**
 * A core handler: a request in, a response out. A thrown error is a fault
 * of the service (client errors are answered as responses); the transport
 * answers it with a generic 500.
 *
 * @example
 * ```ts
 * const handler: ApiRequestHandler = async (request) => ({ status: 204, headers: {} });
 * ```
 */
export type ApiRequestHandler = (request: ApiRequest) => Promise<ApiResponse>;
