import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ChaosReport, formatReport, runChaos } from './chaos.ts';
import { FAULT_KINDS } from './faults.ts';

/**
 * The chaos suite at CI size: 40 runs of the example and chaos workflows on
 * the local stack, with every kind of fault injected at a fixed seed, and
 * one restart of the whole stack mid-flight. `npm run test:chaos -- --runs N`
 * runs it bigger.
 */
describe('chaos: workers killed, messages lost and duplicated, requests throttled, the stack restarted', () => {
  let report: ChaosReport;

  beforeAll(async () => {
    // The engine logs every redelivery and every 5xx; thousands of lines here.
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      report = await runChaos({ runs: 40, seed: 20_260_101, restarts: 1 });
    } finally {
      quiet.mockRestore();
    }
    console.log(formatReport(report));
  }, 150_000);
  afterAll(() => vi.restoreAllMocks());

  it('injected faults of every kind, with runs in flight at the restart', () => {
    for (const kind of FAULT_KINDS) expect(report.faults[kind], kind).toBeGreaterThan(0);
    expect(report.runningAtRestart[0]).toBeGreaterThan(0);
  });

  it('loses no run: every run reached a final state', () => {
    expect(report.lostRuns).toEqual([]);
    // And every fault that held work up was recovered from.
    expect(report.recovery.count).toBeGreaterThan(0);
    expect(report.recovery.unrecovered).toBe(0);
  });

  it('ends every run in its right state with its right output (or the failure it was designed for)', () => {
    expect(report.wrongOutputs).toEqual([]);
    expect(report.finalStateChanges).toEqual([]);
  });

  it('commits no task output twice, although tasks ran more than once', () => {
    expect(report.commits).toBeGreaterThan(100);
    expect(report.doubleCommits).toEqual([]);
    expect(report.executions.tasksRunMoreThanOnce).toBeGreaterThan(0);
  });
});
