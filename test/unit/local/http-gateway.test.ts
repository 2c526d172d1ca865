import { describe, expect, it, vi } from 'vitest';
import { startHttpGateway } from '../../../local/http-gateway.ts';
import type { ApiRequest, ApiRequestHandler } from '../../../shared/api/request.ts';

async function withGateway(handler: ApiRequestHandler, use: (url: string) => Promise<void>): Promise<void> {
  const gateway = await startHttpGateway({ handler, port: 0 });
  try {
    await use(gateway.url);
  } finally {
    await gateway.close();
  }
}

describe('the local gateway', () => {
  it('hands the handler the request as API Gateway would: path as sent, query joined, header names lower case, body as text', async () => {
    const seen: ApiRequest[] = [];
    await withGateway(
      async (request) => {
        seen.push(request);
        return { status: 201, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };
      },
      async (url) => {
        const res = await fetch(`${url}/v1/instances/a%2Fb/?tag=a&tag=b&q=x%20y`, {
          method: 'post',
          headers: { 'X-Api-Key': 'k', 'Content-Type': 'application/json' },
          body: '{"name":"Adé"}',
        });
        expect(res.status).toBe(201);
        expect(await res.json()).toEqual({ ok: true });
      },
    );
    expect(seen).toHaveLength(1);
    const [request] = seen as [ApiRequest];
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/v1/instances/a%2Fb/');
    expect(request.basePath).toBeUndefined();
    expect(request.query).toEqual({ tag: 'a,b', q: 'x y' });
    expect(request.headers['x-api-key']).toBe('k');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.body).toBe('{"name":"Adé"}');
  });

  it('hands no body for an empty one, and writes a binary response body as bytes', async () => {
    const seen: ApiRequest[] = [];
    await withGateway(
      async (request) => {
        seen.push(request);
        return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([0, 255]) };
      },
      async (url) => {
        const res = await fetch(`${url}/bytes`);
        expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array([0, 255]));
      },
    );
    expect(seen[0]?.body).toBeUndefined();
    expect(seen[0]?.query).toEqual({});
  });

  it('answers 500 like API Gateway when the handler throws', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      await withGateway(
        async () => {
          throw new Error('boom');
        },
        async (url) => {
          const res = await fetch(`${url}/v1/workflows`);
          expect(res.status).toBe(500);
          expect(await res.json()).toEqual({ message: 'Internal Server Error' });
        },
      );
      expect(logged).toHaveBeenCalledTimes(1);
    } finally {
      logged.mockRestore();
    }
  });
});
