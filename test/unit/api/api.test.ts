import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_MAX_BODY_BYTES, makeApi } from '../../../shared/api/api.ts';
import { parseApiKeys } from '../../../shared/api/auth.ts';
import type { Snapshot } from '../../../shared/engine/snapshot.ts';
import {
  branch,
  describeFlow,
  type FakeClock,
  flow,
  MemoryInstanceStore,
  MemorySecrets,
  resumeWorkflow,
  runWorkflow,
} from '../../../shared/index.ts';
import { PayloadTooLargeError, SecretNotFoundError } from '../../../shared/ports/errors.ts';
import type { Secrets } from '../../../shared/ports/secrets.ts';
import { RETENTION_DEFAULT_MS } from '../../../shared/runtime/defaults.ts';
import { applyEvent } from '../../../shared/runtime/instances.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { hello } from '../../../workflows/hello.ts';
import { workflows } from '../../../workflows/index.ts';
import { fulfil } from '../../../workflows/order.ts';

import {
  type CallInit,
  httpEvent,
  KEY,
  ORDER,
  type Reply,
  SECRET,
  setup,
  signup,
  start,
} from '../../support/api-harness.ts';

// ---- auth ------------------------------------------------------------------

describe('API keys', () => {
  it('answers 401 to a request without x-api-key, before routing (even an unknown route)', async () => {
    const { call, footprint } = setup();
    for (const path of ['/v1/workflows', '/nowhere', '/v1/workflows/hello/instances']) {
      const r = await call('POST', path, { key: null, body: { input: { name: 'Ada' } } });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('unauthorized');
    }
    expect(footprint()).toEqual({ instances: 0, dispatched: 0, values: 0, journal: 0 });
  });

  it('answers 401 to a wrong key, including a prefix or an extension of a valid one, and an empty one', async () => {
    const { call, footprint } = setup();
    for (const key of ['wrong', KEY.slice(0, -1), `${KEY}x`, '']) {
      const r = await call('POST', '/v1/workflows/hello/instances', { key, body: { input: { name: 'Ada' } } });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('unauthorized');
    }
    expect(footprint()).toEqual({ instances: 0, dispatched: 0, values: 0, journal: 0 });
  });

  it('accepts every key of the secret, finding the header whatever its case', async () => {
    const { call } = setup();
    expect((await call('GET', '/v1/workflows', { key: null, headers: { 'X-Api-Key': KEY } })).status).toBe(200);
    expect((await call('GET', '/v1/workflows', { key: 'another-key' })).status).toBe(200);
  });

  it('accepts a secret holding one key, as JSON or as plain text', async () => {
    for (const value of [JSON.stringify(KEY), KEY]) {
      const { call } = setup({ secrets: new MemorySecrets({ [SECRET]: value }) });
      expect((await call('GET', '/v1/workflows')).status).toBe(200);
      expect((await call('GET', '/v1/workflows', { key: 'nope' })).status).toBe(401);
    }
  });

  it('reads the keys from apiKeySecretName', async () => {
    const { call } = setup({
      apiKeySecretName: 'custom/keys',
      secrets: new MemorySecrets({ 'custom/keys': '["k2"]' }),
    });
    expect((await call('GET', '/v1/workflows', { key: 'k2' })).status).toBe(200);
    expect((await call('GET', '/v1/workflows')).status).toBe(401);
  });

  it('caches the keys for 60 s of the clock, then reads the rotated secret', async () => {
    let value = JSON.stringify(['old-key']);
    let reads = 0;
    const secrets: Secrets = {
      get: async () => {
        reads++;
        return value;
      },
    };
    const { call, clock } = setup({ secrets });
    expect((await call('GET', '/v1/workflows', { key: 'old-key' })).status).toBe(200);
    value = JSON.stringify(['new-key']);
    clock.advance(59_999);
    expect((await call('GET', '/v1/workflows', { key: 'old-key' })).status).toBe(200);
    expect((await call('GET', '/v1/workflows', { key: 'new-key' })).status).toBe(401);
    expect(reads).toBe(1);
    clock.advance(1);
    expect((await call('GET', '/v1/workflows', { key: 'new-key' })).status).toBe(200);
    expect((await call('GET', '/v1/workflows', { key: 'old-key' })).status).toBe(401);
    expect(reads).toBe(2);
  });

  it('treats an unreadable key secret as a server fault: thrown for the transport to answer 500', async () => {
    const { api } = setup({ secrets: new MemorySecrets({}) });
    await expect(api(httpEvent('GET', '/v1/workflows'))).rejects.toBeInstanceOf(SecretNotFoundError);
  });

  it('parses the secret: arrays of strings (admin keys) and single strings; blanks dropped; anything else refused', () => {
    const keys = (text: string) => parseApiKeys(text, 's').map((k) => k.key);
    expect(keys('["a","","b"]')).toEqual(['a', 'b']);
    expect(keys('"a"')).toEqual(['a']);
    expect(keys('  raw-key \n')).toEqual(['raw-key']);
    expect(parseApiKeys('["a"]', 's')).toEqual([{ name: 'key-ca978112', key: 'a', role: 'admin' }]);
    expect(() => parseApiKeys('{"a":1}', 's')).toThrow(/JSON array/);
    expect(() => parseApiKeys('[1]', 's')).toThrow(/entry \[0\]: must be a string or an object/);
  });

  it('parses keys with a name, a role and a workflow scope, naming the entry and field at fault', () => {
    const text = JSON.stringify([{ name: 'ci', key: 'k-ci', role: 'operate', workflows: ['fulfil'] }, 'k-admin']);
    expect(parseApiKeys(text, 's')).toEqual([
      { name: 'ci', key: 'k-ci', role: 'operate', workflows: ['fulfil'] },
      { name: 'key-7d0035df', key: 'k-admin', role: 'admin' },
    ]);
    const bad = (entry: unknown) => () => parseApiKeys(JSON.stringify([entry]), 's');
    expect(bad({ name: 'ci', key: 'k', role: 'root' })).toThrow(
      /entry \[0\]: role: must be one of read, operate, admin/,
    );
    expect(bad({ name: 'c i', key: 'k', role: 'read' })).toThrow(/entry \[0\]: name: must be 1-64/);
    expect(bad({ name: 'ci', key: '', role: 'read' })).toThrow(/entry \[0\]: key: must be a non-empty string/);
    expect(bad({ name: 'ci', key: 'k', role: 'read', workflows: 'fulfil' })).toThrow(/workflows: must be an array/);
    expect(bad({ name: 'ci', key: 'k', role: 'read', admin: true })).toThrow(/entry \[0\]: admin: unknown field/);
    const twice = JSON.stringify([
      { name: 'ci', key: 'a', role: 'read' },
      { name: 'ci', key: 'b', role: 'read' },
    ]);
    expect(() => parseApiKeys(twice, 's')).toThrow(/entry \[1\]: name: 'ci' is used twice/);
  });
});

