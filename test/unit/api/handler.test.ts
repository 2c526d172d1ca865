import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeHandler, makeRequestHandler } from '../../../functions/api/handler.ts';
import { httpErrors, lazyHandler } from '../../../functions/middy.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import type { ApiDeps } from '../../../shared/api/api.ts';
import { HttpError } from '../../../shared/api/errors.ts';
import { FakeClock, MemoryInstanceStore, MemorySecrets } from '../../../shared/index.ts';
import { jsonLog } from '../../../shared/observability/log.ts';
import { noMetrics } from '../../../shared/observability/metrics.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { workflows } from '../../../workflows/index.ts';
import { httpEvent as harnessEvent, KEY } from '../../support/api-harness.ts';

/** A request event with the harness's key; `body` raw. */
const httpEvent = (method: string, path: string, body?: string): APIGatewayProxyEventV2 =>
  harnessEvent(method, path, body === undefined ? {} : { raw: body });

const context: Context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'api',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:api',
  memoryLimitInMB: '256',
  awsRequestId: 'aws-req-1',
  logGroupName: '/aws/lambda/api',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 30_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
};

function deps(overrides: Partial<ApiDeps> = {}): ApiDeps {
  return {
    store: new MemoryInstanceStore(),
    queue: new MemoryTaskQueue(),
    registry: new WorkflowRegistry(workflows),
    secrets: new MemorySecrets({ 'sayiir/api-keys': JSON.stringify([KEY]) }),
    clock: new FakeClock(0),
    ...overrides,
  };
}

const bodyOf = (r: APIGatewayProxyStructuredResultV2) => JSON.parse(r.body ?? 'null');

afterEach(() => {
  vi.restoreAllMocks();
});

describe('functions/api makeHandler', () => {
  it('serves the API through the middy stack', async () => {
    const handler = makeHandler(deps());
    const started = await handler(
      httpEvent('POST', '/v1/workflows/hello/instances', '{"input":{"name":"Ada"},"instanceId":"h-1"}'),
      context,
    );
    expect(started.statusCode).toBe(201);
    expect(bodyOf(started)).toEqual({ instanceId: 'h-1', workflow: 'hello', status: 'RUNNING' });
    const got = await handler(httpEvent('GET', '/v1/instances/h-1'), context);
    expect(bodyOf(got).tasks).toEqual([{ key: 'greet', attempt: 1, state: 'dispatched' }]);
  });

  it('answers a generic 500 to a store failure, without leaking its message, and logs it', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const store = new MemoryInstanceStore();
    store.load = async () => {
      throw new Error('connection to db-internal.example:8000 refused');
    };
    const res = await makeHandler(deps({ store }))(httpEvent('GET', '/v1/instances/x'), context);
    expect(res.statusCode).toBe(500);
    expect(res.headers?.['content-type']).toBe('application/json');
    expect(bodyOf(res)).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
    expect(res.body).not.toContain('db-internal');
    expect(logged).toHaveBeenCalledTimes(1);
  });

  it('answers a generic 500 when the key secret is missing', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const res = await makeHandler(deps({ secrets: new MemorySecrets({}) }))(httpEvent('GET', '/v1/workflows'), context);
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('sayiir/api-keys');
  });

  it('still answers client errors from the core itself, with their message', async () => {
    const res = await makeHandler(deps())(httpEvent('POST', '/v1/workflows/hello/instances', '{'), context);
    expect(res.statusCode).toBe(400);
    expect(bodyOf(res).error.message).toMatch(/^malformed JSON/);
  });
});

