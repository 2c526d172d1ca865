import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { branch, flow, task } from '../../shared/index.ts';
import { apiClient } from '../support/local-api.ts';

const BRANCHES = 8;
const forked = flow<number>('forked')
  .fork(
    Array.from({ length: BRANCHES }, (_, i) =>
      branch(
        `b${i}`,
        task(`b${i}`, (x: number) => x + i, { timeout: '10s' }),
      ),
    ),
  )
  .join(task('sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0), { timeout: '10s' }))
  .build();

const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand']);

/** DynamoDB writes by table, and the conditional ones that failed. */
class WriteLog {
  readonly writes = new Map<string, number>();
  failedConditions = 0;

  record(table: string): void {
    this.writes.set(table, (this.writes.get(table) ?? 0) + 1);
  }
  total(): number {
    return [...this.writes.values()].reduce((a, b) => a + b, 0);
  }
  reset(): void {
    this.writes.clear();
    this.failedConditions = 0;
  }
}

describe(`a fork of ${BRANCHES} single-task branches over the wire`, () => {
  let dir: string;
  let stack: LocalStack;
  const log = new WriteLog();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-fork-'));
    stack = await startLocalStack({
      emulateAws: true,
      dataDir: dir,
      workflows: [forked],
      pollerConcurrency: 16,
      // Keep the reaper out of the counts: it only acts on work that is overdue.
      reaperIntervalMs: 60_000,
      instrument: (clients) => {
        clients.dynamo.middlewareStack.add(
          (next, context) => async (args) => {
            const input = (args as { input?: { TableName?: string } }).input;
            if (WRITES.has(context.commandName ?? '')) log.record(input?.TableName ?? '?');
            try {
              return await next(args);
            } catch (e) {
              if ((e as Error).name === 'ConditionalCheckFailedException') log.failedConditions++;
              throw e;
            }
          },
          { step: 'initialize', name: 'writeLog' },
        );
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Waits until no DynamoDB write happened for a while: every worker invocation of the run has ended. */
  async function quiet(): Promise<void> {
    let last = -1;
    while (log.total() !== last) {
      last = log.total();
      await sleep(300);
    }
  }

  it('costs 2 instance-table writes and 3 claim writes per branch, and no failed conditional write', async () => {
    const call = apiClient(stack);
    const per: { instances: number; claims: number; failed: number }[] = [];
    for (let run = 0; run < 3; run++) {
      log.reset();
      const id = `fork-${run}`;
      const started = await call('POST', '/workflows/forked/instances', { input: 10, instanceId: id });
      expect(started.status).toBe(201);
      let view: { status: string; output?: number } = { status: 'RUNNING' };
      while (view.status === 'RUNNING') view = (await call('GET', `/instances/${id}?wait=25`)).json;
      expect(view).toMatchObject({ status: 'COMPLETED', output: BRANCHES * 10 + (BRANCHES * (BRANCHES - 1)) / 2 });
      await quiet();
      const byTable = Object.fromEntries(log.writes);
      const instances = Object.entries(byTable)
        .filter(([t]) => t.includes('instances'))
        .reduce((n, [, c]) => n + c, 0);
      const claims = Object.entries(byTable)
        .filter(([t]) => t.includes('claims'))
        .reduce((n, [, c]) => n + c, 0);
      console.log(
        `fork of ${BRANCHES}: ${instances} instance-table writes, ${claims} claim writes, ` +
          `${log.failedConditions} failed conditional writes; ${JSON.stringify(byTable)}`,
      );
      per.push({ instances, claims, failed: log.failedConditions });
      // The fork's start and its join are the run's only journal entries for the fork.
      const history = (await call('GET', `/instances/${id}/history`)).json.items as { type: string; key?: string }[];
      expect(history.filter((e) => e.type === 'task-completed').map((e) => e.key)).toEqual(['sum']);
    }
    for (const p of per) {
      // Run: its creation, the fork's join (lanes-joined), the join task's completion, the compaction at the
      // end of that chain (4); per branch: its result and its count (2).
      expect(p.instances).toBe(4 + 2 * BRANCHES);
      // A claim per queue message (reserve, start, release: these tasks' default timeout outlasts the
      // reservation, so each chain starts its claim), one per branch: the join runs inline in the
      // chain of the branch whose count ended the fork.
      expect(p.claims).toBe(3 * BRANCHES);
      expect(p.failed).toBe(0);
    }
  });
});
