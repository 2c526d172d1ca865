import { describe, expect, it } from 'vitest';
import { flow, MemoryInstanceStore, startWorkflow, task } from '../../../shared/index.ts';
import { jsonLog } from '../../../shared/observability/log.ts';
import { observedStore } from '../../../shared/observability/observer.ts';
import { openMetrics } from '../../../shared/observability/openmetrics.ts';
import { JournalConflictError } from '../../../shared/ports/errors.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';

const waits = flow<string>('waits')
  .then(task('first', (s: string) => s.length))
  .waitForSignal<{ ok: boolean }>('approve', 'approval')
  .build();

const sample = (text: string, line: string) =>
  Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${line} `))
      ?.split(' ')[1],
  );

describe('the observed store', () => {
  it('counts a cancelled run and logs it, with its workflow and duration', async () => {
    const raw: string[] = [];
    const metrics = openMetrics();
    const run = startWorkflow(waits, 'hello', {
      telemetry: { log: jsonLog({ level: 'INFO', write: (l) => raw.push(l) }), metrics },
    });
    await run.idle();
    await run.cancel('changed my mind');
    expect((await run.result()).status).toBe('CANCELLED');
    const text = await metrics.render();
    expect(sample(text, 'sayiir_runs_started_total{workflow="waits"}')).toBe(1);
    expect(sample(text, 'sayiir_runs_cancelled_total{workflow="waits"}')).toBe(1);
    expect(sample(text, 'sayiir_run_duration_seconds_count{workflow="waits"}')).toBe(1);
    const cancelled = raw
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.message === 'run cancelled');
    expect(cancelled).toEqual([
      expect.objectContaining({ workflow: 'waits', status: 'CANCELLED', instanceId: run.instanceId }),
    ]);
    // The reason is the operator's text: not logged.
    expect(raw.join('\n')).not.toContain('changed my mind');
  });

  it('counts a journal append lost to another writer, and passes the error on', async () => {
    const metrics = openMetrics();
    const store = observedStore(new MemoryInstanceStore(), { log: jsonLog({ level: 'SILENT' }), metrics });
    await startInstance(store, waits, 'x', { instanceId: 'c-1', now: 1 });
    const entry = { seq: 1, at: 2, events: [{ type: 'signal', name: 'approval' } as never], history: [] };
    await store.append('c-1', entry);
    await expect(store.append('c-1', entry)).rejects.toBeInstanceOf(JournalConflictError);
    expect(sample(await metrics.render(), 'sayiir_journal_conflicts_total')).toBe(1);
  });
});
