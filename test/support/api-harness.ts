// biome-ignore-all lint/suspicious/noExplicitAny: test bodies are read loosely
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { z } from 'zod';
import { MemoryTaskQueue } from '../../shared/adapters/memory/task-queue.ts';
import { type ApiDeps, makeApi } from '../../shared/api/api.ts';
import { type AnyFlow, FakeClock, flow, MemoryInstanceStore, MemorySecrets } from '../../shared/index.ts';
import { WorkflowRegistry } from '../../shared/runtime/registry.ts';
import { workflows } from '../../workflows/index.ts';
import type { Order } from '../../workflows/order.ts';

/**
 * The HTTP API called in-process, as Lambda calls it: API Gateway v2 events
 * in, structured results out, over the memory adapters and a fake clock.
 */

/** A flow with a zod input schema whose first step waits for a signal. */
export const signup = flow<{ name: string; age: number; plan: 'free' | 'pro'; tags?: string[] }>('signup', {
  description: 'Waits for a confirmation, then welcomes.',
  input: z.object({
    name: z.string(),
    age: z.number().int(),
    plan: z.enum(['free', 'pro']).default('free'),
    tags: z.array(z.string()).optional(),
  }),
})
  .waitForSignal<{ ok: boolean } | null>('confirm', 'confirmed')
  .then('welcome', (c) => ({ welcomed: c?.ok === true }))
  .build();

export const KEY = 'key-for-tests-0123456789';
export const SECRET = 'sayiir/api-keys';
export const ORDER: Order = { orderId: 'o-1', customer: 'c-1', items: [{ sku: 'a', qty: 2, price: 5 }] };

export interface CallInit {
  /** JSON-encoded unless `raw` is given. */
  readonly body?: unknown;
  readonly raw?: string;
  readonly base64?: boolean;
  /** `null`: no key header. @default KEY */
  readonly key?: string | null;
  readonly headers?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly stage?: string;
}

export function httpEvent(method: string, path: string, init: CallInit = {}): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key !== null) headers['x-api-key'] = init.key ?? KEY;
  const body = init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
  const stage = init.stage ?? '$default';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(init.query ?? {}).toString(),
    headers,
    ...(init.query ? { queryStringParameters: { ...init.query } } : {}),
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: init.base64 ?? false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      requestId: 'req-1',
      routeKey: '$default',
      stage,
      time: '01/Jan/2025:00:00:00 +0000',
      timeEpoch: 0,
    },
  };
}

export interface Reply {
  readonly status: number | undefined;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly json: any;
}

export function setup(options: Partial<ApiDeps> & { readonly flows?: readonly AnyFlow[] } = {}) {
  const store = new MemoryInstanceStore();
  const queue = new MemoryTaskQueue();
  const clock = new FakeClock(Date.UTC(2025, 0, 1));
  let seq = 0;
  const deps: ApiDeps = {
    store,
    queue,
    registry: new WorkflowRegistry(options.flows ?? [...workflows, signup]),
    secrets: new MemorySecrets({ [SECRET]: JSON.stringify(['another-key', KEY]) }),
    clock,
    newId: () => `gen-${++seq}`,
    ...options,
  };
  const api = makeApi(deps);
  const call = async (method: string, path: string, init: CallInit = {}): Promise<Reply> => {
    const res = await api(httpEvent(method, path, init));
    return {
      status: res.statusCode,
      headers: res.headers ?? {},
      json: res.body === undefined ? undefined : JSON.parse(res.body),
    };
  };
  /** Counts of everything a request could create. */
  const footprint = () => ({
    instances: store.instanceIds().length,
    dispatched: queue.sent.length,
    values: [...store.commits.values()].reduce((a, b) => a + b, 0),
    journal: store.instanceIds().reduce((n, id) => n + store.journalLength(id), 0),
  });
  return { store, queue, clock, api, call, footprint, deps };
}

export const start = (call: ReturnType<typeof setup>['call'], name: string, body: unknown) =>
  call('POST', `/v1/workflows/${name}/instances`, { body });