// ---- routing -----------------------------------------------------------------

describe('routing', () => {
  it('answers 404 to an unknown route and 405 with allow to a wrong method', async () => {
    const { call } = setup();
    const unknown = await call('GET', '/v2/workflows');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toEqual({ code: 'route_not_found', message: 'no route for GET /v2/workflows' });
    const wrong = await call('DELETE', '/v1/workflows/hello/instances');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST, GET');
    expect(wrong.json.error.code).toBe('method_not_allowed');
  });

  it('tolerates a trailing slash and strips a named stage prefix', async () => {
    const { call } = setup();
    expect((await call('GET', '/v1/workflows/')).status).toBe(200);
    const staged = await call('GET', '/prod/v1/workflows/hello', { stage: 'prod' });
    expect(staged.status).toBe(200);
    expect(staged.json.name).toBe('hello');
  });

  it('answers JSON with content-type application/json, errors included', async () => {
    const { call } = setup();
    for (const r of [
      await call('GET', '/v1/workflows'),
      await call('GET', '/nope'),
      await call('GET', '/v1/workflows', { key: 'x' }),
    ]) {
      expect(r.headers['content-type']).toBe('application/json');
    }
  });
});

// ---- workflows -------------------------------------------------------------------

describe('GET /v1/workflows', () => {
  it('lists the registered workflows with their description, hash, signals and DAG', async () => {
    const { call } = setup();
    const r = await call('GET', '/v1/workflows');
    expect(r.status).toBe(200);
    expect(r.json.items.map((w: { name: string }) => w.name)).toEqual(['fulfil', 'hello', 'signup']);
    const h = r.json.items[1];
    expect(h).toEqual({
      name: 'hello',
      description: 'Greets someone.',
      definitionHash: hello.hash,
      inputSchema: true,
      signals: [],
      dag: JSON.parse(JSON.stringify(describeFlow(hello))),
      retention: RETENTION_DEFAULT_MS,
    });
    expect(r.json.items[0].signals).toEqual(['manager-approval']);
    expect(r.json.items[0].inputSchema).toBe(false);
  });

  it("says how long each workflow's finished runs are kept: its own retention, else the deployment's", async () => {
    const kept = flow<number>('kept', { retention: 'forever' })
      .then('a', (n: number) => n)
      .build();
    const weekly = flow<number>('weekly', { retention: '7d' })
      .then('a', (n: number) => n)
      .build();
    const { call } = setup({ flows: [hello, kept, weekly], retention: 3_600_000 });
    const items = (await call('GET', '/v1/workflows')).json.items as { name: string; retention: unknown }[];
    expect(items.map((w) => [w.name, w.retention])).toEqual([
      ['hello', 3_600_000],
      ['kept', 'forever'],
      ['weekly', 7 * 24 * 3_600_000],
    ]);
    expect((await call('GET', '/v1/workflows/kept')).json.retention).toBe('forever');
  });

  it('serves one workflow, and 404 for an unknown one', async () => {
    const { call } = setup();
    const one = await call('GET', '/v1/workflows/fulfil');
    expect(one.status).toBe(200);
    expect(one.json.definitionHash).toBe(fulfil.hash);
    expect(one.json.dag.steps.map((s: { kind: string }) => s.kind)).toEqual([
      'task',
      'fork',
      'delay',
      'signal',
      'task',
    ]);
    const missing = await call('GET', '/v1/workflows/nope');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('workflow_not_found');
  });
});

// ---- start ---------------------------------------------------------------------------

