import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ApiRequest, ApiRequestHandler, ApiResponse } from '../shared/api/request.ts';

/** Largest body the gateway reads; API Gateway's own limit is 10 MB. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Plays API Gateway's HTTP API locally: reads each request into an
 * {@link ApiRequest}, calls the handler, writes its {@link ApiResponse}
 * back. No Lambda event or context is made up: the handler is the
 * transport-neutral core (see `makeRequestHandler` of `functions/api`).
 * Like API Gateway, it refuses a body over 10 MB itself, and answers 500
 * when the handler throws.
 *
 * @example
 * ```ts
 * const gateway = await startHttpGateway({ handler: withUi(makeRequestHandler(deps)), port: 0 });
 * await fetch(`${gateway.url}/v1/workflows`, { headers: { 'x-api-key': key } });
 * await gateway.close();
 * ```
 */
export function startHttpGateway(options: {
  readonly handler: ApiRequestHandler;
  readonly port?: number;
  readonly host?: string;
}): Promise<{ readonly url: string; readonly server: Server; close(): Promise<void> }> {
  // Handler calls in flight: closing waits for them, as a draining gateway would.
  const inFlight = new Set<Promise<void>>();
  const server = createServer((req, res) => {
    const call = serve(options.handler, req, res);
    inFlight.add(call);
    void call.finally(() => inFlight.delete(call));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : options.port;
      resolve({
        url: `http://${options.host ?? '127.0.0.1'}:${port}`,
        server,
        close: async () => {
          const closed = new Promise<void>((done) => server.close(() => done()));
          await Promise.allSettled([...inFlight]);
          server.closeAllConnections();
          await closed;
        },
      });
    });
  });
}

async function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return 'too-large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function serve(handler: ApiRequestHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const body = await readBody(req);
    if (body === 'too-large') {
      res.writeHead(413, { 'content-type': 'application/json' }).end('{"message":"Request Entity Too Large"}');
      return;
    }
    const response: ApiResponse = await handler(apiRequestOf(req, body));
    res.writeHead(response.status, { ...response.headers });
    res.end(response.body ?? '');
  } catch (e) {
    // API Gateway answers 500 when the integration itself fails.
    console.error('api handler failed:', e);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{"message":"Internal Server Error"}');
  }
}

/**
 * The request as API Gateway would hand it on: the path as sent (not
 * decoded), the query decoded with a repeated parameter's values joined by
 * `,`, header names lower case, the body as UTF-8 text (`undefined` when
 * empty).
 */
function apiRequestOf(req: IncomingMessage, body: Buffer): ApiRequest {
  // The request target is a path, never resolved against a base: `//host/v1/…` stays a path with an
  // empty segment (which no route matches), as API Gateway keeps it, instead of naming a host.
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(q < 0 ? '' : target.slice(q + 1))) {
    const seen = query.get(k);
    query.set(k, seen === undefined ? v : `${seen},${v}`);
  }
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers.set(k.toLowerCase(), Array.isArray(v) ? v.join(',') : v);
  }
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    path,
    query: Object.fromEntries(query),
    headers: Object.fromEntries(headers),
    ...(body.length > 0 ? { body: body.toString('utf8') } : {}),
  };
}
