import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { branch, flow, task } from '../../shared/index.ts';
import type { TaskReport } from '../../shared/runtime/worker.ts';
import { workflows as examples } from '../../workflows/index.ts';
import { apiClient, waitFor } from '../support/local-api.ts';

const spans: Record<string, [number, number]> = {};
const sleepy = (name: string) =>
  task(name, async (n: number) => {
    const start = Date.now();
    await new Promise((r) => setTimeout(r, 400));
    spans[name] = [start, Date.now()];
    return `${name}:${n}`;
  });
const parallel = flow<number>('parallel')
  .fork([branch('left', sleepy('left')), branch('right', sleepy('right'))])
  .join('both', ([l, r]) => [l, r])
  .build();

const executions = new Map<string, number>();
const counted = (id: string) =>
  task(id, (n: number, ctx) => {
    const k = `${ctx.instanceId}/${ctx.taskKey}`;
    executions.set(k, (executions.get(k) ?? 0) + 1);
    return n + 1;
  });
const gapped = flow<number>('gapped').then(counted('one')).delay('gap', '1500ms').then(counted('two')).build();

const workflows = [...examples, parallel, gapped];

describe.each([
  { backend: 'embedded', emulateAws: false },
  { backend: 'AWS emulation (real wire protocols)', emulateAws: true },
])('the local stack on the $backend back end', ({ emulateAws }) => {
  let dir: string;
  let stack: LocalStack;
  let call: ReturnType<typeof apiClient>;
  const reports: TaskReport[] = [];
  const start = () =>
    startLocalStack({
      emulateAws,
      dataDir: dir,
      workflows,
      reaperIntervalMs: 200,
      redispatchAfterMs: 1_000,
      claims: { reserveTtlMs: 1_000, leaseMs: 3_000, heartbeatMs: 500 },
      onTask: (r) => reports.push(r),
    });

  beforeAll(async () => {
    executions.clear();
    dir = await mkdtemp(join(tmpdir(), 'sayiir-stack-'));
    stack = await start();
    call = apiClient(stack);
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const finished = (id: string) =>
    waitFor(
      async () => {
        const r = await call('GET', `/instances/${id}`);
        return r.json?.status !== 'RUNNING' ? r.json : undefined;
      },
      20_000,
      `instance ${id} to finish`,
    );

  it('runs hello started through HTTP', async () => {
    const started = await call('POST', '/workflows/hello/instances', { input: { name: 'Ada' } });
    expect(started.status).toBe(201);
    const done = await finished(started.json.instanceId);
    expect(done).toMatchObject({ status: 'COMPLETED', output: { greeting: 'Hello, Ada!' } });
  });

  it('runs the order flow: a retried charge, fork/join, a delay and a signal', async () => {
    const order = { orderId: 'o-1', customer: 'ada', items: [{ sku: 'a', qty: 2, price: 5 }], flakyPayments: 1 };
    const started = await call('POST', '/workflows/fulfil/instances', { input: order, instanceId: 'order-1' });
    expect(started.status).toBe(201);
    await waitFor(async () => {
      const r = await call('GET', '/instances/order-1');
      return r.json.waits?.some((w: { key: string }) => w.key === 'approve') ? true : undefined;
    });
    const sent = await call('POST', '/instances/order-1/signals/manager-approval', { ok: true });
    expect(sent.status).toBe(202);
    const done = await finished('order-1');
    expect(done).toMatchObject({ status: 'COMPLETED', output: { approved: true } });
    const charges = reports.filter((r) => r.dispatch.instanceId === 'order-1' && r.dispatch.key === 'charge');
    expect(charges.map((r) => r.outcome)).toEqual(['failed', 'completed']);
    // The delay held the run for its duration (2 s) between the join and the wait.
    // The worker reports a task after its checkpoint (and claim release): wait for the report.
    const done2 = await waitFor(async () =>
      reports.find((r) => r.dispatch.instanceId === 'order-1' && r.dispatch.key === 'close'),
    );
    expect(done2?.outcome).toBe('completed');
  });

  it('runs fork branches at the same time', async () => {
    const started = await call('POST', '/workflows/parallel/instances', { input: 7 });
    const done = await finished(started.json.instanceId);
    expect(done.output).toEqual(['left:7', 'right:7']);
    const [l, r] = [spans.left, spans.right] as [[number, number], [number, number]];
    expect(Math.max(l[0], r[0])).toBeLessThan(Math.min(l[1], r[1]));
  });

  it('rejects bad requests with the right status and creates nothing', async () => {
    const before = (await call('GET', '/workflows/hello/instances?limit=100')).json.items.length;
    // biome-ignore lint/suspicious/noExplicitAny: responses are read loosely
    const cases: [Promise<{ status: number; json: any }>, number, RegExp][] = [
      [call('POST', '/workflows/hello/instances', undefined, { raw: '{"input": {' }), 400, /malformed JSON/i],
      [call('POST', '/workflows/nope/instances', { input: {} }), 404, /nope/],
      [call('POST', '/workflows/hello/instances', { input: { name: 5 } }), 400, /name/],
      [call('POST', '/workflows/hello/instances', { input: { name: 'x' } }, { key: null }), 401, /API key/],
      [call('POST', '/workflows/hello/instances', { input: { name: 'x' } }, { key: 'wrong' }), 401, /API key/],
      [call('POST', '/workflows/hello/instances', { input: { name: 'x'.repeat(6_000_000) } }), 413, /bytes|large/i],
    ];
    for (const [p, status, message] of cases) {
      const r = await p;
      expect(r.status).toBe(status);
      expect(r.json.error.message).toMatch(message);
    }
    const after = (await call('GET', '/workflows/hello/instances?limit=100')).json.items.length;
    expect(after).toBe(before);
  });

  it('survives a stop between two tasks: restarted on the same data, the run completes, each task committed once', async () => {
    const started = await call('POST', '/workflows/gapped/instances', { input: 1, instanceId: 'gap-1' });
    expect(started.status).toBe(201);
    await waitFor(async () => ((await call('GET', '/instances/gap-1')).json.waits?.length ? true : undefined));
    await stack.stop();
    // Also lose a dispatch in flight: start a run and stop before any worker can take it.
    stack = await start();
    call = apiClient(stack);
    const lost = await call('POST', '/workflows/gapped/instances', { input: 10, instanceId: 'gap-2' });
    expect(lost.status).toBe(201);
    await stack.stop();
    stack = await start();
    call = apiClient(stack);
    expect(await finished('gap-1')).toMatchObject({ status: 'COMPLETED', output: 3 });
    expect(await finished('gap-2')).toMatchObject({ status: 'COMPLETED', output: 12 });
    for (const id of ['gap-1', 'gap-2']) {
      for (const key of ['one', 'two']) expect(executions.get(`${id}/${key}`), `${id}/${key}`).toBe(1);
    }
    // Each task is committed by exactly one journal entry (put on condition that its seq is free).
    const history = (await call('GET', '/instances/gap-1/history')).json.items as { type: string; key?: string }[];
    const completed = history.filter((e) => e.type === 'task-completed').map((e) => e.key);
    expect(completed).toEqual(['one', 'two']);
  });
});
