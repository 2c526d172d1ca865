import type { FakeClock, RunResult, WorkflowHandle } from '../../../shared/index.ts';

/** Moves a fake clock to each next timer whenever the run is idle, until it settles. */
export async function drive<O>(handle: WorkflowHandle<O>, clock: FakeClock, maxSteps = 1000): Promise<RunResult<O>> {
  let settled: RunResult<O> | undefined;
  let failed: unknown;
  handle.result().then(
    (r) => (settled = r),
    (e) => (failed = e),
  );
  for (let i = 0; i < maxSteps; i++) {
    await handle.idle();
    await new Promise((r) => setImmediate(r));
    if (failed) throw failed;
    if (settled) return settled;
    const next = clock.nextWake();
    if (next === undefined) return handle.result();
    clock.advanceTo(next);
  }
  throw new Error('run did not settle');
}
