import { describe, expect, it } from 'vitest';
import { branch, flow, LoopResult, runWorkflow, task } from '../../../shared/index.ts';
import { hello } from '../../../workflows/hello.ts';
import { fulfil, type Order } from '../../../workflows/order.ts';
import { MeasuringStore } from '../../support/measuring-store.ts';

describe('every construct runs end to end in-process', () => {
  it('runs the hello example', async () => {
    const r = await runWorkflow(hello, { name: 'Ada' });
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual({ greeting: 'Hello, Ada!' });
  });

  it('runs a nested fork inside a branch, joining in branch order', async () => {
    const inner = flow<number>('inner')
      .fork([branch('x', (n: number) => n + 1), branch('y', async (n: number) => n + 2)])
      .join('inner-join', ([x, y]) => x * y)
      .build();
    const f = flow<number>('nested')
      .fork([branch('plain', (n: number) => `p${n}`), branch('deep', inner)])
      .join('outer-join', ([p, d]) => ({ p, d }))
      .build();
    const r = await runWorkflow(f, 3);
    expect(r.output).toEqual({ p: 'p3', d: 4 * 5 });
  });

  it('runs a loop inside a route branch', async () => {
    const doubling = flow<number>('doubling')
      .loop((n: number) => (n >= 100 ? LoopResult.done({ final: n }) : LoopResult.again(n * 2)), { maxIterations: 20 })
      .build();
    const f = flow<number>('route-loop')
      .route((n) => (n > 0 ? 'grow' : 'zero'), ['grow', 'zero'] as const)
      .branch('grow', doubling)
      .branch('zero', () => ({ final: 0 }))
      .done()
      .build();
    expect((await runWorkflow(f, 3)).output).toEqual({ final: 192 });
    expect((await runWorkflow(f, -1)).output).toEqual({ final: 0 });
  });

  it('takes the default branch for a key without a branch of its own', async () => {
    const f = flow<string>('route-default')
      .route((s) => (s === 'a' ? 'a' : s === 'b' ? 'b' : 'c'), ['a', 'b', 'c'] as const)
      .branch('a', (s: string) => `A:${s}`)
      .defaultBranch('fallback', (s: string) => `other:${s}`)
      .done()
      .build();
    expect((await runWorkflow(f, 'a')).output).toBe('A:a');
    expect((await runWorkflow(f, 'z')).output).toBe('other:z');
  });

  it('runs a child flow', async () => {
    const child = flow<{ n: number }>('child')
      .then('square', ({ n }) => n * n)
      .then('label', (n: number) => `sq=${n}`)
      .build();
    const f = flow<number>('parent')
      .then('wrap', (n: number) => ({ n }))
      .thenFlow(child)
      .then('shout', (s: string) => s.toUpperCase())
      .build();
    const r = await runWorkflow(f, 7);
    expect(r.output).toBe('SQ=49');
    // The child's task keys are scoped under the child id.
    expect(JSON.stringify(r.snapshot)).not.toContain('"square"');
  });

  it('maps over 1,000 items in item order with maxConcurrency respected', async () => {
    let running = 0;
    let peak = 0;
    const work = task('work', async (n: number) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n % 3));
      running--;
      return n * 2;
    });
    const f = flow<number>('map')
      .map('items', (count) => Array.from({ length: count }, (_, i) => i), work, { maxConcurrency: 8 })
      .build();
    const r = await runWorkflow(f, 1000);
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual(Array.from({ length: 1000 }, (_, i) => i * 2));
    expect(peak).toBeLessThanOrEqual(8);
    expect(peak).toBeGreaterThan(1);
  });

  it('maps with a flow body and an empty item list', async () => {
    const body = flow<number>('body')
      .then('a', (n: number) => n + 1)
      .then('b', (n: number) => n * 10)
      .build();
    const f = flow<number[]>('map-flow')
      .map('m', (xs) => xs, body, { maxConcurrency: 2 })
      .build();
    expect((await runWorkflow(f, [1, 2, 3])).output).toEqual([20, 30, 40]);
    expect((await runWorkflow(f, [])).output).toEqual([]);
  });

  it('keeps a big map out of the snapshot: its results are a template, not a list', async () => {
    // The items array is the map task's payload: entries are measured without it.
    const store = new MeasuringStore();
    const f = flow<number>('big-map')
      .map(
        'items',
        (n) => Array.from({ length: n }, (_, i) => i),
        (x: number) => x + 1,
        { maxConcurrency: 20 },
      )
      .then('count', (xs: number[]) => xs.length + (xs[xs.length - 1] ?? 0))
      .build();
    const r = await runWorkflow(f, 3000, { store });
    expect(r.output).toBe(3000 + 3000);
    // 20 items in flight at most: a few KB whatever the number of items, in the snapshot and in each entry.
    expect(store.largestSnapshot).toBeGreaterThan(0);
    expect(store.largestSnapshot).toBeLessThan(12_000);
    expect(store.largestEntry).toBeLessThan(12_000);
  });

  it('maps with bodies that do not end in a task of their own (a delay, a route)', async () => {
    const waits = flow<number>('waits')
      .then('double', (n: number) => n * 2)
      .delay('rest', '1m')
      .build();
    const routes = flow<number>('routes')
      .route((n) => (n % 2 === 0 ? 'even' : 'odd'), ['even', 'odd'] as const)
      .branch('even', (n: number) => `e${n}`)
      .branch('odd', (n: number) => `o${n}`)
      .done()
      .build();
    const f = flow<number[]>('odd-bodies')
      .map('a', (xs) => xs, waits, { maxConcurrency: 3 })
      .map('b', (xs) => xs, routes, { maxConcurrency: 2 })
      .build();
    expect((await runWorkflow(f, [1, 2, 3, 4])).output).toEqual(['e2', 'e4', 'e6', 'e8']);
  });

  it('runs the order-fulfilment example: retried charge, fork/join, delay, signal', async () => {
    const order: Order = {
      orderId: 'o-1',
      customer: 'ada',
      items: [{ sku: 'a', qty: 2, price: 5 }],
      flakyPayments: 2,
    };
    const r = await runWorkflow(fulfil, order, { signals: [{ name: 'manager-approval', payload: { ok: true } }] });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('COMPLETED');
    expect(r.output).toEqual({ approved: true });
  });

  it('keeps task keys unique across loop iterations and map items', async () => {
    const seen: string[] = [];
    const body = flow<number>('item')
      .loop(
        task('step', (n: number, ctx) => {
          seen.push(ctx.taskKey);
          return n >= 2 ? LoopResult.done(n) : LoopResult.again(n + 1);
        }),
        { maxIterations: 5 },
      )
      .build();
    const f = flow<number[]>('keys')
      .map('m', (xs) => xs, body)
      .build();
    await runWorkflow(f, [0, 1]);
    expect(seen.sort()).toEqual(['m[0]/step@0', 'm[0]/step@1', 'm[0]/step@2', 'm[1]/step@0', 'm[1]/step@1'].sort());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('passes a context with instance id, task key, attempt, idempotency key and an AbortSignal', async () => {
    const f = flow<null>('ctx')
      .then('look', (_: null, ctx) => ({
        instanceId: ctx.instanceId,
        key: ctx.taskKey,
        attempt: ctx.attempt,
        idem: ctx.idempotencyKey,
        aborted: ctx.signal.aborted,
      }))
      .build();
    const r = await runWorkflow(f, null, { instanceId: 'i-42' });
    expect(r.output).toEqual({ instanceId: 'i-42', key: 'look', attempt: 1, idem: 'i-42:look', aborted: false });
  });

  it('fails the run when a loop hits its bound, or exits with the last value', async () => {
    const body = (n: number) => LoopResult.again(n + 1);
    const failing = flow<number>('lf').loop(body, { maxIterations: 3 }).build();
    const r = await runWorkflow(failing, 0);
    expect(r.status).toBe('FAILED');
    expect(r.error?.name).toBe('LoopLimitError');
    const exiting = flow<number>('le').loop(body, { maxIterations: 3, onMax: 'exit' }).build();
    expect((await runWorkflow(exiting, 0)).output).toBe(3);
  });
});
