import { describe, expect, it } from 'vitest';
import { branch, flow, task } from '../../../shared/index.ts';

const make = (
  opts: { extra?: boolean; rename?: boolean; retries?: number; delay?: string; branches?: 'swap' } = {},
) => {
  const a = branch('a', (n: number) => n + 1);
  const b = branch('b', (n: number) => n * 2);
  let f = flow<number>('h')
    .then(task(opts.rename ? 'first' : 'start', (n: number) => n, { retry: { maxAttempts: opts.retries ?? 3 } }))
    .fork(opts.branches === 'swap' ? [b, a] : [a, b])
    .join('j', ([x, y]) => x + y)
    .delay('d', (opts.delay ?? '1s') as '1s');
  if (opts.extra) f = f.then('more', (n: number) => n);
  return f.build();
};

describe('definition hash', () => {
  it('is stable across builds of the same structure', () => {
    expect(make().hash).toBe(make().hash);
    expect(make().hash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('changes with any structural change', () => {
    const base = make().hash;
    const variants = [make({ extra: true }), make({ rename: true }), make({ branches: 'swap' })].map((f) => f.hash);
    for (const v of variants) expect(v).not.toBe(base);
    expect(new Set(variants).size).toBe(variants.length);
    expect(
      flow<number>('other')
        .then('x', (n: number) => n)
        .build().hash,
    ).not.toBe(
      flow<number>('other2')
        .then('x', (n: number) => n)
        .build().hash,
    );
  });

  it('ignores tuning that running instances can absorb (retries, durations)', () => {
    expect(make({ retries: 7 }).hash).toBe(make().hash);
    expect(make({ delay: '1h' }).hash).toBe(make().hash);
  });
});