describe('POST /v1/workflows/{name}/instances', () => {
  it('starts an instance with a generated id and sends the first task to the queue', async () => {
    const { call, store, queue } = setup();
    const r = await start(call, 'hello', { input: { name: 'Ada' } });
    expect(r.status).toBe(201);
    expect(r.json).toEqual({ instanceId: 'gen-1', workflow: 'hello', status: 'RUNNING' });
    const snapshot = (await store.get('gen-1')) as Snapshot;
    expect(snapshot.status).toBe('RUNNING');
    expect((await store.getValues('gen-1', [snapshot.inputId])).get(snapshot.inputId)).toEqual({ name: 'Ada' });
    expect(queue.sent).toHaveLength(1);
    expect(queue.sent[0]).toMatchObject({ instanceId: 'gen-1', workflow: 'hello', key: 'greet', attempt: 1 });
  });

  it('uses crypto.randomUUID when no newId is given', async () => {
    const { call } = setup({ newId: undefined });
    const r = await start(call, 'hello', { input: { name: 'Ada' } });
    expect(r.json.instanceId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('is idempotent with a client id: 409 by default, 200 with useExisting, nothing new dispatched', async () => {
    const { call, queue, store } = setup();
    const first = await start(call, 'fulfil', { input: ORDER, instanceId: 'order:o-1' });
    expect(first.status).toBe(201);
    expect(queue.sent).toHaveLength(1);

    const again = await start(call, 'fulfil', { input: ORDER, instanceId: 'order:o-1' });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('instance_exists');

    const failExplicit = await start(call, 'fulfil', { input: ORDER, instanceId: 'order:o-1', onConflict: 'fail' });
    expect(failExplicit.status).toBe(409);

    const reuse = await start(call, 'fulfil', { input: ORDER, instanceId: 'order:o-1', onConflict: 'useExisting' });
    expect(reuse.status).toBe(200);
    expect(reuse.json).toEqual({ instanceId: 'order:o-1', workflow: 'fulfil', status: 'RUNNING' });

    expect(queue.sent).toHaveLength(1);
    expect(store.instanceIds()).toEqual(['order:o-1']);
    expect((await store.get('order:o-1'))?.version).toBe(0);
  });

  it('refuses useExisting when the id belongs to another workflow', async () => {
    const { call } = setup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'shared-id' });
    const r = await start(call, 'hello', {
      input: { name: 'Ada' },
      instanceId: 'shared-id',
      onConflict: 'useExisting',
    });
    expect(r.status).toBe(409);
    expect(r.json.error.message).toContain("of workflow 'fulfil'");
  });

  it('answers 409 when another start wins the race between the check and the create', async () => {
    const { call, store, deps } = setup();
    // The first read sees nothing; by the create, the id is taken.
    let reads = 0;
    const racing = Object.create(store) as MemoryInstanceStore;
    racing.load = async (id) => (reads++ === 0 ? undefined : store.load(id));
    await start(call, 'hello', { input: { name: 'Ada' }, instanceId: 'raced' });
    const api = makeApi({ ...deps, store: racing });
    const res = await api(
      httpEvent('POST', '/v1/workflows/hello/instances', {
        body: { input: { name: 'Bo' }, instanceId: 'raced', onConflict: 'useExisting' },
      }),
    );
    expect(res.statusCode).toBe(200);
    expect(reads).toBe(2);
  });

  it('stores the value the schema parsed (defaults applied)', async () => {
    const { call, store } = setup();
    const r = await start(call, 'signup', { input: { name: 'Ada', age: 36 } });
    expect(r.status).toBe(201);
    const s = (await store.get(r.json.instanceId)) as Snapshot;
    expect((await store.getValues(s.instanceId, [s.inputId])).get(s.inputId)).toEqual({
      name: 'Ada',
      age: 36,
      plan: 'free',
    });
  });

  describe('rejects bad requests with a 4xx and creates nothing', () => {
    const cases: readonly {
      readonly what: string;
      readonly path?: string;
      readonly init: CallInit;
      readonly status: number;
      readonly code: string;
      readonly message: string | RegExp;
    }[] = [
      {
        what: 'malformed JSON',
        init: { raw: '{"input": ' },
        status: 400,
        code: 'malformed_json',
        message: /malformed JSON/,
      },
      { what: 'an empty body', init: {}, status: 400, code: 'invalid_request', message: /JSON object/ },
      { what: 'an array body', init: { body: [1] }, status: 400, code: 'invalid_request', message: /JSON object/ },
      {
        what: 'a zod violation',
        path: '/v1/workflows/signup/instances',
        init: { body: { input: { name: 42, age: 1 } } },
        status: 400,
        code: 'invalid_input',
        message: 'input.name: Expected string, received number',
      },
      {
        what: 'a nested zod violation',
        path: '/v1/workflows/signup/instances',
        init: { body: { input: { name: 'Ada', age: 1.5, tags: ['a', 7] } } },
        status: 400,
        code: 'invalid_input',
        message: /input\.age: Expected integer.*; input\.tags\[1\]: Expected string/,
      },
      {
        what: 'a missing input under a schema',
        path: '/v1/workflows/signup/instances',
        init: { body: {} },
        status: 400,
        code: 'invalid_input',
        message: /^input: Expected object, received null$/,
      },
      {
        what: 'a violation of a plain parse() schema',
        init: { body: { input: { name: '' } } },
        status: 400,
        code: 'invalid_input',
        message: 'input: name: expected a non-empty string',
      },
      {
        what: 'an id with a space',
        init: { body: { input: { name: 'A' }, instanceId: 'has space' } },
        status: 400,
        code: 'invalid_request',
        message: /^instanceId: /,
      },
      {
        what: 'an id of 129 characters',
        init: { body: { input: { name: 'A' }, instanceId: 'x'.repeat(129) } },
        status: 400,
        code: 'invalid_request',
        message: /^instanceId: /,
      },
      {
        what: 'a numeric id',
        init: { body: { input: { name: 'A' }, instanceId: 42 } },
        status: 400,
        code: 'invalid_request',
        message: /^instanceId: /,
      },
      {
        what: 'a bad onConflict',
        init: { body: { input: { name: 'A' }, onConflict: 'replace' } },
        status: 400,
        code: 'invalid_request',
        message: /^onConflict: /,
      },
      {
        what: 'a misspelt field',
        init: { body: { input: { name: 'A' }, instanceID: 'x' } },
        status: 400,
        code: 'invalid_request',
        message: /^instanceID: unknown field/,
      },
      {
        what: 'an unknown workflow',
        path: '/v1/workflows/nope/instances',
        init: { body: { input: {} } },
        status: 404,
        code: 'workflow_not_found',
        message: "workflow 'nope' is not registered",
      },
    ];
    for (const c of cases) {
      it(c.what, async () => {
        const { call, footprint } = setup();
        const r = await call('POST', c.path ?? '/v1/workflows/hello/instances', c.init);
        expect(r.status).toBe(c.status);
        expect(r.json.error.code).toBe(c.code);
        if (typeof c.message === 'string') expect(r.json.error.message).toBe(c.message);
        else expect(r.json.error.message).toMatch(c.message);
        expect(footprint()).toEqual({ instances: 0, dispatched: 0, values: 0, journal: 0 });
      });
    }
  });

  describe('limits the body size', () => {
    it('answers 413 to a body over maxBodyBytes, counting bytes not characters', async () => {
      const { call, footprint } = setup({ maxBodyBytes: 1024 });
      const ascii = await start(call, 'hello', { input: { name: 'a'.repeat(1100) } });
      expect(ascii.status).toBe(413);
      expect(ascii.json.error.code).toBe('payload_too_large');
      // 600 characters, 1,200 bytes in UTF-8.
      const multibyte = await start(call, 'hello', { input: { name: 'é'.repeat(600) } });
      expect(multibyte.status).toBe(413);
      expect(footprint()).toEqual({ instances: 0, dispatched: 0, values: 0, journal: 0 });
    });

    it('measures a base64 body decoded', async () => {
      const { call, footprint } = setup({ maxBodyBytes: 1024 });
      // ~950 bytes decoded, ~1,270 encoded: accepted.
      const fits = JSON.stringify({ input: { name: 'b'.repeat(930) } });
      const ok = await call('POST', '/v1/workflows/hello/instances', {
        raw: Buffer.from(fits).toString('base64'),
        base64: true,
      });
      expect(ok.status).toBe(201);
      const over = JSON.stringify({ input: { name: 'b'.repeat(1100) } });
      const tooBig = await call('POST', '/v1/workflows/hello/instances', {
        raw: Buffer.from(over).toString('base64'),
        base64: true,
      });
      expect(tooBig.status).toBe(413);
      expect(footprint().instances).toBe(1);
    });

    it('defaults to 5.5 MiB: a 5 MB input is accepted, one over the limit is a 413', async () => {
      const { call, footprint } = setup();
      const ok = await start(call, 'hello', { input: { name: 'c'.repeat(5_000_000) } });
      expect(ok.status).toBe(201);
      const r = await start(call, 'hello', { input: { name: 'c'.repeat(DEFAULT_MAX_BODY_BYTES) } });
      expect(r.status).toBe(413);
      expect(r.json.error.message).toContain(String(DEFAULT_MAX_BODY_BYTES));
      expect(footprint().instances).toBe(1);
    });

    it('answers 413 when the store refuses the input as too large', async () => {
      const store = new MemoryInstanceStore();
      store.create = async () => {
        throw new PayloadTooLargeError('input', 500_000, 400_000);
      };
      const { call, queue } = setup({ store });
      const r = await start(call, 'hello', { input: { name: 'Ada' } });
      expect(r.status).toBe(413);
      expect(r.json.error.message).toBe('input is 500000 bytes, over the limit of 400000 bytes');
      expect(queue.sent).toHaveLength(0);
    });
  });
});

// ---- get instance ------------------------------------------------------------------

describe('GET /v1/instances/{id}', () => {
  it('shows a running instance: tasks in flight, times as ISO strings, no output', async () => {
    const { call } = setup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    const r = await call('GET', '/v1/instances/o-1');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      instanceId: 'o-1',
      workflow: 'fulfil',
      status: 'RUNNING',
      version: 0,
      createdAt: '2025-01-01T00:00:00.000Z',
      updatedAt: '2025-01-01T00:00:00.000Z',
      stepsDone: 0,
      tasks: [{ key: 'charge', attempt: 1, state: 'dispatched' }],
      waits: [],
    });
  });

  it('shows a signal wait', async () => {
    const { call } = setup();
    await start(call, 'signup', { input: { name: 'Ada', age: 36 }, instanceId: 's-1' });
    const r = await call('GET', '/v1/instances/s-1');
    expect(r.json.waits).toEqual([{ key: 'confirm', kind: 'signal', signal: 'confirmed' }]);
    expect(r.json.tasks).toEqual([]);
  });

  it('returns the output of a completed run, read from the store', async () => {
    const { call, store } = setup();
    const run = await runWorkflow(hello, { name: 'Ada' }, { store, instanceId: 'done-1' });
    expect(run.status).toBe('COMPLETED');
    const r = await call('GET', '/v1/instances/done-1');
    expect(r.status).toBe(200);
    expect(r.json.status).toBe('COMPLETED');
    expect(r.json.output).toEqual({ greeting: 'Hello, Ada!' });
    expect(r.json.tasks).toEqual([]);
  });

  it('returns the error of a failed run', async () => {
    const { call, store } = setup();
    const run = await runWorkflow(fulfil, { ...ORDER, items: [] }, { store, instanceId: 'bad-order' });
    expect(run.status).toBe('FAILED');
    const r = await call('GET', '/v1/instances/bad-order');
    expect(r.json.status).toBe('FAILED');
    expect(r.json.error).toMatchObject({ name: 'TerminalError', message: 'order has no items' });
    expect(r.json).not.toHaveProperty('output');
  });

  it('answers 404 for an unknown instance', async () => {
    const { call } = setup();
    const r = await call('GET', '/v1/instances/nope');
    expect(r.status).toBe(404);
    expect(r.json.error).toEqual({ code: 'instance_not_found', message: "instance 'nope' not found" });
  });
});

