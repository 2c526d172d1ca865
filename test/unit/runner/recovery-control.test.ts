import { describe, expect, it } from 'vitest';
import { MemoryDeadLetterStore } from '../../../shared/adapters/memory/dead-letter-store.ts';
import { branch, flow, runWorkflow, startWorkflow, TerminalError, task } from '../../../shared/index.ts';
import type { InstanceStore } from '../../../shared/ports/instance-store.ts';
import { letterState } from '../../../shared/runtime/dead-letters.ts';

describe('manual retry and skip of a failed task', () => {
  it('retries a task the run failed on, with a fresh attempt budget, and the run completes', async () => {
    let healthy = false;
    const attempts: number[] = [];
    const f = flow<number>('retryable')
      .then(
        task(
          'flaky',
          (n: number, ctx) => {
            attempts.push(ctx.attempt);
            if (!healthy) throw new Error('down');
            return n * 2;
          },
          { retry: { maxAttempts: 2, initialDelay: '1s' } },
        ),
      )
      .then('after', (n: number) => n + 1)
      .build();
    const h = startWorkflow(f, 5);
    const failed = await h.result();
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatchObject({ taskKey: 'flaky', attempts: 2 });
    expect(failed.snapshot.tasks.flaky?.state).toBe('failed');
    healthy = true;
    await h.retryTask('flaky');
    const done = await h.result();
    expect(done.status).toBe('COMPLETED');
    expect(done.output).toBe(11);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('a fresh budget means maxAttempts more attempts, not one', async () => {
    const attempts: number[] = [];
    const f = flow<null>('always-down')
      .then(
        task(
          'down',
          (_: null, ctx) => {
            attempts.push(ctx.attempt);
            throw new Error(`down ${ctx.attempt}`);
          },
          { retry: { maxAttempts: 3, initialDelay: '10ms' } },
        ),
      )
      .build();
    const h = startWorkflow(f, null);
    expect((await h.result()).error?.attempts).toBe(3);
    await h.retryTask('down');
    const again = await h.result();
    expect(again.status).toBe('FAILED');
    expect(again.error).toMatchObject({ attempts: 6, message: 'down 6' });
    expect(attempts).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('re-dispatches the sibling branch that was in flight when the run failed', async () => {
    let fixed = false;
    const f = flow<number>('siblings')
      .fork([
        branch('slow', async (n: number) => {
          await new Promise((r) => setTimeout(r, 30));
          return n + 1;
        }),
        branch(
          'broken',
          task(
            'broken',
            (n: number) => {
              if (!fixed) throw new TerminalError('bad data');
              return n - 1;
            },
            {},
          ),
        ),
        // A branch that ends with two delays: the fork is not in lanes, its branches are in the frontier.
        branch(
          'idle',
          flow<number>('idle')
            .then('woke', (n: number) => n)
            .delay('nap', '1ms')
            .delay('doze', '1ms')
            .build(),
        ),
      ])
      .join('j', ([a, b, c]) => [a, b, c])
      .build();
    const h = startWorkflow(f, 10);
    const failed = await h.result();
    expect(failed.status).toBe('FAILED');
    expect(failed.snapshot.tasks.slow?.state).toBe('dispatched');
    fixed = true;
    await h.retryTask('broken');
    const done = await h.result();
    expect(done.output).toEqual([11, 9, 10]);
  });

  it('skips a failed task with a supplied output', async () => {
    const f = flow<number>('skippable')
      .then(
        task('lookup', (): number => {
          throw new TerminalError('service retired');
        }),
      )
      .then('use', (n: number) => `got ${n}`)
      .build();
    const h = startWorkflow(f, 1);
    expect((await h.result()).status).toBe('FAILED');
    await h.skipTask('lookup', 42);
    const done = await h.result();
    expect(done.output).toBe('got 42');
    await expect(h.skipTask('lookup', 1)).rejects.toThrow(/not pending/);
  });

  it('refuses to retry a task the run did not fail on', async () => {
    const f = flow<number>('fine')
      .then('ok', (n: number) => n)
      .build();
    const h = startWorkflow(f, 1);
    await h.result();
    await expect(h.retryTask('ok')).rejects.toThrow(/did not fail on this task/);
  });
});

describe('deadlines', () => {
  it('fails a run still unfinished at its deadline', async () => {
    const f = flow<null>('late', { deadline: '1h' })
      .delay('wait', '2h')
      .then('never', () => 1)
      .build();
    const r = await runWorkflow(f, null);
    expect(r.status).toBe('FAILED');
    expect(r.error?.name).toBe('DeadlineExceededError');
  });

  it('does not touch a run that finishes in time', async () => {
    const f = flow<null>('early', { deadline: '2h' })
      .delay('wait', '1h')
      .then('done', () => 1)
      .build();
    expect((await runWorkflow(f, null)).output).toBe(1);
  });
});

describe('reopening a failed run', () => {
  it('a sibling that waits on its retry when the run fails runs when its backoff ends after the reopen', async () => {
    let fixed = false;
    let flakyCalls = 0;
    const f = flow<number>('reopen-timers')
      .fork([
        branch(
          'flaky',
          task(
            'flaky',
            (n: number) => {
              flakyCalls++;
              if (flakyCalls === 1) throw new Error('transient');
              return n + 1;
            },
            { retry: { maxAttempts: 3, initialDelay: '1h', jitter: 'none' } },
          ),
        ),
        branch(
          'broken',
          task('broken', (n: number) => {
            if (!fixed) throw new TerminalError('bad');
            return n - 1;
          }),
        ),
      ])
      .join('j', ([a, b]) => [a, b])
      .build();
    const h = startWorkflow(f, 10);
    const failed = await h.result();
    expect(failed.status).toBe('FAILED');
    // The branch waits on its lane timer, beside the run's state.
    const waiting = await failed.store.listTimers(failed.instanceId, '');
    expect(waiting.map((t) => [t.id, t.firedAt, t.retry?.attempt])).toEqual([['flaky#2', undefined, 2]]);
    fixed = true;
    await h.retryTask('broken');
    const done = await h.result();
    expect(done.status).toBe('COMPLETED');
    expect(done.output).toEqual([11, 9]);
  });
});

describe('dead letters in the in-process runner', () => {
  it('records each failure that fails the run; a manual retry or skip resolves the record, never removes it', async () => {
    const letters = new MemoryDeadLetterStore();
    const healthy = false;
    const f = flow<number>('recorded')
      .then(
        task(
          'charge',
          (n: number) => {
            if (!healthy) throw new TerminalError(`declined ${n}`);
            return n;
          },
          {},
        ),
      )
      .build();
    const states = async (h: { instanceId: string; store: InstanceStore }) => {
      const snapshot = await h.store.get(h.instanceId);
      return (await letters.ofInstance(h.instanceId))
        .sort((a, b) => a.dispatch.attempt - b.dispatch.attempt)
        .map((l) => [l.dispatch.attempt, letterState(l, snapshot).state]);
    };
    const h = startWorkflow(f, 3, { deadLetters: letters });
    expect((await h.result()).status).toBe('FAILED');
    expect(await states(h)).toEqual([[1, 'open']]);
    await h.retryTask('charge');
    expect((await h.result()).status).toBe('FAILED');
    expect(await states(h)).toEqual([
      [1, 'resolved'],
      [2, 'open'],
    ]);
    await h.skipTask('charge', 0);
    expect((await h.result()).status).toBe('COMPLETED');
    expect(await states(h)).toEqual([
      [1, 'resolved'],
      [2, 'resolved'],
    ]);
  });
});
