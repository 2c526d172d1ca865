import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { countRequests, type RequestCounter } from '../../shared/adapters/aws/request-counter.ts';
import type { AnyFlow } from '../../shared/index.ts';
import { flow, task } from '../../shared/index.ts';
import { apiClient, waitFor } from '../support/local-api.ts';

const STEPS = 20;

/** A 20-step sequential flow, every task in the default pool. */
function twentySteps(): AnyFlow {
  let f = flow<number>('twenty').then(task('s1', (n: number) => n + 1, { timeout: '10s' }));
  for (let i = 2; i <= STEPS; i++) f = f.then(task(`s${i}`, (n: number) => n + 1, { timeout: '10s' }));
  return f.build();
}

/** The bounds the README states. */
const BOUNDS = {
  /** DynamoDB writes per step: output item, snapshot, history entry, claim acquire, claim release. */
  writesPerStep: 5,
  /** Writes per run on top: input, snapshot and history at the start, the first task's two-phase reserve. */
  writesPerRun: 4,
  /** SQS sends per run: the first dispatch; same-pool successors run inline. */
  sendsPerRun: 1,
} as const;

const WRITES = ['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand'];
const SENDS = ['SendMessageCommand', 'SendMessageBatchCommand'];

describe('requests per step', () => {
  let dir: string;
  let stack: LocalStack;
  let dynamo: RequestCounter;
  let sqs: RequestCounter;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-rps-'));
    stack = await startLocalStack({
      dataDir: dir,
      workflows: [twentySteps()],
      // Keep the reaper out of the counts: it only reads unless work is overdue.
      reaperIntervalMs: 60_000,
      instrument: (clients) => {
        dynamo = countRequests(clients.dynamo);
        sqs = countRequests(clients.sqs);
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(`a ${STEPS}-step single-pool flow stays within the stated bounds`, async () => {
    const call = apiClient(stack);
    dynamo.reset();
    sqs.reset();
    const started = await call('POST', '/workflows/twenty/instances', { input: 0 });
    expect(started.status).toBe(201);
    const id = started.json.instanceId as string;
    await waitFor(async () => {
      const snap = await stack.store.get(id);
      return snap?.status === 'COMPLETED' ? snap : undefined;
    });
    // The worker's invocation ends after the last checkpoint: its claim release and the
    // message's delete follow. Wait for the delete, the invocation's last request.
    await waitFor(async () =>
      sqs.count('DeleteMessageBatchCommand') + sqs.count('DeleteMessageCommand') > 0 ? true : undefined,
    );
    const counts = { dynamo: dynamo.snapshot(), sqs: sqs.snapshot() };
    const writes = WRITES.reduce((n, c) => n + dynamo.count(c), 0);
    const sends = SENDS.reduce((n, c) => n + sqs.count(c), 0);
    console.log(
      `requests for ${STEPS} steps: ${writes} DynamoDB writes (${(writes / STEPS).toFixed(2)}/step), ${sends} SQS sends; ${JSON.stringify(counts)}`,
    );
    expect(writes).toBeLessThanOrEqual(BOUNDS.writesPerStep * STEPS + BOUNDS.writesPerRun);
    expect(sends).toBe(BOUNDS.sendsPerRun);
    // The first step's message is deleted once; no other message existed.
    expect(sqs.count('DeleteMessageBatchCommand') + sqs.count('DeleteMessageCommand')).toBe(1);
    const output = await stack.store.getValues(id, [`out:s${STEPS}`]);
    expect(output.get(`out:s${STEPS}`)).toBe(STEPS);
  });
});
