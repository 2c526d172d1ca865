/**
 * A small path router: patterns like `/v1/instances/{id}/signals/{signal}`,
 * literal segments or `{name}` parameters, matched segment by segment.
 */

/** Path parameters of a matched route. */
export interface RouteParams {
  /** The parameter's value. @throws {Error} when the route has no such parameter (a programming error). */
  get(name: string): string;
}

/** The outcome of {@link Router.match}. */
export type RouteMatch<H> =
  | { readonly kind: 'found'; readonly handler: H; readonly params: RouteParams }
  /** The path is known, the method is not: answer 405 with `allow`. */
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'not-found' };

interface Entry<H> {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: H;
}

const splitPattern = (pattern: string): string[] => pattern.split('/').filter((s) => s.length > 0);

/**
 * The segments of a request path, or `undefined` when no route can have it:
 * not rooted at `/`, or with an empty segment (`//`). Dropping the empty
 * segment instead would route `/v1/instances//history` to the instance
 * named `history`: one request, two readings.
 */
function requestSegments(path: string): string[] | undefined {
  if (!path.startsWith('/')) return undefined;
  if (path === '/') return [];
  const segments = path.slice(1).split('/');
  return segments.includes('') ? undefined : segments;
}

/**
 * API Gateway HTTP APIs deliver the path already decoded, a local server may
 * not: decode a segment only when it is valid percent-encoding.
 */
function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Routes requests by method and path.
 *
 * @example
 * ```ts
 * const router = new Router<Handler>().add('GET', '/v1/workflows/{name}', getWorkflow);
 * const m = router.match('GET', '/v1/workflows/hello');
 * if (m.kind === 'found') m.params.get('name'); // 'hello'
 * ```
 */
export class Router<H> {
  private readonly entries: Entry<H>[] = [];

  /** Adds a route; returns the router for chaining. */
  add(method: string, pattern: string, handler: H): this {
    this.entries.push({ method: method.toUpperCase(), segments: splitPattern(pattern), handler });
    return this;
  }

  /**
   * The route for a request, or why there is none. Segments are matched as
   * they are (`.` and `..` included, never resolved) and decoded one by one,
   * so `%2F` stays inside its segment; a path with an empty segment matches
   * no route.
   */
  match(method: string, path: string): RouteMatch<H> {
    const raw = requestSegments(path);
    if (!raw) return { kind: 'not-found' };
    const segments = raw.map(decodeSegment);
    const allow: string[] = [];
    for (const entry of this.entries) {
      const params = matchSegments(entry.segments, segments);
      if (!params) continue;
      if (entry.method === method.toUpperCase()) {
        return { kind: 'found', handler: entry.handler, params: paramsOf(params) };
      }
      if (!allow.includes(entry.method)) allow.push(entry.method);
    }
    return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
  }

  /** Every route as `METHOD /pattern`, in the order added. */
  table(): string[] {
    return this.entries.map((e) => `${e.method} /${e.segments.join('/')}`);
  }
}

function matchSegments(pattern: readonly string[], segments: readonly string[]): Map<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params = new Map<string, string>();
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segments[i] as string;
    if (p.startsWith('{') && p.endsWith('}')) params.set(p.slice(1, -1), s);
    else if (p !== s) return undefined;
  }
  return params;
}

function paramsOf(params: ReadonlyMap<string, string>): RouteParams {
  return {
    get(name: string): string {
      const value = params.get(name);
      if (value === undefined) throw new Error(`route has no parameter '${name}'`);
      return value;
    },
  };
}