// ---- get instance, waiting ---------------------------------------------------------

/** One task, then a signal wait, then one more task. */
const gated = flow<number>('gated')
  .then('prepare', (n) => n + 1)
  .waitForSignal<{ ok: boolean }>('approval', 'approved')
  .then('finish', (a) => a?.ok === true)
  .build();

/** A signal wait beside a task in another branch. */
const beside = flow<number>('beside')
  .fork([
    branch('ask', flow<number>('ask').waitForSignal<boolean>('approval', 'approved').build()),
    branch('work', (n: number) => n * 2),
  ])
  .join('both', ([ok, n]) => ({ ok, n }))
  .build();

/**
 * Moves the fake clock from one wake-up to the next until `answer` settles.
 * Fails, leaving the request pending, when the next wake-up is after `limit`.
 */
async function answeredBy<T>(clock: FakeClock, answer: Promise<T>, limit: number): Promise<T> {
  let settled = false;
  answer.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let idle = 0; ; ) {
    await new Promise((r) => setImmediate(r));
    if (settled) return answer;
    const next = clock.nextWake();
    if (next === undefined) {
      if (++idle > 1000) throw new Error('the request neither answered nor slept');
      continue;
    }
    if (next > limit) throw new Error(`still waiting at ${new Date(limit).toISOString()}`);
    clock.advanceTo(next);
  }
}

