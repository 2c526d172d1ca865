import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startHttpGateway } from '../../../local/http-gateway.ts';
import { MemoryDeadLetterStore } from '../../../shared/adapters/memory/dead-letter-store.ts';
import { ROLES, type Role, roleAllows } from '../../../shared/api/auth.ts';
import { MAX_JSON_DEPTH } from '../../../shared/api/http.ts';
import { apiRouter } from '../../../shared/api/routes.ts';
import { MAX_VIEW_OUTPUT_VALUES } from '../../../shared/api/views.ts';
import { MAX_MESSAGE_CHARS } from '../../../shared/engine/errors.ts';
import { flow, MemoryInstanceStore, MemorySecrets, runWorkflow, task } from '../../../shared/index.ts';
import { hello } from '../../../workflows/hello.ts';
import { workflows } from '../../../workflows/index.ts';
import { SECRET, setup, start } from '../../support/api-harness.ts';

/** Waits an hour before it takes a 'go': signals sent meanwhile are buffered, two at most. */
const late = flow<number>('late', { signalBuffer: 2 }).delay('d', '1h').waitForSignal<number>('w', 'go').build();

describe('signals nothing waits for yet are bounded per name', () => {
  it('answers 429 past the flow signalBuffer, changes nothing, and the run stays controllable', async () => {
    const { call, footprint } = setup({ flows: [...workflows, late] });
    expect((await start(call, 'late', { input: 1, instanceId: 'l-1' })).status).toBe(201);
    for (const n of [1, 2]) {
      expect((await call('POST', '/v1/instances/l-1/signals/go', { body: n })).status).toBe(202);
    }
    const before = footprint();
    const refused = await call('POST', '/v1/instances/l-1/signals/go', { body: 3 });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('signal_buffer_full');
    expect(refused.json.error.message).toMatch(/already holds 2 'go' signals/);
    expect(footprint()).toEqual(before);
    const cancelled = await call('POST', '/v1/instances/l-1/cancel');
    expect(cancelled.status).toBe(200);
    expect(cancelled.json.status).toBe('CANCELLED');
  });
});

describe('a signal sent with an Idempotency-Key is delivered once', () => {
  it('answers a retried delivery like the first and commits it once; another key is another delivery', async () => {
    const { call, footprint } = setup({ flows: [...workflows, late] });
    await start(call, 'late', { input: 1, instanceId: 'l-2' });
    const headers = { 'idempotency-key': 'client-7f3a' };
    const first = await call('POST', '/v1/instances/l-2/signals/go', { body: 1, headers });
    const journal = footprint().journal;
    const again = await call('POST', '/v1/instances/l-2/signals/go', { body: 1, headers });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
    expect(footprint().journal).toBe(journal);
    const other = await call('POST', '/v1/instances/l-2/signals/go', { body: 2, headers: { 'Idempotency-Key': 'b' } });
    expect(other.status).toBe(202);
    expect(footprint().journal).toBe(journal + 1);
  });

  it('answers a retried delivery 202 even after the run ended, and a new one 409', async () => {
    const { call, footprint } = setup({ flows: [...workflows, late] });
    await start(call, 'late', { input: 1, instanceId: 'l-4' });
    const headers = { 'idempotency-key': 'client-9' };
    expect((await call('POST', '/v1/instances/l-4/signals/go', { body: 1, headers })).status).toBe(202);
    expect((await call('POST', '/v1/instances/l-4/cancel')).status).toBe(200);
    const journal = footprint().journal;
    const again = await call('POST', '/v1/instances/l-4/signals/go', { body: 1, headers });
    expect(again.status).toBe(202);
    expect(again.json.status).toBe('CANCELLED');
    const fresh = await call('POST', '/v1/instances/l-4/signals/go', { body: 1, headers: { 'idempotency-key': 'x' } });
    expect(fresh.status).toBe(409);
    expect(footprint().journal).toBe(journal);
  });

  it('refuses a blank or overlong key with a 400 naming the header, delivering nothing', async () => {
    const { call, footprint } = setup({ flows: [...workflows, late] });
    await start(call, 'late', { input: 1, instanceId: 'l-3' });
    const before = footprint();
    for (const key of [' ', 'k'.repeat(257)]) {
      const r = await call('POST', '/v1/instances/l-3/signals/go', { body: 1, headers: { 'idempotency-key': key } });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toMatch(/^Idempotency-Key: must be 1-256 characters/);
    }
    expect(footprint()).toEqual(before);
  });
});

