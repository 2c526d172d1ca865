/**
 * A child process running the local stack on the embedded back end, for the
 * kill-and-restart test (`test/integration/embedded-restart.test.ts`):
 * `node --import tsx embedded-stack-child.ts <dataDir>`. It prints one JSON
 * line `{ "url", "apiKey", "pid" }` once the stack is up, then a line
 * `{ "completed": n }` after every 50th completed task, and stops on SIGTERM.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startLocalStack } from '../../local/stack.ts';
import { flow, task } from '../../shared/index.ts';

/**
 * A map of `n` items, each a few milliseconds of work, then a sum: 1,000
 * items take a second or so. The item's 2 s timeout bounds how long the
 * reaper waits before it recounts a map that stood still (a killed process
 * leaves one: its queued item dispatches are gone).
 */
export const restartMap = flow<number>('restart-map')
  .map(
    'items',
    (n: number) => Array.from({ length: n }, (_, i) => i),
    task(
      'double',
      async (x: number) => {
        await sleep(3);
        return x * 2;
      },
      { timeout: '2s' },
    ),
    { maxConcurrency: 16 },
  )
  .then('sum', (xs: number[]) => ({ n: xs.length, sum: xs.reduce((a, b) => a + b, 0) }))
  .build();

/** Five sequential steps of a few milliseconds each. */
export const restartChain = flow<number>('restart-chain')
  .then('a', async (n: number) => (await sleep(5)) ?? n + 1)
  .then('b', async (n: number) => (await sleep(5)) ?? n + 1)
  .then('c', async (n: number) => (await sleep(5)) ?? n + 1)
  .then('d', async (n: number) => (await sleep(5)) ?? n + 1)
  .then('e', async (n: number) => (await sleep(5)) ?? n + 1)
  .build();

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: embedded-stack-child.ts <dataDir>');
let completed = 0;
const stack = await startLocalStack({
  dataDir,
  workflows: [restartMap, restartChain],
  reaperIntervalMs: 200,
  redispatchAfterMs: 1_000,
  claims: { reserveTtlMs: 1_000, leaseMs: 2_000, heartbeatMs: 500 },
  onTask: (report) => {
    if (report.outcome === 'completed' && ++completed % 50 === 0) console.log(JSON.stringify({ completed }));
  },
});
console.log(JSON.stringify({ url: stack.url, apiKey: stack.apiKey, pid: process.pid }));
process.on('SIGTERM', () => {
  void stack.stop().then(() => process.exit(0));
});