describe('GET /v1/instances/{id}?wait=', () => {
  const waitSetup = () => setup({ flows: [...workflows, signup, gated, beside] });

  it('answers as soon as the run completes, with its output, long before the wait ends', async () => {
    const { call, store, queue, clock } = waitSetup();
    await start(call, 'hello', { input: { name: 'Ada' }, instanceId: 'h-1' });
    const t0 = clock.now();
    const answer = call('GET', '/v1/instances/h-1', { query: { wait: '20' } });
    await expect(answeredBy(clock, answer, t0 + 1000)).rejects.toThrow('still waiting');
    expect(queue.sent.map((d) => d.key)).toEqual(['greet']);
    // A worker elsewhere runs the task meanwhile.
    expect((await (await resumeWorkflow(hello, 'h-1', { store })).result()).status).toBe('COMPLETED');
    const r = await answeredBy(clock, answer, t0 + 1250);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ status: 'COMPLETED', output: { greeting: 'Hello, Ada!' }, tasks: [] });
  });

  it('answers when the run starts waiting for a signal alone, naming it in waitingFor', async () => {
    const { call, store, queue, clock } = waitSetup();
    await start(call, 'gated', { input: 1, instanceId: 'g-1' });
    const t0 = clock.now();
    const answer = call('GET', '/v1/instances/g-1', { query: { wait: '20' } });
    await expect(answeredBy(clock, answer, t0 + 1000)).rejects.toThrow('still waiting');
    expect(queue.sent.map((d) => d.key)).toEqual(['prepare']);
    expect((await (await resumeWorkflow(gated, 'g-1', { store })).result()).status).toBe('RUNNING');
    const r = await answeredBy(clock, answer, t0 + 1250);
    expect(r.status).toBe(200);
    expect(r.json.status).toBe('RUNNING');
    expect(r.json.tasks).toEqual([]);
    expect(r.json.waits).toEqual([{ key: 'approval', kind: 'signal', signal: 'approved' }]);
    expect(r.json.waitingFor).toEqual(['approved']);
  });

  it('answers at the deadline with the current RUNNING view, polling with a backoff', async () => {
    const { call, clock } = waitSetup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    const sleeps = vi.spyOn(clock, 'sleep');
    const t0 = clock.now();
    const answer = call('GET', '/v1/instances/o-1', { query: { wait: '2' } });
    await expect(answeredBy(clock, answer, t0 + 1999)).rejects.toThrow('still waiting');
    const r = await answeredBy(clock, answer, t0 + 2000);
    expect(r.status).toBe(200);
    expect(r.json.status).toBe('RUNNING');
    expect(r.json.tasks).toEqual([{ key: 'charge', attempt: 1, state: 'dispatched' }]);
    expect(r.json).not.toHaveProperty('waitingFor');
    // 10 ms plus a quarter of the time waited: about 20 pauses in 2 s, not one per 10 ms; the last one ends at the deadline.
    expect(sleeps.mock.calls.length).toBeGreaterThan(2);
    expect(sleeps.mock.calls.length).toBeLessThanOrEqual(25);
    expect(sleeps.mock.calls.every(([ms]) => ms > 0 && ms <= 250)).toBe(true);
  });

  it('keeps waiting on a signal wait while another branch still has a task in flight', async () => {
    const { call, clock } = waitSetup();
    await start(call, 'beside', { input: 3, instanceId: 'b-1' });
    const t0 = clock.now();
    const answer = call('GET', '/v1/instances/b-1', { query: { wait: '1' } });
    await expect(answeredBy(clock, answer, t0 + 999)).rejects.toThrow('still waiting');
    const r = await answeredBy(clock, answer, t0 + 1000);
    expect(r.json.status).toBe('RUNNING');
    expect(r.json.waits).toEqual([{ key: 'ask/approval', kind: 'signal', signal: 'approved' }]);
    expect(r.json.tasks.map((t: { key: string }) => t.key)).toEqual(['work']);
    expect(r.json).not.toHaveProperty('waitingFor');
  });

  it('answers at once, without sleeping, for a finished or paused run, a run waiting for a signal, and wait=0', async () => {
    const { call, store, clock } = waitSetup();
    await runWorkflow(hello, { name: 'Ada' }, { store, instanceId: 'done-1' });
    await start(call, 'fulfil', { input: ORDER, instanceId: 'paused-1' });
    await call('POST', '/v1/instances/paused-1/pause');
    await start(call, 'signup', { input: { name: 'Ada', age: 36 }, instanceId: 's-1' });
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    const t0 = clock.now();
    const cases = [
      ['done-1', '25', 'COMPLETED'],
      ['paused-1', '25', 'PAUSED'],
      ['s-1', '25', 'RUNNING'],
      ['o-1', '0', 'RUNNING'],
    ] as const;
    for (const [id, wait, status] of cases) {
      const r = await answeredBy(clock, call('GET', `/v1/instances/${id}`, { query: { wait } }), t0);
      expect(r.status, id).toBe(200);
      expect(r.json.status, id).toBe(status);
    }
    expect(clock.now()).toBe(t0);
  });

  it('answers 400 naming wait and its bounds to a value that is not 0 to 25 seconds', async () => {
    const { call, store } = waitSetup();
    await runWorkflow(hello, { name: 'Ada' }, { store, instanceId: 'done-1' });
    for (const wait of ['-1', '26', '25.5', '', 'abc', ' 5', '1e1', 'Infinity', 'NaN', '0x10', '5s']) {
      const r = await call('GET', '/v1/instances/done-1', { query: { wait } });
      expect(r.status, `wait=${wait}`).toBe(400);
      expect(r.json.error).toEqual({
        code: 'invalid_request',
        message: 'wait: must be a number of seconds from 0 to 25',
      });
    }
    for (const wait of ['0', '0.5', '25', '25.0']) {
      expect((await call('GET', '/v1/instances/done-1', { query: { wait } })).status, `wait=${wait}`).toBe(200);
    }
  });

  it('answers 404 at once for an unknown instance', async () => {
    const { call, clock } = waitSetup();
    const r = await answeredBy(clock, call('GET', '/v1/instances/nope', { query: { wait: '10' } }), clock.now());
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('instance_not_found');
  });
});

