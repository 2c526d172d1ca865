import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryDeadLetterStore } from '../../../shared/adapters/memory/dead-letter-store.ts';
import { flow, MemoryInstanceStore, runWorkflow } from '../../../shared/index.ts';
import { hello } from '../../../workflows/hello.ts';
import { workflows } from '../../../workflows/index.ts';
import { KEY, setup } from '../../support/api-harness.ts';

/**
 * The HTTP API under random requests: every answer is a success or a 4xx,
 * never a 5xx, and an answer of 4xx leaves the store and the queue exactly
 * as they were.
 */

const gated = flow<number>('gated', { signalBuffer: 3 })
  .waitForSignal<number>('gate', 'open')
  .then('work', (n: number) => n + 1)
  .build();

const ODD_SEGMENTS = [
  'hello',
  'gated',
  'fulfil',
  'g-1',
  'h-1',
  'nope',
  '.',
  '..',
  '',
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '%2F',
  '%00',
  '%E0%A4%A',
  '%',
  'x'.repeat(2_100),
  'é',
  'default',
  'open',
  'work',
  'gate',
  'greet',
];

const segment = fc.oneof(fc.constantFrom(...ODD_SEGMENTS), fc.string({ maxLength: 12 }).map(encodeURIComponent));

const STRUCTURE = [
  ['v1', 'workflows'],
  ['v1', 'workflows', '*'],
  ['v1', 'workflows', '*', 'instances'],
  ['v1', 'instances', '*'],
  ['v1', 'instances', '*', 'history'],
  ['v1', 'instances', '*', 'cancel'],
  ['v1', 'instances', '*', 'pause'],
  ['v1', 'instances', '*', 'resume'],
  ['v1', 'instances', '*', 'signals', '*'],
  ['v1', 'instances', '*', 'tasks', '*', 'retry'],
  ['v1', 'instances', '*', 'tasks', '*', 'skip'],
  ['v1', 'dlq', '*'],
  ['v1', 'dlq', '*', 'redrive'],
] as const;

const path = fc.oneof(
  fc.tuple(fc.constantFrom(...STRUCTURE), fc.array(segment, { minLength: 3, maxLength: 3 })).map(([shape, fill]) => {
    let i = 0;
    return `/${shape.map((s) => (s === '*' ? (fill[i++] ?? 'x') : s)).join('/')}`;
  }),
  fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join('/')}`),
  fc.constantFrom('//evil.example/v1/workflows', '/v1/instances//history', '/', '/v1', '/v1/'),
);

function deep(n: number): string {
  return `${'['.repeat(n)}${']'.repeat(n)}`;
}

const json = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v));
const body = fc.oneof(
  fc.constant(undefined),
  json,
  fc.record({ input: fc.jsonValue({ maxDepth: 3 }), instanceId: segment }).map((v) => JSON.stringify(v)),
  fc.record({ output: fc.jsonValue({ maxDepth: 2 }) }).map((v) => JSON.stringify(v)),
  fc.record({ reason: fc.oneof(fc.string(), fc.integer()) }).map((v) => JSON.stringify(v)),
  fc.record({ instanceId: fc.oneof(segment, fc.integer()), taskKey: segment }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{', '[1,', 'null', '"x"', '{"__proto__":{"x":1}}', '{"constructor":1}', deep(100_000), deep(70)),
  fc.string({ maxLength: 20 }),
);

const query = fc.dictionary(
  fc.constantFrom('limit', 'cursor', 'status', 'wait', 'x'),
  fc.oneof(
    fc.constantFrom('0', '-1', '1', '25', '26', '1e9', 'NaN', 'garbage', 'e30', 'W10', 'RUNNING', 'running', ''),
    fc.string({ maxLength: 10 }),
  ),
  { maxKeys: 3 },
);

const headers = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'text/plain', 'multipart/form-data', 'application/x+json', ''),
    'idempotency-key': fc.oneof(fc.constantFrom('', ' ', 'k'.repeat(300)), fc.string({ maxLength: 8 })),
    'x-api-key': fc.constantFrom(KEY, KEY, KEY, 'wrong', ''),
  },
  { requiredKeys: [] },
);

const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
  path,
  query,
  headers,
  body,
  base64: fc.boolean(),
});

describe('the HTTP API under random requests', () => {
  it('answers every request with a success or a 4xx, and a 4xx changes nothing', async () => {
    const store = new MemoryInstanceStore();
    await runWorkflow(hello, { name: 'Ada' }, { store, instanceId: 'h-1' });
    const { call, queue } = setup({ store, flows: [...workflows, gated], deadLetters: new MemoryDeadLetterStore() });
    await call('POST', '/v1/workflows/gated/instances', { body: { input: 1, instanceId: 'g-1' } });
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const before = store.dump();
        const sent = queue.sent.length;
        const { 'x-api-key': key, ...rest } = r.headers;
        const res = await call(r.method, r.path, {
          ...(r.body === undefined ? {} : { raw: r.base64 ? Buffer.from(r.body).toString('base64') : r.body }),
          base64: r.base64 && r.body !== undefined,
          headers: rest,
          key: key === undefined ? null : key,
          query: r.query,
        });
        const status = res.status ?? 0;
        expect(status, `${r.method} ${r.path.slice(0, 200)} -> ${JSON.stringify(res.json).slice(0, 300)}`).toBeLessThan(
          500,
        );
        if (status >= 400) {
          rejected++;
          expect(res.json.error.code).toBeTypeOf('string');
          expect(store.dump()).toBe(before);
          expect(queue.sent.length).toBe(sent);
        }
      }),
      { numRuns: 1_500, seed: 42 },
    );
    // The generator reaches past the error paths too.
    expect(rejected).toBeGreaterThan(100);
    expect(rejected).toBeLessThan(1_500);
  }, 120_000);
});