/** Waits for a signal before its one task: a run that stays RUNNING with a pending task. */
const gated = flow<number>('gated')
  .waitForSignal<number>('gate', 'open')
  .then('work', (n: number) => n + 1)
  .build();

describe('bodies that are not JSON, or too deep to read', () => {
  it('answers 415 to a body sent as text/plain or a form, creating nothing', async () => {
    const { call, footprint } = setup();
    for (const type of ['text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded']) {
      const r = await call('POST', '/v1/workflows/hello/instances', {
        raw: '{"input":{"name":"Ada"}}',
        headers: { 'content-type': type },
      });
      expect(r.status).toBe(415);
      expect(r.json.error.code).toBe('unsupported_media_type');
    }
    expect(footprint().instances).toBe(0);
    for (const type of ['application/json; charset=utf-8', 'Application/JSON', 'application/merge-patch+json']) {
      const r = await call('POST', '/v1/workflows/hello/instances', {
        raw: '{"input":{"name":"Ada"}}',
        headers: { 'content-type': type },
      });
      expect(r.status).toBe(201);
    }
  });

  it('answers 400 naming the nesting limit to a body nested 100,000 levels, on every route that reads one', async () => {
    const { call, footprint } = setup({ flows: [...workflows, gated] });
    await start(call, 'gated', { input: 1, instanceId: 'g-1' });
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const before = footprint();
    for (const [method, path] of [
      ['POST', '/v1/instances/g-1/signals/open'],
      ['POST', '/v1/workflows/gated/instances'],
      ['POST', '/v1/instances/g-1/cancel'],
      ['POST', '/v1/instances/g-1/tasks/work/skip'],
    ] as const) {
      const r = await call(method, path, { raw: deep });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toContain(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    expect(footprint()).toEqual(before);
    const atLimit = `${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}`;
    expect((await call('POST', '/v1/instances/g-1/signals/open', { raw: `{"a":${atLimit}}` })).status).toBe(202);
  });
});

describe('one rule for the optional bodies of control calls', () => {
  it('refuses invalid JSON, a non-object and an unknown field on pause and resume, as on cancel', async () => {
    const { call, footprint } = setup({ flows: [...workflows, gated] });
    await start(call, 'gated', { input: 1, instanceId: 'g-2' });
    const before = footprint();
    for (const path of ['pause', 'resume', 'cancel']) {
      for (const raw of ['{', '[1]', '"x"', '{"why":"x"}']) {
        const r = await call('POST', `/v1/instances/g-2/${path}`, { raw });
        expect(r.status, `${path} ${raw}`).toBe(400);
      }
    }
    expect(footprint()).toEqual(before);
    expect((await call('POST', '/v1/instances/g-2/pause', { raw: '{}' })).status).toBe(200);
    expect((await call('POST', '/v1/instances/g-2/resume')).status).toBe(200);
    const long = await call('POST', '/v1/instances/g-2/cancel', { body: { reason: 'r'.repeat(1_001) } });
    expect(long.status).toBe(400);
    expect(long.json.error.message).toBe('reason: must be at most 1000 characters');
    expect((await call('POST', '/v1/instances/g-2/cancel', { body: { reason: 'done' } })).json.status).toBe(
      'CANCELLED',
    );
  });
});

describe('paths and ids no run can have', () => {
  it('matches no route for a path with an empty segment', async () => {
    const { call } = setup();
    await start(call, 'hello', { input: { name: 'Ada' }, instanceId: 'history' });
    for (const path of ['//evil.example/v1/workflows', '/v1/instances//history', '/v1//workflows']) {
      const r = await call('GET', path);
      expect(r.status, path).toBe(404);
      expect(r.json.error.code).toBe('route_not_found');
    }
  });

  it("refuses '.' and '..' as instance ids at start", async () => {
    const { call, footprint } = setup();
    for (const id of ['.', '..']) {
      const r = await start(call, 'hello', { input: { name: 'Ada' }, instanceId: id });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toMatch(/not '\.' or '\.\.'/);
    }
    expect(footprint().instances).toBe(0);
  });

  it('answers 400 on every instance route for an id over the id limit, before the store sees it', async () => {
    const { call } = setup();
    const id = 'x'.repeat(2_100);
    for (const [method, path] of [
      ['GET', ''],
      ['GET', '/history'],
      ['POST', '/cancel'],
      ['POST', '/pause'],
      ['POST', '/resume'],
      ['POST', '/signals/go'],
      ['POST', '/tasks/a/retry'],
    ] as const) {
      const r = await call(method, `/v1/instances/${id}${path}`);
      expect(r.status, path).toBe(400);
      expect(r.json.error.message).toMatch(/^instanceId: must be 1-128/);
    }
  });

  it('answers 409 to retry or skip of a task named like an inherited property, writing nothing', async () => {
    const { call, footprint } = setup({ flows: [...workflows, gated] });
    await start(call, 'gated', { input: 1, instanceId: 'g-3' });
    const before = footprint();
    for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const skip = await call('POST', `/v1/instances/g-3/tasks/${key}/skip`, { body: { output: 1 } });
      expect(skip.status, key).toBe(409);
      expect(skip.json.error.code).toBe('invalid_task_state');
      const retry = await call('POST', `/v1/instances/g-3/tasks/${key}/retry`);
      expect(retry.status, key).toBe(409);
      const signal = await call('POST', `/v1/instances/g-3/signals/${key}`);
      expect(signal.status, key).toBe(404);
    }
    expect(footprint()).toEqual(before);
    expect((await call('POST', '/v1/instances/g-3/signals/open', { body: 1 })).status).toBe(202);
  });

  it('answers 404 naming the pool for the dead letters of a pool no workflow uses', async () => {
    const { call } = setup({ deadLetters: new MemoryDeadLetterStore() });
    for (const [method, path] of [
      ['GET', '/v1/dlq/nope'],
      ['POST', '/v1/dlq/nope/redrive'],
    ] as const) {
      const r = await call(method, path);
      expect(r.status).toBe(404);
      expect(r.json.error.code).toBe('pool_not_found');
    }
    expect((await call('GET', '/v1/dlq/default')).status).toBe(200);
  });

  it('answers 400 to a cursor it did not hand out, on list and history', async () => {
    const store = new MemoryInstanceStore();
    await runWorkflow(hello, { name: 'Ada' }, { store, instanceId: 'h-1' });
    await runWorkflow(hello, { name: 'Bo' }, { store, instanceId: 'h-2' });
    const { call } = setup({ store });
    const page = await call('GET', '/v1/instances/h-1/history', { query: { limit: '1' } });
    expect(page.json.cursor).toBeTypeOf('string');
    for (const cursor of ['garbage', 'e30', 'W10', '%%%']) {
      expect((await call('GET', '/v1/workflows/hello/instances', { query: { cursor } })).status, cursor).toBe(400);
      expect((await call('GET', '/v1/instances/h-1/history', { query: { cursor } })).status, cursor).toBe(400);
    }
    const other = await call('GET', '/v1/instances/h-2/history', { query: { cursor: page.json.cursor } });
    expect(other.status).toBe(400);
  });
});

describe('reads a client triggers stay bounded', () => {
  it('keeps at most MAX_MESSAGE_CHARS of a huge error message, in the view and in history', async () => {
    const store = new MemoryInstanceStore();
    const huge = flow<null>('huge-error')
      .then(
        task(
          'boom',
          async () => {
            throw new Error('e'.repeat(350_000));
          },
          { retry: { maxAttempts: 1 } },
        ),
      )
      .build();
    await runWorkflow(huge, null, { store, instanceId: 'e-1' });
    const { call } = setup({ store, flows: [huge] });
    const view = await call('GET', '/v1/instances/e-1');
    expect(view.json.status).toBe('FAILED');
    expect(view.json.error.message.length).toBeLessThan(MAX_MESSAGE_CHARS + 40);
    expect(view.json.error.message).toMatch(/… \[\d+ more characters\]$/);
    const history = await call('GET', '/v1/instances/e-1/history');
    const failed = history.json.items.find((e: { type: string }) => e.type === 'task-failed');
    expect(failed.error.message.length).toBeLessThan(MAX_MESSAGE_CHARS + 40);
  });

  it('omits an output of more stored values than a view reads, saying how many', async () => {
    const store = new MemoryInstanceStore();
    const wide = flow<number>('wide')
      .map(
        'each',
        (n: number) => Array.from({ length: n }, (_, i) => i),
        task('one', async (i: number) => i),
      )
      .build();
    const n = MAX_VIEW_OUTPUT_VALUES + 1;
    expect((await runWorkflow(wide, n, { store, instanceId: 'w-1' })).status).toBe('COMPLETED');
    const { call } = setup({ store, flows: [wide] });
    const view = await call('GET', '/v1/instances/w-1');
    expect(view.json.status).toBe('COMPLETED');
    expect(view.json.output).toBeUndefined();
    expect(view.json.outputOmitted).toEqual({ values: n, limit: MAX_VIEW_OUTPUT_VALUES });
    expect((await runWorkflow(wide, 3, { store, instanceId: 'w-2' })).status).toBe('COMPLETED');
    expect((await call('GET', '/v1/instances/w-2')).json.output).toEqual([0, 1, 2]);
  });
});

describe('the local gateway', () => {
  it('hands a path starting with // to the API as a path, never as a host', async () => {
    const seen: string[] = [];
    const gateway = await startHttpGateway({
      port: 0,
      handler: async (request) => {
        seen.push(request.path);
        return { status: 204, headers: {} };
      },
    });
    try {
      const { port } = new URL(gateway.url);
      await new Promise<void>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path: '//evil.example/v1/workflows?x=1', method: 'GET' },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(seen).toEqual(['//evil.example/v1/workflows']);
    } finally {
      await gateway.close();
    }
  });
});