// ---- list ---------------------------------------------------------------------

describe('GET /v1/workflows/{name}/instances', () => {
  async function fiveHellos() {
    const t = setup();
    for (let i = 0; i < 5; i++) {
      await start(t.call, 'hello', { input: { name: `n${i}` }, instanceId: `h-${i}` });
      t.clock.advance(1000);
    }
    await start(t.call, 'fulfil', { input: ORDER, instanceId: 'not-a-hello' });
    return t;
  }

  it('pages through 5 instances 2 at a time, returning each exactly once', async () => {
    const { call } = await fiveHellos();
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await call('GET', '/v1/workflows/hello/instances', {
        query: { limit: '2', ...(cursor ? { cursor } : {}) },
      });
      expect(r.status).toBe(200);
      sizes.push(r.json.items.length);
      seen.push(...r.json.items.map((i: { instanceId: string }) => i.instanceId));
      cursor = r.json.cursor;
      if (!cursor) break;
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect([...seen].sort()).toEqual(['h-0', 'h-1', 'h-2', 'h-3', 'h-4']);
    // Newest first.
    expect(seen[0]).toBe('h-4');
  });

  it('shows summaries with ISO times, and filters by status', async () => {
    const { call } = await fiveHellos();
    expect((await call('POST', '/v1/instances/h-2/cancel')).status).toBe(200);
    const cancelled = await call('GET', '/v1/workflows/hello/instances', { query: { status: 'CANCELLED' } });
    expect(cancelled.json).toEqual({
      items: [
        {
          instanceId: 'h-2',
          workflow: 'hello',
          status: 'CANCELLED',
          createdAt: '2025-01-01T00:00:02.000Z',
          updatedAt: '2025-01-01T00:00:05.000Z',
        },
      ],
    });
    const running = await call('GET', '/v1/workflows/hello/instances', { query: { status: 'RUNNING' } });
    expect(running.json.items).toHaveLength(4);
  });

  it('answers 400 naming a bad status or limit, and 404 for an unknown workflow', async () => {
    const { call } = setup();
    const bad = await call('GET', '/v1/workflows/hello/instances', { query: { status: 'running' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/^status: /);
    for (const limit of ['0', '101', 'abc', '2.5', '-1', '']) {
      const r = await call('GET', '/v1/workflows/hello/instances', { query: { limit } });
      expect(r.status, `limit=${limit}`).toBe(400);
      expect(r.json.error.message).toMatch(/^limit: /);
    }
    expect((await call('GET', '/v1/workflows/hello/instances', { query: { limit: '100' } })).status).toBe(200);
    expect((await call('GET', '/v1/workflows/nope/instances')).status).toBe(404);
  });

  it('answers 400 naming the cursor for a bad cursor or one of another listing, and a good one reads page 2', async () => {
    const { call } = await fiveHellos();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'another-fulfil' });
    const fulfils = await call('GET', '/v1/workflows/fulfil/instances', { query: { limit: '1' } });
    const running = await call('GET', '/v1/workflows/hello/instances', { query: { status: 'RUNNING', limit: '1' } });
    expect(fulfils.json.cursor).toBeTypeOf('string');
    expect(running.json.cursor).toBeTypeOf('string');
    for (const cursor of ['garbage', 'e30', 'W10', running.json.cursor, fulfils.json.cursor]) {
      const r = await call('GET', '/v1/workflows/hello/instances', { query: { cursor } });
      expect(r.status, `cursor=${cursor}`).toBe(400);
      expect(r.json.error.code).toBe('invalid_request');
      expect(r.json.error.message).toMatch(
        /^cursor: (is not a cursor returned by a previous page|does not belong to this listing)$/,
      );
    }
    const first = await call('GET', '/v1/workflows/hello/instances', { query: { limit: '3' } });
    const second = await call('GET', '/v1/workflows/hello/instances', {
      query: { limit: '3', cursor: first.json.cursor },
    });
    expect(second.status).toBe(200);
    expect(second.json.items.map((i: { instanceId: string }) => i.instanceId)).toEqual(['h-1', 'h-0']);
    expect(second.json.cursor).toBeUndefined();
  });
});

