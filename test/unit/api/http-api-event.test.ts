import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { makeApiCore } from '../../../shared/api/api.ts';
import { httpApiResultOf, overHttpApiEvents, requestFromHttpApiEvent } from '../../../shared/api/http-api-event.ts';
import type { ApiRequest } from '../../../shared/api/request.ts';
import { httpEvent, KEY, setup } from '../../support/api-harness.ts';

describe('the HTTP API event adapter: event to request', () => {
  it('decodes a base64 body, keeps the joined query, lower-cases header names', () => {
    const event: APIGatewayProxyEventV2 = {
      ...httpEvent('post', '/v1/workflows/hello/instances', {
        key: null,
        raw: Buffer.from('{"input":{"name":"Adé"}}').toString('base64'),
        base64: true,
        headers: { 'Content-Type': 'application/json', 'X-Api-Key': KEY, 'x-trace': 't' },
        // API Gateway joins a repeated parameter (`?tag=a&tag=b`) before the function sees it.
        query: { tag: 'a,b', wait: '2' },
      }),
      rawQueryString: 'tag=a&tag=b&wait=2',
    };
    expect(requestFromHttpApiEvent(event)).toEqual<ApiRequest>({
      method: 'POST',
      path: '/v1/workflows/hello/instances',
      query: { tag: 'a,b', wait: '2' },
      headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'x-trace': 't' },
      body: '{"input":{"name":"Adé"}}',
    });
  });

  it('reads the query from queryStringParameters only, and an absent one as empty', () => {
    const event = { ...httpEvent('GET', '/v1/workflows'), rawQueryString: 'limit=5' };
    expect(requestFromHttpApiEvent(event).query).toEqual({});
  });

  it('moves the stage prefix to basePath and keeps the rest of the path as sent, trailing slash and escapes included', () => {
    const staged = requestFromHttpApiEvent(httpEvent('GET', '/prod/v1/instances/a%2Fb/', { stage: 'prod' }));
    expect(staged.path).toBe('/v1/instances/a%2Fb/');
    expect(staged.basePath).toBe('/prod');
    expect(requestFromHttpApiEvent(httpEvent('GET', '/prod', { stage: 'prod' })).path).toBe('/');
    const other = requestFromHttpApiEvent(httpEvent('GET', '/production/x', { stage: 'prod' }));
    expect(other.path).toBe('/production/x');
    expect(other.basePath).toBeUndefined();
    expect(requestFromHttpApiEvent(httpEvent('GET', '//v1', {})).path).toBe('//v1');
  });

  it('prefers the lower-case spelling of a header named twice, and puts cookies back in one cookie header', () => {
    const event = {
      ...httpEvent('GET', '/v1/workflows', { key: null, headers: { 'X-Api-Key': 'upper', 'x-api-key': 'lower' } }),
      cookies: ['a=1', 'b=2'],
    };
    expect(requestFromHttpApiEvent(event).headers).toEqual({ 'x-api-key': 'lower', cookie: 'a=1; b=2' });
  });

  it('tells an empty body from an absent one, and reads a missing method and path as empty and /', () => {
    expect(requestFromHttpApiEvent(httpEvent('POST', '/x', { raw: '' })).body).toBe('');
    expect('body' in requestFromHttpApiEvent(httpEvent('POST', '/x'))).toBe(false);
    const bare = requestFromHttpApiEvent({ headers: {} } as unknown as APIGatewayProxyEventV2);
    expect(bare).toEqual({ method: '', path: '/', query: {}, headers: {} });
  });
});

describe('the HTTP API event adapter: response to result', () => {
  it('sends a text body as it is and a binary one base64-encoded', () => {
    expect(httpApiResultOf({ status: 201, headers: { 'content-type': 'application/json' }, body: '{}' })).toEqual({
      statusCode: 201,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(httpApiResultOf({ status: 200, headers: {}, body: Buffer.from([0x1f, 0x8b, 0xff]) })).toEqual({
      statusCode: 200,
      headers: {},
      body: 'H4v/',
      isBase64Encoded: true,
    });
    expect(httpApiResultOf({ status: 204, headers: {} })).toEqual({ statusCode: 204, headers: {} });
  });

  it('hands the core the converted request and returns its response converted', async () => {
    const seen: ApiRequest[] = [];
    const handler = overHttpApiEvents(async (request) => {
      seen.push(request);
      return { status: 405, headers: { allow: 'GET' }, body: 'no' };
    });
    const event = httpEvent('DELETE', '/v1/workflows', { query: { limit: '1' } });
    expect(await handler(event)).toEqual({ statusCode: 405, headers: { allow: 'GET' }, body: 'no' });
    expect(seen).toEqual([requestFromHttpApiEvent(event)]);
  });

  it('answers the same through the adapter as the core does to the converted request', async () => {
    const { api, deps } = setup();
    const core = makeApiCore(deps);
    const event = httpEvent('GET', '/v1/workflows/', { headers: { 'X-Api-Key': KEY } });
    const viaEvent = await api(event);
    const viaCore = await core(requestFromHttpApiEvent(event));
    expect(viaEvent.statusCode).toBe(200);
    expect(viaEvent).toEqual(httpApiResultOf(viaCore));
  });
});
