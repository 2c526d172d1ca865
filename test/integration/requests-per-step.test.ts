import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmulatedLocalStack, startLocalStack } from '../../local/stack.ts';
import { countRequests, type RequestCounter } from '../../shared/adapters/aws/request-counter.ts';
import type { AnyFlow, Duration } from '../../shared/index.ts';
import { flow, LoopResult, task } from '../../shared/index.ts';
import { apiClient, waitFor } from '../support/local-api.ts';

/**
 * An n-step sequential flow, every task in the default pool, with a timeout
 * that fits in the stack's reservation (5 s) unless `timeout` says otherwise
 * (`default`: 5 minutes).
 */
function steps(name: string, n: number, timeout: Duration | 'default' = '2s'): AnyFlow {
  const options = timeout === 'default' ? {} : { timeout };
  let f = flow<number>(name).then(task('s1', (x: number) => x + 1, options));
  for (let i = 2; i <= n; i++) f = f.then(task(`s${i}`, (x: number) => x + 1, options));
  return f.build();
}

/** A loop whose body runs `input` times. */
const looping = flow<number>('looping')
  .loop(
    task('count', (x: number) => (x <= 1 ? LoopResult.done(0) : LoopResult.again(x - 1)), { timeout: '2s' }),
    { maxIterations: 1_000 },
  )
  .build();

const WRITES = ['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand'];
const READS = ['GetItemCommand', 'QueryCommand', 'BatchGetItemCommand'];
const SENDS = ['SendMessageCommand', 'SendMessageBatchCommand'];
const sum = (c: RequestCounter, commands: readonly string[]) => commands.reduce((n, k) => n + c.count(k), 0);

/**
 * What a run costs beyond one journal entry per step: the snapshot at the
 * start, the compaction at the end, and the chain's claim (reserve,
 * release). Tasks whose timeout fits in the reservation never start it.
 */
const WRITES_PER_RUN = 4;
/** A chain whose first task may outlive its reservation starts its claim (Reserved -> Executing) first. */
const CLAIM_START = 1;
/** The worker's one read of the run (snapshot and journal tail in one query). */
const READS_PER_RUN = 1;

describe('requests per step (the journal data path)', () => {
  let dir: string;
  let stack: EmulatedLocalStack;
  let dynamo: RequestCounter;
  let sqs: RequestCounter;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-rps-'));
    stack = await startLocalStack({
      emulateAws: true,
      dataDir: dir,
      workflows: [steps('twenty', 20), steps('hundred', 100), steps('twenty-long', 20, 'default'), looping],
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

  /** Starts a run and counts every request until its worker's invocation ends (the message delete is its last). */
  async function measure(workflow: string, input: number) {
    const call = apiClient(stack);
    dynamo.reset();
    sqs.reset();
    const started = await call('POST', `/workflows/${workflow}/instances`, { input });
    expect(started.status).toBe(201);
    await waitFor(async () =>
      sqs.count('DeleteMessageBatchCommand') + sqs.count('DeleteMessageCommand') > 0 ? true : undefined,
    );
    const counts = {
      writes: sum(dynamo, WRITES),
      reads: sum(dynamo, READS),
      sends: sum(sqs, SENDS),
      detail: { dynamo: dynamo.snapshot(), sqs: sqs.snapshot() },
    };
    const view = await call('GET', `/instances/${started.json.instanceId}`);
    expect(view.json.status).toBe('COMPLETED');
    return { ...counts, output: view.json.output };
  }

  for (const [workflow, n] of [
    ['twenty', 20],
    ['hundred', 100],
  ] as const) {
    it(`a ${n}-step single-pool flow: one journal entry per step, one read and one message per run`, async () => {
      const m = await measure(workflow, 0);
      console.log(
        `requests for ${n} steps: ${m.writes} DynamoDB writes (${(m.writes / n).toFixed(2)}/step), ` +
          `${m.reads} reads (${(m.reads / n).toFixed(2)}/step), ${m.sends} SQS sends; ${JSON.stringify(m.detail)}`,
      );
      expect(m.output).toBe(n);
      // Compaction every COMPACT_EVERY (64) entries adds one write to a chain longer than that.
      expect(m.writes).toBe(n + WRITES_PER_RUN + Math.floor((n - 1) / 64));
      expect(m.reads).toBe(READS_PER_RUN);
      // The first dispatch only: every later step runs inline in the chain.
      expect(m.sends).toBe(1);
      expect(m.detail.dynamo.PutItemCommand).toBe(n + 1);
      expect(m.writes / n).toBeLessThanOrEqual(1.2);
    });
  }

  it('tasks with the default timeout (5 minutes, past the reservation): one write more per run, to start the claim', async () => {
    const m = await measure('twenty-long', 0);
    expect(m.output).toBe(20);
    expect(m.writes).toBe(20 + WRITES_PER_RUN + CLAIM_START);
    expect(m.reads).toBe(READS_PER_RUN);
  });

  it('a loop costs the same per iteration at its 100th as at its 1st', async () => {
    const one = await measure('looping', 1);
    const hundred = await measure('looping', 100);
    expect(one.output).toBe(0);
    expect(hundred.output).toBe(0);
    // 99 more iterations, 99 more journal entries (plus one compaction past 64 entries), nothing else.
    expect(hundred.writes - one.writes).toBe(99 + 1);
    expect(hundred.reads).toBe(one.reads);
    expect(hundred.sends).toBe(one.sends);
  });
});