describe('GET /v1/instances/{id}/history', () => {
  async function twoHistories() {
    const t = setup();
    for (const id of ['h-1', 'h-2']) {
      // run-started, then three signals: four history entries, each from its commit.
      await start(t.call, 'fulfil', { input: ORDER, instanceId: id });
      for (let i = 0; i < 3; i++) {
        await t.call('POST', `/v1/instances/${id}/signals/manager-approval`, { body: { ok: true } });
      }
    }
    return t;
  }

  it('answers 400 naming the cursor for a bad cursor or one of another instance', async () => {
    const { call } = await twoHistories();
    const other = await call('GET', '/v1/instances/h-2/history', { query: { limit: '1' } });
    const listing = await call('GET', '/v1/workflows/fulfil/instances', { query: { limit: '1' } });
    expect(other.json.cursor).toBeTypeOf('string');
    for (const cursor of ['garbage', 'e30', 'W10', other.json.cursor, listing.json.cursor]) {
      const r = await call('GET', '/v1/instances/h-1/history', { query: { cursor } });
      expect(r.status, `cursor=${cursor}`).toBe(400);
      expect(r.json.error.code).toBe('invalid_request');
      expect(r.json.error.message).toMatch(
        /^cursor: (is not a cursor returned by a previous page|does not belong to this listing)$/,
      );
    }
  });

  it('reads only what followed a version with ?after=, and refuses a bad one or one with a cursor', async () => {
    const { call } = await twoHistories();
    const versions = (r: Reply) => r.json.items.map((e: { version: number }) => e.version);
    expect(versions(await call('GET', '/v1/instances/h-1/history', { query: { after: '1' } }))).toEqual([2, 3]);
    expect(versions(await call('GET', '/v1/instances/h-1/history', { query: { after: '3' } }))).toEqual([]);
    const paged = await call('GET', '/v1/instances/h-1/history', { query: { after: '0', limit: '2' } });
    expect(versions(paged)).toEqual([1, 2]);
    const rest = await call('GET', '/v1/instances/h-1/history', { query: { limit: '2', cursor: paged.json.cursor } });
    expect(versions(rest)).toEqual([3]);
    for (const after of ['-1', '1.5', 'x', '', '99999999999999999']) {
      const r = await call('GET', '/v1/instances/h-1/history', { query: { after } });
      expect(r.status, `after=${after}`).toBe(400);
      expect(r.json.error.message).toMatch(/^after: /);
    }
    const both = await call('GET', '/v1/instances/h-1/history', { query: { after: '1', cursor: paged.json.cursor } });
    expect(both.status).toBe(400);
    expect(both.json.error.message).toMatch(/^after: not with a cursor/);
  });

  it('pages with the cursor it returned', async () => {
    const { call } = await twoHistories();
    const first = await call('GET', '/v1/instances/h-1/history', { query: { limit: '2' } });
    expect(first.status).toBe(200);
    const second = await call('GET', '/v1/instances/h-1/history', { query: { limit: '2', cursor: first.json.cursor } });
    expect(second.status).toBe(200);
    const typesOf = (r: Reply) => r.json.items.map((e: { type: string; version: number }) => [e.type, e.version]);
    expect(typesOf(first)).toEqual([
      ['run-started', 0],
      ['signal-received', 1],
    ]);
    expect(typesOf(second)).toEqual([
      ['signal-received', 2],
      ['signal-received', 3],
    ]);
    expect(second.json.cursor).toBeUndefined();
  });
});

// ---- signals ----------------------------------------------------------------------

describe('POST /v1/instances/{id}/signals/{signal}', () => {
  it('buffers a signal sent before the wait is reached', async () => {
    const { call, store, queue } = setup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    const r = await call('POST', '/v1/instances/o-1/signals/manager-approval', { body: { ok: true } });
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ instanceId: 'o-1', signal: 'manager-approval', status: 'RUNNING' });
    const s = (await store.get('o-1')) as Snapshot;
    // The payload is committed with the signal, in journal entry 1.
    expect(s.signals['manager-approval']).toEqual(['j:1']);
    expect((await store.getValues('o-1', ['j:1'])).get('j:1')).toEqual({ ok: true });
    expect(queue.sent.map((d) => d.key)).toEqual(['charge']);
  });

  it('resumes a waiting run and dispatches its next task', async () => {
    const { call, queue } = setup();
    await start(call, 'signup', { input: { name: 'Ada', age: 36 }, instanceId: 's-1' });
    expect(queue.sent).toHaveLength(0);
    const r = await call('POST', '/v1/instances/s-1/signals/confirmed', { body: { ok: true } });
    expect(r.status).toBe(202);
    expect(queue.sent.map((d) => d.key)).toEqual(['welcome']);
    const view = await call('GET', '/v1/instances/s-1');
    expect(view.json.waits).toEqual([]);
    expect(view.json.tasks).toEqual([{ key: 'welcome', attempt: 1, state: 'dispatched' }]);
  });

  it('delivers null for an empty body', async () => {
    const { call, store } = setup();
    await start(call, 'signup', { input: { name: 'Ada', age: 36 }, instanceId: 's-1' });
    expect((await call('POST', '/v1/instances/s-1/signals/confirmed')).status).toBe(202);
    expect((await store.getValues('s-1', ['j:1'])).get('j:1')).toBeNull();
  });

  it('answers 409 for a finished instance and stores nothing', async () => {
    const { call, footprint } = setup();
    await start(call, 'signup', { input: { name: 'Ada', age: 36 }, instanceId: 's-1' });
    expect((await call('POST', '/v1/instances/s-1/cancel')).status).toBe(200);
    const before = footprint();
    const r = await call('POST', '/v1/instances/s-1/signals/confirmed', { body: { ok: true } });
    expect(r.status).toBe(409);
    expect(r.json.error).toEqual({ code: 'instance_finished', message: "instance 's-1' is CANCELLED" });
    expect(footprint()).toEqual(before);
  });

  it('answers 404 for a signal the workflow never waits for, an unknown instance; 400 for bad JSON', async () => {
    const { call, footprint } = setup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    const before = footprint();
    const unknownSignal = await call('POST', '/v1/instances/o-1/signals/manager-aproval', { body: {} });
    expect(unknownSignal.status).toBe(404);
    expect(unknownSignal.json.error.code).toBe('signal_not_found');
    const unknownInstance = await call('POST', '/v1/instances/nope/signals/manager-approval', { body: {} });
    expect(unknownInstance.status).toBe(404);
    expect(unknownInstance.json.error.code).toBe('instance_not_found');
    const badJson = await call('POST', '/v1/instances/o-1/signals/manager-approval', { raw: '{ok: true}' });
    expect(badJson.status).toBe(400);
    expect(badJson.json.error.code).toBe('malformed_json');
    expect(footprint()).toEqual(before);
    expect(((await call('GET', '/v1/instances/o-1')).json as { version: number }).version).toBe(0);
  });
});

