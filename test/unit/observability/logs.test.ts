import { describe, expect, it } from 'vitest';
import { MemorySecrets } from '../../../shared/adapters/memory/secrets.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { flow, runWorkflow, task } from '../../../shared/index.ts';
import { jsonLog, levelFromEnv } from '../../../shared/observability/log.ts';
import { noMetrics } from '../../../shared/observability/metrics.ts';
import { taskObserver } from '../../../shared/observability/observer.ts';

const PAYLOAD = 'PAYLOAD-MARKER-in-process';
const SECRET = 'SECRET-VALUE-in-process';

const greet = task('greet', async (name: string, ctx) => ({ text: `hi ${name}`, key: (await ctx.secret('k')).length }));
const shout = task('shout', (g: { text: string; key: number }) => g.text.toUpperCase());
const hello = flow<string>('hello-logs').then(greet).then(shout).build();

describe('log lines of the in-process runner', () => {
  it('writes one line per task outcome and per run start and end, with the correlation keys and no payload or secret', async () => {
    const raw: string[] = [];
    const log = jsonLog({ level: 'INFO', write: (l) => raw.push(l) });
    const r = await runWorkflow(hello, PAYLOAD, {
      telemetry: { log, metrics: noMetrics },
      secrets: new MemorySecrets({ k: SECRET }),
    });
    expect(r.status).toBe('COMPLETED');
    const lines = raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    // The last task's commit ends the run; the task's line follows its commit.
    expect(lines.map((l) => l.message)).toEqual(['run started', 'task completed', 'run completed', 'task completed']);
    const tasks = lines.filter((l) => l.message === 'task completed');
    expect(tasks.map((l) => l.taskKey)).toEqual(['greet', 'shout']);
    for (const l of tasks) {
      expect(l).toMatchObject({ level: 'INFO', service: 'sayiir', workflow: 'hello-logs', instanceId: r.instanceId });
      expect(l).toMatchObject({ attempt: 1, pool: 'default', outcome: 'completed' });
      expect(typeof l.durationMs).toBe('number');
    }
    // The first task came through the queue: it waited there; the second ran inline.
    expect(tasks[0]).toMatchObject({ inline: false });
    expect(tasks[1]).toMatchObject({ inline: true });
    expect(tasks[0]?.queueWaitMs).toBeGreaterThanOrEqual(0);
    expect(tasks[1]?.queueWaitMs).toBeUndefined();
    for (const l of raw) {
      expect(l).not.toContain(PAYLOAD);
      expect(l).not.toContain(SECRET);
    }
  });
});

describe('the task observer', () => {
  const d: Dispatch = {
    instanceId: 'i-1',
    workflow: 'w',
    key: 'a',
    qid: 'a',
    input: { v: 'x' },
    attempt: 2,
    gen: 1,
    priority: 'normal',
    pool: 'gpu',
    trace: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  };
  const capture = (level: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR') => {
    const raw: string[] = [];
    const observe = taskObserver({ log: jsonLog({ level, write: (l) => raw.push(l) }), metrics: noMetrics });
    return { raw, observe, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
  };

  it('names a failed attempt retried while its run goes on, failed when it failed the run', () => {
    const { observe, lines } = capture('INFO');
    observe({ dispatch: d, outcome: 'failed', inline: false, run: { status: 'RUNNING', createdAt: 0 } });
    observe({ dispatch: d, outcome: 'failed', inline: false, run: { status: 'FAILED', createdAt: 0 } });
    observe({ dispatch: d, outcome: 'skipped', reason: 'claimed by another worker', inline: false });
    expect(lines().map((l) => [l.level, l.message, l.outcome])).toEqual([
      ['WARN', 'task retried', 'retried'],
      ['ERROR', 'task failed', 'failed'],
      ['INFO', 'task skipped', 'skipped'],
    ]);
    // Without an active span, the trace id is the one the dispatch carries.
    expect(lines()[0]).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', pool: 'gpu', attempt: 2 });
    expect(lines()[2]).toMatchObject({ reason: 'claimed by another worker' });
  });

  it('drops the lines under the level', () => {
    const { observe, lines } = capture('ERROR');
    observe({ dispatch: d, outcome: 'completed', inline: false });
    observe({ dispatch: d, outcome: 'failed', inline: false, run: { status: 'FAILED', createdAt: 0 } });
    expect(lines().map((l) => l.message)).toEqual(['task failed']);
  });
});

describe('log settings', () => {
  it('reads the level from LOG_LEVEL, then from Lambda, and refuses an unknown one', () => {
    expect(levelFromEnv({})).toBe('INFO');
    expect(levelFromEnv({ LOG_LEVEL: 'debug' })).toBe('DEBUG');
    expect(levelFromEnv({ AWS_LAMBDA_LOG_LEVEL: 'WARN' })).toBe('WARN');
    expect(() => levelFromEnv({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });

  it('writes a pretty line for a terminal, with the same keys', () => {
    const raw: string[] = [];
    jsonLog({
      level: 'INFO',
      format: 'pretty',
      write: (l) => raw.push(l),
      now: () => Date.UTC(2026, 0, 1, 12, 0, 0),
    }).info('task completed', { workflow: 'w', taskKey: 'a b', attempt: 1 });
    expect(raw[0]).toContain('12:00:00.000');
    expect(raw[0]).toContain('task completed workflow=w taskKey="a b" attempt=1');
  });
});
