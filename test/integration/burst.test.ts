import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import type { AnyFlow } from '../../shared/index.ts';
import { flow } from '../../shared/index.ts';
import { apiClient, waitFor } from '../support/local-api.ts';

const RUNS = 100;
const STEPS = 10;

function tenSteps(): AnyFlow {
  let f = flow<number>('ten').then('s1', (n: number) => n + 1);
  for (let i = 2; i <= STEPS; i++) f = f.then(`s${i}`, (n: number) => n + 1);
  return f.build();
}

describe('a burst of runs on an idle stack, no fault injected', () => {
  let dir: string;
  let stack: LocalStack;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-burst-'));
    stack = await startLocalStack({
      dataDir: dir,
      workflows: [tenSteps()],
      // Far shorter than the time the last message waits behind the others:
      // every late dispatch looks "lost" unless the reaper asks its queue.
      redispatchAfterMs: 150,
      reaperIntervalMs: 100,
      pollerConcurrency: 1,
      batchSize: 1,
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('re-dispatches nothing that is merely queued behind the burst', async () => {
    const call = apiClient(stack);
    const ids = await Promise.all(
      Array.from({ length: RUNS }, async (_, i) => {
        const r = await call('POST', '/workflows/ten/instances', { input: i, instanceId: `burst-${i}` });
        expect(r.status).toBe(201);
        return r.json.instanceId as string;
      }),
    );
    for (const id of ids) {
      await waitFor(async () => ((await stack.store.get(id))?.status === 'COMPLETED' ? true : undefined), 60_000);
    }
    let redispatched = 0;
    let checked = 0;
    for (const id of ids) {
      const history = (await call('GET', `/instances/${id}/history`)).json.items as { type: string }[];
      redispatched += history.filter((e) => e.type === 'task-redispatched').length;
      checked += history.filter((e) => e.type === 'task-completed').length;
    }
    expect(checked).toBe(RUNS * STEPS);
    expect(redispatched).toBe(0);
  });
});
