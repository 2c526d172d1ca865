import { describe, expect, it } from 'vitest';
import { describeFlow } from '../../../shared/engine/describe.ts';
import { branch, FlowDefinitionError, flow, LoopResult, task, toMillis } from '../../../shared/index.ts';

const inc = task('inc', (n: number) => n + 1);

describe('builder validation', () => {
  it('rejects duplicate ids with the id in the message', () => {
    expect(() => flow<number>('f').then(inc).then(inc).build()).toThrow(/duplicate id 'inc'/);
  });

  it('rejects a duplicate id hidden in a fork branch and a later step', () => {
    const build = () =>
      flow<number>('f')
        .fork([branch('a', (n: number) => n), branch('b', (n: number) => n)])
        .join('j', ([a]) => a)
        .then('a', (n: number) => n)
        .build();
    expect(build).toThrow(FlowDefinitionError);
    expect(build).toThrow(/duplicate id 'a'/);
  });

  it('rejects duplicate branch names in one fork', () => {
    expect(() =>
      flow<number>('f')
        .fork([branch('a', (n: number) => n), branch('a', (n: number) => n)])
        .join('j', (x) => x),
    ).toThrow(/duplicate branch name 'a'/);
  });

  it('rejects an empty fork', () => {
    expect(() => flow<number>('f').fork([])).toThrow(/at least one branch/);
  });

  it('rejects a route without branches', () => {
    expect(() =>
      flow<number>('f')
        .route((n) => (n > 0 ? 'pos' : 'neg'), ['pos', 'neg'] as const)
        .done(),
    ).toThrow(/route 'route0': a route needs at least one branch/);
  });

  it('rejects a route whose keys are not all covered without a default', () => {
    expect(() =>
      flow<number>('f')
        .route((n) => (n > 0 ? 'pos' : 'neg'), ['pos', 'neg'] as const)
        .branch('pos', inc)
        .done(),
    ).toThrow(/without a branch and no default branch: neg/);
  });

  it('rejects invalid durations, naming the step', () => {
    expect(() => flow<number>('f').delay('wait', '10 years' as never)).toThrow(/delay 'wait': invalid duration/);
    expect(() => flow<number>('f').delay('wait', -5)).toThrow(/invalid duration -5/);
    expect(() => flow<number>('f').waitForSignal('w', 's', { timeout: 'soon' as never })).toThrow(
      /timeout: invalid duration/,
    );
  });

  it('rejects a loop without a bound', () => {
    const body = (n: number) => LoopResult.done(n);
    expect(() => flow<number>('f').loop(body, {} as never)).toThrow(/maxIterations must be a positive integer/);
    expect(() => flow<number>('f').loop(body, { maxIterations: 0 })).toThrow(/a loop needs a bound/);
  });

  it('rejects an empty flow, bad ids and bad map concurrency', () => {
    expect(() => flow<number>('f').build()).toThrow(/at least one step/);
    expect(() => flow<number>('f').then('has space', (n: number) => n)).toThrow(/invalid step id/);
    expect(() => flow<number>('bad name!')).toThrow(FlowDefinitionError);
    expect(() => flow<number[]>('f').map('m', (x) => x, inc, { maxConcurrency: 0 })).toThrow(/maxConcurrency/);
  });

  it("rejects onTimeout 'continue' without a timeout", () => {
    expect(() => flow<number>('f').waitForSignal('w', 's', { onTimeout: 'continue' } as never)).toThrow(
      /needs a timeout/,
    );
  });
});

describe('durations', () => {
  it('parses units and numbers', () => {
    expect(toMillis('250ms')).toBe(250);
    expect(toMillis('1.5s')).toBe(1500);
    expect(toMillis('2m')).toBe(120_000);
    expect(toMillis('48h')).toBe(172_800_000);
    expect(toMillis('1d')).toBe(86_400_000);
    expect(toMillis(42)).toBe(42);
    expect(() => toMillis('5 weeks')).toThrow(/invalid duration/);
  });
});

describe('definition JSON', () => {
  it('describes every construct with ids and resolved options, no functions', () => {
    const child = flow<number>('child').then(inc).build();
    const f = flow<number>('all')
      .then(inc)
      .fork([branch('a', (n: number) => n), branch('b', child)])
      .join('j', ([a, b]) => a + b)
      .delay('d', '1s')
      .waitForSignal<number>('s', 'go', { timeout: '1m' })
      .route((n) => (n > 0 ? 'pos' : 'neg'), ['pos', 'neg'] as const)
      .branch('pos', (n: number) => n)
      .defaultBranch('other', (n: number) => -n)
      .done()
      .loop((n: number) => LoopResult.done(n), { maxIterations: 3 })
      .thenFlow(child, { id: 'sub' })
      .map(
        'm',
        (n) => [n],
        (n: number) => n * 2,
        { maxConcurrency: 4 },
      )
      .build();
    const json = describeFlow(f);
    const text = JSON.stringify(json);
    expect(json.steps.map((s) => s.kind)).toEqual(['task', 'fork', 'delay', 'signal', 'route', 'loop', 'child', 'map']);
    expect(json.steps[0]).toMatchObject({
      id: 'inc',
      task: { retry: { maxAttempts: 3 }, priority: 'normal', pool: 'default' },
    });
    expect(json.steps[3]).toMatchObject({ signal: 'go', timeoutMs: 60_000, onTimeout: 'fail' });
    expect(json.steps[7]).toMatchObject({ id: 'm', maxConcurrency: 4 });
    expect(text).not.toMatch(/function|=>/);
  });
});
