/**
 * Type tests, checked by `tsc --noEmit` (part of `npm test`): each
 * `@ts-expect-error` line must fail to compile, or tsc reports an unused
 * directive. `Equal` assertions pin the inferred types.
 */
import { branch, type Flow, flow, LoopResult, task } from '../../shared/index.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(_?: T) => undefined;

interface Order {
  id: string;
  total: number;
}

const toTotal = task('total', (o: Order) => o.total);
const toText = task('text', (n: number) => `n=${n}`);

// Each step's input is the previous step's output.
const ok = flow<Order>('ok').then(toTotal).then(toText).build();
assertType<Equal<typeof ok, Flow<Order, string>>>();

// @ts-expect-error toText takes a number, the flow carries an Order.
flow<Order>('bad').then(toText);

// An inline task receives the previous output (number), not a string.
flow<Order>('bad2')
  .then(toTotal)
  // @ts-expect-error
  .then('x', (s: string) => s.length);

// A join receives a typed tuple in branch order.
const joined = flow<Order>('join')
  .fork([branch('a', (o: Order) => o.total), branch('b', (o: Order) => o.id)])
  .join('j', ([a, b]) => {
    assertType<Equal<typeof a, number>>();
    assertType<Equal<typeof b, string>>();
    return { a, b };
  })
  .build();
assertType<Equal<typeof joined, Flow<Order, { a: number; b: string }>>>();

// @ts-expect-error a branch taking a string cannot run on an Order.
flow<Order>('badfork').fork([branch('a', (s: string) => s)]);

// Route keys are narrowed from `as const`.
flow<Order>('route')
  .route((o) => (o.total > 100 ? 'big' : 'small'), ['big', 'small'] as const)
  .branch('big', (o: Order) => o.total)
  // @ts-expect-error 'huge' is not one of the route's keys.
  .branch('huge', (o: Order) => o.total);

// @ts-expect-error a key function returning a key outside the list does not compile.
flow<Order>('route2').route((o) => (o.total > 1 ? 'big' : 'other'), ['big'] as const);

// A route's output is the union of its branches' outputs.
const routed = flow<Order>('route3')
  .route((o) => (o.total > 100 ? 'big' : 'small'), ['big', 'small'] as const)
  .branch('big', (o: Order) => o.total)
  .branch('small', (o: Order) => o.id)
  .done()
  .build();
assertType<Equal<typeof routed, Flow<Order, number | string>>>();

// A loop's output is its `done` value; `again` must carry the loop's input type.
const looped = flow<number>('loop')
  .loop((n: number) => (n > 10 ? LoopResult.done(`big ${n}`) : LoopResult.again(n * 2)), { maxIterations: 10 })
  .build();
assertType<Equal<typeof looped, Flow<number, string>>>();

// @ts-expect-error `again` with a string cannot feed a loop over numbers.
flow<number>('loopbad').loop((n: number) => (n > 1 ? LoopResult.done(n) : LoopResult.again('x')), {
  maxIterations: 3,
});

// A map's output is the array of its body's outputs.
const mapped = flow<{ urls: string[] }>('map')
  .map(
    'fetch',
    (i) => i.urls,
    (url: string) => url.length,
    { maxConcurrency: 5 },
  )
  .build();
assertType<Equal<typeof mapped, Flow<{ urls: string[] }, number[]>>>();

// The map body takes numbers, the items are strings.
flow<{ urls: string[] }>('mapbad').map(
  'fetch',
  // @ts-expect-error
  (i) => i.urls,
  (n: number) => n,
);

// A child flow must accept the current value.
const child = flow<number>('child')
  .then('inc', (n: number) => n + 1)
  .build();
const parent = flow<Order>('parent').then(toTotal).thenFlow(child).build();
assertType<Equal<typeof parent, Flow<Order, number>>>();
// @ts-expect-error the child takes a number, the flow carries an Order.
flow<Order>('parentbad').thenFlow(child);

// A signal's payload type becomes the current value; with onTimeout 'continue' it may be null.
const signalled = flow<Order>('sig').waitForSignal<{ ok: boolean }>('approve', 'approval').build();
assertType<Equal<typeof signalled, Flow<Order, { ok: boolean }>>>();
const maybe = flow<Order>('sig2')
  .waitForSignal<{ ok: boolean }>('approve', 'approval', { timeout: '1h', onTimeout: 'continue' })
  .build();
assertType<Equal<typeof maybe, Flow<Order, { ok: boolean } | null>>>();

// A delay passes the value through.
const delayed = flow<Order>('delay').delay('wait', '1h').build();
assertType<Equal<typeof delayed, Flow<Order, Order>>>();