describe('keys with roles and workflow scopes', () => {
  const keys = [
    { name: 'viewer', key: 'k-read', role: 'read' },
    { name: 'ops-alice', key: 'k-operate', role: 'operate' },
    { name: 'root', key: 'k-admin', role: 'admin' },
    { name: 'hello-bot', key: 'k-scoped', role: 'operate', workflows: ['hello', 'gated'] },
  ];
  const secrets = new MemorySecrets({ [SECRET]: JSON.stringify(keys) });
  const KEY_OF = { read: 'k-read', operate: 'k-operate', admin: 'k-admin' } as const;

  /** Every route, with the least role it needs; paths point at a gated run 'g-1' and a hello run 'h-1'. */
  const MATRIX: readonly { method: string; path: string; needs: Role; body?: unknown }[] = [
    { method: 'GET', path: '/v1/workflows', needs: 'read' },
    { method: 'GET', path: '/v1/workflows/gated', needs: 'read' },
    { method: 'POST', path: '/v1/workflows/hello/instances', needs: 'operate', body: { input: { name: 'x' } } },
    { method: 'GET', path: '/v1/workflows/gated/instances', needs: 'read' },
    { method: 'GET', path: '/v1/instances/g-1', needs: 'read' },
    { method: 'POST', path: '/v1/instances/g-1/signals/open', needs: 'operate', body: 1 },
    { method: 'POST', path: '/v1/instances/g-1/pause', needs: 'operate' },
    { method: 'POST', path: '/v1/instances/g-1/resume', needs: 'operate' },
    { method: 'POST', path: '/v1/instances/g-1/cancel', needs: 'operate' },
    { method: 'GET', path: '/v1/instances/g-1/history', needs: 'read' },
    { method: 'GET', path: '/v1/instances/g-1/lane-timers', needs: 'read' },
    { method: 'GET', path: '/v1/instances/g-1/input', needs: 'read' },
    { method: 'GET', path: '/v1/instances/h-1/tasks/greet', needs: 'read' },
    { method: 'POST', path: '/v1/instances/h-1/tasks/greet/retry', needs: 'operate' },
    { method: 'POST', path: '/v1/instances/h-1/tasks/greet/skip', needs: 'admin', body: { output: 1 } },
    { method: 'GET', path: '/v1/dlq/default', needs: 'read' },
    { method: 'POST', path: '/v1/dlq/default/redrive', needs: 'operate' },
  ];

  it('covers every route of the API', () => {
    expect(MATRIX.length).toBe(apiRouter().table().length);
    for (const r of MATRIX) expect(apiRouter().match(r.method, r.path).kind).toBe('found');
  });

  for (const role of ROLES) {
    it(`lets a '${role}' key through exactly the routes its role allows; the others answer 403 and change nothing`, async () => {
      const { call, footprint } = setup({
        secrets,
        flows: [...workflows, gated],
        deadLetters: new MemoryDeadLetterStore(),
      });
      const admin = { headers: {}, key: 'k-admin' };
      await start(call, 'gated', { input: 1, instanceId: 'g-1' });
      await call('POST', '/v1/workflows/hello/instances', {
        ...admin,
        body: { input: { name: 'a' }, instanceId: 'h-1' },
      });
      for (const route of MATRIX) {
        const before = footprint();
        const r = await call(route.method, route.path, { key: KEY_OF[role], body: route.body });
        if (roleAllows(role, route.needs)) {
          expect(r.status, `${role} ${route.method} ${route.path}`).not.toBe(403);
        } else {
          expect(r.status, `${role} ${route.method} ${route.path}`).toBe(403);
          expect(r.json.error.message).toBe(
            `key '${keys.find((k) => k.role === role)?.name}' has role '${role}'; ${route.method} ${route.path} needs '${route.needs}'`,
          );
          expect(footprint()).toEqual(before);
        }
      }
    });
  }

  it('shows a scoped key only its workflows and their runs, as if the others did not exist', async () => {
    const { call, footprint } = setup({ secrets, deadLetters: new MemoryDeadLetterStore() });
    await call('POST', '/v1/workflows/fulfil/instances', {
      key: 'k-admin',
      body: { input: { orderId: 'o', customer: 'c', items: [] }, instanceId: 'f-1' },
    });
    const scoped = { key: 'k-scoped' };
    const names = (await call('GET', '/v1/workflows', scoped)).json.items.map((w: { name: string }) => w.name);
    expect(names).toEqual(['hello']);
    const before = footprint();
    for (const [method, path] of [
      ['GET', '/v1/workflows/fulfil'],
      ['GET', '/v1/workflows/fulfil/instances'],
      ['POST', '/v1/workflows/fulfil/instances'],
      ['GET', '/v1/instances/f-1'],
      ['GET', '/v1/instances/f-1/history'],
      ['POST', '/v1/instances/f-1/cancel'],
    ] as const) {
      const r = await call(method, path, {
        ...scoped,
        body: path.endsWith('/instances') && method === 'POST' ? { input: {} } : undefined,
      });
      expect(r.status, path).toBe(404);
    }
    expect(footprint()).toEqual(before);
    const dlq = await call('GET', '/v1/dlq/default', scoped);
    expect(dlq.status).toBe(403);
    expect(
      (await call('POST', '/v1/workflows/hello/instances', { ...scoped, body: { input: { name: 'x' } } })).status,
    ).toBe(201);
  });

  it("records the key's name, never the key, as the actor of starts, signals and control calls", async () => {
    const { call, store } = setup({ secrets, flows: [...workflows, gated] });
    await call('POST', '/v1/workflows/gated/instances', { key: 'k-operate', body: { input: 1, instanceId: 'g-9' } });
    await call('POST', '/v1/instances/g-9/pause', { key: 'k-scoped' });
    await call('POST', '/v1/instances/g-9/resume', { key: 'k-operate' });
    await call('POST', '/v1/instances/g-9/cancel', { key: 'k-admin', body: { reason: 'test' } });
    const history = (await store.readHistory('g-9')).entries;
    expect(history.map((e) => [e.type, e.actor])).toEqual([
      ['run-started', 'ops-alice'],
      ['paused', 'hello-bot'],
      ['resumed', 'ops-alice'],
      ['cancelled', 'root'],
    ]);
    expect(JSON.stringify(history)).not.toMatch(/k-(read|operate|admin|scoped)/);
  });
});
