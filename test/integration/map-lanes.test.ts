import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmulatedLocalStack, startLocalStack } from '../../local/stack.ts';
import { countRequests, type RequestCounter } from '../../shared/adapters/aws/request-counter.ts';
import { flow } from '../../shared/index.ts';
import { apiClient } from '../support/local-api.ts';

const ITEMS = 1_000;
const mapped = flow<number>('mapped')
  .map(
    'items',
    (n: number) => Array.from({ length: n }, (_, i) => i),
    (x: number) => x * 2,
    { maxConcurrency: 16 },
  )
  .then('sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .build();

describe('a map of 1,000 no-op items over the wire, 16 batches in flight', () => {
  let dir: string;
  let stack: EmulatedLocalStack;
  let dynamo: RequestCounter;
  let failedConditions = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-map-'));
    stack = await startLocalStack({
      emulateAws: true,
      dataDir: dir,
      workflows: [mapped],
      pollerConcurrency: 16,
      reaperIntervalMs: 60_000,
      instrument: (clients) => {
        dynamo = countRequests(clients.dynamo);
        clients.dynamo.middlewareStack.add(
          (next) => async (args) => {
            try {
              return await next(args);
            } catch (e) {
              if ((e as Error).name === 'ConditionalCheckFailedException') failedConditions++;
              throw e;
            }
          },
          { step: 'initialize', name: 'failedConditions' },
        );
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('costs at most 2.2 writes and 0.05 failed conditional writes per item, with the right output', async () => {
    const call = apiClient(stack);
    dynamo.reset();
    failedConditions = 0;
    const started = await call('POST', '/workflows/mapped/instances', { input: ITEMS, instanceId: 'map-1' });
    expect(started.status).toBe(201);
    let view: { status: string; output?: number } = { status: 'RUNNING' };
    while (view.status === 'RUNNING') view = (await call('GET', '/instances/map-1?wait=25')).json;
    expect(view).toMatchObject({ status: 'COMPLETED', output: ITEMS * (ITEMS - 1) });
    const writes = ['PutItemCommand', 'UpdateItemCommand'].reduce((n, c) => n + dynamo.count(c), 0);
    console.log(
      `map of ${ITEMS}: ${(writes / ITEMS).toFixed(3)} writes and ${(failedConditions / ITEMS).toFixed(3)} failed conditional writes per item; ${JSON.stringify(dynamo.snapshot())}`,
    );
    expect(writes / ITEMS).toBeLessThanOrEqual(2.2);
    expect(failedConditions / ITEMS).toBeLessThanOrEqual(0.05);
    // The run's journal holds the map's start and end, not one entry per item.
    const history = (await call('GET', '/instances/map-1/history')).json.items as { type: string }[];
    expect(history.filter((e) => e.type === 'task-completed').length).toBeLessThan(10);
  });
});
