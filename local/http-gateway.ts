import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';

/** An HTTP API v2 Lambda handler, as `functions/api` exports it. */
export type HttpApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;

/** Largest body the gateway reads; API Gateway's own limit is 10 MB. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Plays API Gateway's HTTP API locally: turns each request into a payload
 * format 2.0 event, calls the handler, writes its result back.
 */
export function startHttpGateway(options: {
  readonly handler: HttpApiHandler;
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

async function serve(handler: HttpApiHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const body = await readBody(req);
    if (body === 'too-large') {
      res.writeHead(413, { 'content-type': 'application/json' }).end('{"message":"Request Entity Too Large"}');
      return;
    }
    // The request target is a path, never resolved against a base: `//host/v1/…` stays a path with an
    // empty segment (which no route matches), as API Gateway keeps it, instead of naming a host.
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const rawPath = q < 0 ? target : target.slice(0, q);
    const rawQueryString = q < 0 ? '' : target.slice(q + 1);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
    }
    const query: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(rawQueryString))
      query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
    const method = (req.method ?? 'GET').toUpperCase();
    const now = new Date();
    const requestId = randomUUID();
    const textual = /json|text|xml|urlencoded/.test(headers['content-type'] ?? 'application/json');
    const event: APIGatewayProxyEventV2 = {
      version: '2.0',
      routeKey: '$default',
      rawPath,
      rawQueryString,
      headers,
      ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
      requestContext: {
        accountId: '000000000000',
        apiId: 'local',
        domainName: headers.host ?? 'localhost',
        domainPrefix: 'local',
        http: {
          method,
          path: rawPath,
          protocol: `HTTP/${req.httpVersion}`,
          sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
          userAgent: headers['user-agent'] ?? '',
        },
        requestId,
        routeKey: '$default',
        stage: '$default',
        time: now.toUTCString(),
        timeEpoch: now.getTime(),
      },
      isBase64Encoded: body.length > 0 && !textual,
      ...(body.length > 0 ? { body: textual ? body.toString('utf8') : body.toString('base64') } : {}),
    };
    const context = lambdaContext('sayiir-api', requestId, 30_000);
    const result = await handler(event, context);
    const structured =
      typeof result === 'string'
        ? { statusCode: 200, body: result, headers: { 'content-type': 'application/json' } }
        : result;
    const outHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(structured.headers ?? {})) outHeaders[k] = String(v);
    res.writeHead(structured.statusCode ?? 200, outHeaders);
    res.end(
      structured.isBase64Encoded && structured.body ? Buffer.from(structured.body, 'base64') : (structured.body ?? ''),
    );
  } catch (e) {
    // API Gateway answers 500 when the integration itself fails.
    console.error('api handler failed:', e);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{"message":"Internal Server Error"}');
  }
}

/** A Lambda-like context whose remaining time counts down from `timeoutMs`. */
export function lambdaContext(functionName: string, requestId: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
