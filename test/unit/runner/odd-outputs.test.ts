import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flow, type RunResult, runWorkflow, task } from '../../../shared/index.ts';

/**
 * No value a task can return may leave its run looping: whatever a task
 * returns, its run reaches a final state, and an output no store can keep
 * fails the attempt terminally (no retry), naming the cause.
 */

function circular(): unknown {
  const a: Record<string, unknown> = { name: 'a' };
  a.self = a;
  return a;
}

function nested(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** Odd outputs, each with whether JSON can express it. */
const ODD: readonly { readonly name: string; readonly make: () => unknown; readonly storable: boolean }[] = [
  { name: 'a BigInt', make: () => 10n, storable: false },
  { name: 'a BigInt deep inside', make: () => ({ order: { total: 10n } }), storable: false },
  { name: 'a circular object', make: circular, storable: false },
  { name: 'nesting 100,000 deep', make: () => nested(100_000), storable: false },
  { name: 'a function', make: () => () => 1, storable: true },
  { name: 'an object with a function', make: () => ({ f: () => 1, a: 1 }), storable: true },
  { name: 'undefined', make: () => undefined, storable: true },
  { name: 'NaN and Infinity', make: () => [Number.NaN, Number.POSITIVE_INFINITY], storable: true },
  { name: 'a Date', make: () => new Date(0), storable: true },
  { name: 'a typed array', make: () => new Uint8Array([1, 2, 3]), storable: true },
  { name: 'a symbol', make: () => Symbol('s'), storable: true },
  { name: 'a 2 MB string', make: () => 'x'.repeat(2 * 1024 * 1024), storable: true },
  {
    name: 'a throwing toJSON',
    make: () => ({
      toJSON: () => {
        throw new Error('no');
      },
    }),
    storable: false,
  },
];

const oneTask = (make: () => unknown) =>
  flow<null>('odd')
    .then(task('emit', async () => make(), { retry: { maxAttempts: 3, initialDelay: '1s' } }))
    .build();

/** The run's result, or a failure when it does not settle in time (a loop). */
async function settle<O>(run: Promise<RunResult<O>>, ms = 20_000): Promise<RunResult<O>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the run did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([run, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a task output no store can keep', () => {
  for (const odd of ODD) {
    it(`${odd.name}: the run reaches a final state${odd.storable ? '' : ', failed at the first attempt, naming the cause'}`, async () => {
      const r = await settle(runWorkflow(oneTask(odd.make), null));
      if (odd.storable) {
        expect(r.status).toBe('COMPLETED');
        return;
      }
      expect(r.status).toBe('FAILED');
      expect(r.error?.name).toBe('PayloadSerializationError');
      expect(r.error?.message).toMatch(/^output of task 'emit' cannot be stored as JSON: /);
      expect(r.snapshot.tasks.emit?.attempt).toBe(1);
    });
  }

  it('names where a BigInt is', async () => {
    const r = await settle(
      runWorkflow(
        oneTask(() => ({ order: { total: 10n } })),
        null,
      ),
    );
    expect(r.error?.message).toContain('a BigInt at $.order.total');
  });

  it('any mix of odd and plain outputs along a flow and in a map ends every run (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: ODD.length }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: ODD.length }),
        async (steps, inMap) => {
          const make = (i: number) => () => (i === ODD.length ? { plain: i } : (ODD[i] as (typeof ODD)[number]).make());
          let b = flow<null>('mix').then('first', (): unknown => 0);
          steps.forEach((i, n) => {
            b = b.then(task(`s${n}`, async () => make(i)(), { retry: { maxAttempts: 2, initialDelay: '1s' } }));
          });
          const f = b
            .map(
              'each',
              () => [1, 2],
              task('item', async () => make(inMap)(), { retry: { maxAttempts: 2, initialDelay: '1s' } }),
            )
            .build();
          const r = await settle(runWorkflow(f, null));
          const storable = [...steps, inMap].every(
            (i) => i === ODD.length || (ODD[i] as (typeof ODD)[number]).storable,
          );
          expect(r.status).toBe(storable ? 'COMPLETED' : 'FAILED');
        },
      ),
      { numRuns: 40, seed: 9 },
    );
  }, 120_000);
});
