import { describe, expect, it } from 'vitest';
import { dagText } from '../../../shared/client/dag-text.ts';
import { branch, describeFlow, flow, LoopResult, task } from '../../../shared/index.ts';

describe('a DAG drawn as text', () => {
  it('draws every kind of step, one a line, with its nesting', () => {
    const child = flow<number>('child')
      .then('inner', (n: number) => n)
      .build();
    const f = flow<number>('all')
      .then(
        task('inc', (n: number) => n + 1, { priority: 'high', pool: 'gpu', timeout: '30s', retry: { maxAttempts: 5 } }),
      )
      .fork([branch('a', (n: number) => n), branch('b', child)])
      .join('j', ([a, b]) => a + b)
      .delay('d', '24h')
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
    const lines = dagText(describeFlow(f)).split('\n');
    expect(lines[0]).toBe('all');
    expect(lines[1]).toMatch(/^├─ inc\s+task\s+pool gpu · priority high · 5 attempts · timeout 30s$/);
    expect(lines).toContainEqual(expect.stringMatching(/^├─ \S+\s+fork\s+2 branches$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {2}├─ branch 1: a\s+task/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {2}└─ branch 2: child$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {5}└─ inner\s+task/));
    expect(lines).toContainEqual(expect.stringMatching(/^├─ j\s+join/));
    expect(lines).toContainEqual(expect.stringMatching(/^├─ d\s+delay\s+1d$/));
    expect(lines).toContainEqual(expect.stringMatching(/^├─ s\s+signal\s+'go' · timeout 1m then fail$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {2}├─ 'pos': \S+\s+task/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ {2}└─ default: other\s+task/));
    expect(lines).toContainEqual(expect.stringMatching(/loop\s+at most 3 iterations/));
    expect(lines).toContainEqual(expect.stringMatching(/^├─ sub\s+child\s+child$/));
    expect(lines.at(-2)).toMatch(/^└─ m\s+map\s+over \S+ · 4 at a time$/);
    expect(lines.at(-1)).toMatch(/^ {3}└─ each item: \S+\s+task/);
  });
});