// ---- cancel / pause / resume ---------------------------------------------------------

describe('cancel, pause and resume', () => {
  it('cancels with a reason, then refuses a second cancel with 409', async () => {
    const { call } = setup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    const r = await call('POST', '/v1/instances/o-1/cancel', { body: { reason: 'customer asked' } });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ instanceId: 'o-1', workflow: 'fulfil', status: 'CANCELLED' });
    const view = await call('GET', '/v1/instances/o-1');
    expect(view.json.error).toEqual({ name: 'Cancelled', message: 'customer asked' });
    expect(view.json.tasks).toEqual([]);
    const again = await call('POST', '/v1/instances/o-1/cancel');
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('instance_finished');
  });

  it('refuses a bad cancel body with 400 and leaves the run alone', async () => {
    const { call, store } = setup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    for (const body of [{ reason: 7 }, { why: 'x' }, ['x']]) {
      const r = await call('POST', '/v1/instances/o-1/cancel', { body });
      expect(r.status).toBe(400);
    }
    expect((await store.get('o-1'))?.status).toBe('RUNNING');
  });

  it('pauses a running instance and resumes a paused one; other transitions are 409', async () => {
    const { call } = setup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    expect((await call('POST', '/v1/instances/o-1/resume')).status).toBe(409);
    const paused = await call('POST', '/v1/instances/o-1/pause');
    expect(paused.status).toBe(200);
    expect(paused.json.status).toBe('PAUSED');
    const pausedAgain = await call('POST', '/v1/instances/o-1/pause');
    expect(pausedAgain.status).toBe(409);
    expect(pausedAgain.json.error).toEqual({
      code: 'invalid_transition',
      message: "cannot pause instance 'o-1': it is PAUSED, not RUNNING",
    });
    const resumed = await call('POST', '/v1/instances/o-1/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.json.status).toBe('RUNNING');
    expect((await call('POST', '/v1/instances/o-1/resume')).status).toBe(409);
    expect((await call('POST', '/v1/instances/o-1/cancel')).status).toBe(200);
    expect((await call('POST', '/v1/instances/o-1/pause')).status).toBe(409);
    expect((await call('POST', '/v1/instances/o-1/resume')).status).toBe(409);
  });

  it('dispatches the tasks held while paused when resumed', async () => {
    const { call, store, queue, clock } = setup();
    await start(call, 'fulfil', { input: ORDER, instanceId: 'o-1' });
    const first = queue.sent[0];
    expect(first?.key).toBe('charge');
    await call('POST', '/v1/instances/o-1/pause');
    // A worker picked the task up while paused and handed it back.
    await applyEvent(
      store,
      fulfil,
      'o-1',
      { type: 'task-held', key: 'charge', attempt: 1 },
      { now: () => clock.now() },
    );
    expect((await call('GET', '/v1/instances/o-1')).json.tasks).toEqual([
      { key: 'charge', attempt: 1, state: 'ready' },
    ]);
    await call('POST', '/v1/instances/o-1/resume');
    expect(queue.sent.map((d) => d.key)).toEqual(['charge', 'charge']);
    expect((await call('GET', '/v1/instances/o-1')).json.tasks).toEqual([
      { key: 'charge', attempt: 1, state: 'dispatched' },
    ]);
  });

  it('answers 404 for an unknown instance or a workflow no longer registered, 409 for another definition', async () => {
    const t = setup();
    await start(t.call, 'hello', { input: { name: 'Ada' }, instanceId: 'h-1' });
    expect((await t.call('POST', '/v1/instances/nope/pause')).status).toBe(404);

    const retired = makeApi({ ...t.deps, registry: new WorkflowRegistry([fulfil]) });
    const gone = await retired(httpEvent('POST', '/v1/instances/h-1/cancel'));
    expect(gone.statusCode).toBe(404);
    expect(JSON.parse(gone.body ?? '').error.code).toBe('workflow_not_found');

    const reshaped = flow<{ name: string }>('hello')
      .then('greet', () => 1)
      .then('again', () => 2)
      .build();
    const changed = makeApi({ ...t.deps, registry: new WorkflowRegistry([reshaped]) });
    const mismatch = await changed(httpEvent('POST', '/v1/instances/h-1/cancel'));
    expect(mismatch.statusCode).toBe(409);
    expect(JSON.parse(mismatch.body ?? '').error.code).toBe('definition_mismatch');
    expect((await t.store.get('h-1'))?.status).toBe('RUNNING');
  });
});
