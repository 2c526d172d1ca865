import { parentPort, workerData } from 'node:worker_threads';
import { SayiirClient } from '../shared/client/index.ts';

/**
 * The closed loop's clients, in a worker thread of their own (see
 * `closedLoop` in `latency.ts`): each starts a run of `ten` with the typed
 * client and waits for its output, again and again for `seconds`; the
 * latencies (ms) go back to the parent.
 */
const { url, apiKey, clients, seconds } = workerData as {
  url: string;
  apiKey: string;
  clients: number;
  seconds: number;
};
const sayiir = new SayiirClient({ url, apiKey });

async function runOnce(input: number): Promise<number> {
  const t0 = performance.now();
  await (await sayiir.start('ten', input)).result({ timeoutMs: 60_000 });
  return performance.now() - t0;
}

const until = performance.now() + seconds * 1000;
const latencies: number[] = [];
await Promise.all(
  Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; performance.now() < until; i++) latencies.push(await runOnce(c * 1_000_000 + i));
  }),
);
parentPort?.postMessage(latencies);