describe('functions/api makeRequestHandler (the API without Lambda, as the local gateway serves it)', () => {
  const request = (method: string, path: string, body?: string) => ({
    method,
    path,
    query: {},
    headers: { 'x-api-key': KEY },
    ...(body === undefined ? {} : { body }),
  });

  it('serves neutral requests: a 201 start, then the run', async () => {
    const handle = makeRequestHandler(deps());
    const started = await handle(
      request('POST', '/v1/workflows/hello/instances', '{"input":{"name":"Ada"},"instanceId":"h-1"}'),
    );
    expect(started.status).toBe(201);
    expect(JSON.parse(String(started.body))).toEqual({ instanceId: 'h-1', workflow: 'hello', status: 'RUNNING' });
    expect((await handle(request('GET', '/v1/instances/h-1'))).status).toBe(200);
  });

  it('answers a store failure as the Lambda does (a generic 500), logs it once through telemetry, and flushes the metrics', async () => {
    const store = new MemoryInstanceStore();
    store.load = async () => {
      throw new Error('connection to db-internal.example:8000 refused');
    };
    const lines: string[] = [];
    const flush = vi.fn();
    const telemetry = { log: jsonLog({ write: (l) => lines.push(l) }), metrics: { ...noMetrics, flush } };
    const res = await makeRequestHandler({ ...deps({ store }), telemetry })(request('GET', '/v1/instances/x'));
    expect(res.status).toBe(500);
    expect(JSON.parse(String(res.body))).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ level: 'ERROR', error: 'Error' });
    expect(flush).toHaveBeenCalledTimes(1);
  });

  it('does not log a client error', async () => {
    const lines: string[] = [];
    const telemetry = { log: jsonLog({ write: (l) => lines.push(l) }), metrics: noMetrics };
    const res = await makeRequestHandler({ ...deps(), telemetry })(request('GET', '/nowhere'));
    expect(res.status).toBe(404);
    expect(lines).toEqual([]);
  });
});

describe('httpErrors middleware', () => {
  const throwing = (error: unknown) =>
    middy<unknown, APIGatewayProxyStructuredResultV2>(async () => {
      throw error;
    }).use(httpErrors({ logger: () => undefined }));

  it('shows the code and message of a 4xx HttpError, with its headers', async () => {
    const res = await throwing(new HttpError(405, 'method_not_allowed', 'no DELETE here', { allow: 'GET' }))(
      {},
      context,
    );
    expect(res.statusCode).toBe(405);
    expect(res.headers?.allow).toBe('GET');
    expect(bodyOf(res)).toEqual({ error: { code: 'method_not_allowed', message: 'no DELETE here' } });
  });

  it('keeps the status and code of a 5xx HttpError but hides its message', async () => {
    const res = await throwing(new HttpError(503, 'internal_error', 'table xyz throttled'))({}, context);
    expect(res.statusCode).toBe(503);
    expect(bodyOf(res)).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
  });

  it('logs only what becomes a 5xx', async () => {
    const logged: unknown[] = [];
    const wrap = (error: unknown) =>
      middy<unknown, APIGatewayProxyStructuredResultV2>(async () => {
        throw error;
      }).use(httpErrors({ logger: (e) => logged.push(e) }));
    const boom = new Error('boom');
    await wrap(new HttpError(404, 'route_not_found', 'nope'))({}, context);
    await wrap(boom)({}, context);
    await wrap('a string')({}, context);
    expect(logged).toEqual([boom, 'a string']);
  });
});

describe('lazyHandler', () => {
  it('builds the handler once, on the first invocation', async () => {
    const build = vi.fn(() => async (event: number) => event * 2);
    const handler = lazyHandler(build);
    expect(build).not.toHaveBeenCalled();
    expect(await handler(1, context)).toBe(2);
    expect(await handler(2, context)).toBe(4);
    expect(build).toHaveBeenCalledTimes(1);
  });

  it('fails the invocation when the build fails, and tries again next time', async () => {
    let attempts = 0;
    const handler = lazyHandler(() => {
      attempts++;
      if (attempts === 1) throw new Error('missing environment variable SAYIIR_INSTANCES_TABLE');
      return async (event: string) => event;
    });
    expect(() => handler('x', context)).toThrow(/SAYIIR_INSTANCES_TABLE/);
    expect(await handler('y', context)).toBe('y');
    expect(attempts).toBe(2);
  });
});
