/**
 * `npm run bench` (first half): how fast the local stack runs workflows,
 * client-side over its HTTP API, waiting for results with `?wait=`:
 *
 * - a sequential run of 10 no-op steps, one run at a time (median, p95);
 * - closed-loop throughput: N clients, each starting a 10-step run and
 *   waiting for its output, again and again, for a fixed time;
 * - maps of no-op items (time from the start request to the output);
 * - the requests on the critical path of a step, and the latency a step
 *   would have on AWS at stated per-request latencies.
 *
 *   npm run bench -- [--runs 200] [--clients 16] [--seconds 15] [--maps 100,1000]
 *
 * Figures are printed, never asserted: the machines are shared and noisy.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalStack } from '../local/stack.ts';
import { countRequests } from '../shared/adapters/aws/request-counter.ts';
import { type AnyFlow, flow } from '../shared/index.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    clients: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '15' },
    maps: { type: 'string', default: '100,1000' },
  },
});
const RUNS = Number(values.runs);
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const MAPS = String(values.maps)
  .split(',')
  .filter(Boolean)
  .map((n) => Number(n));

const STEPS = 10;
function tenSteps(): AnyFlow {
  let f = flow<number>('ten').then('s1', (n: number) => n + 1);
  for (let i = 2; i <= STEPS; i++) f = f.then(`s${i}`, (n: number) => n + 1);
  return f.build();
}
const mapped = flow<number>('mapped')
  .map(
    'items',
    (n: number) => Array.from({ length: n }, (_, i) => i),
    (x: number) => x,
    { maxConcurrency: 16 },
  )
  .then('count', (xs: number[]) => xs.length)
  .build();

/**
 * Per-request latencies on AWS used by the model (in-region, warm), with their source:
 * DynamoDB "single-digit millisecond" (the DynamoDB developer guide) taken as 5 ms for a
 * conditional put or a consistent read; an SQS FIFO send about 10 ms and the Lambda event
 * source's hand-over of a message about 20 ms (both assumptions of ours, not published
 * figures); API Gateway HTTP API plus a warm Lambda invocation about 15 ms (assumption).
 */
const AWS_MS = { dynamo: 5, sqsSend: 10, eventSource: 20, apiAndLambda: 15 } as const;

const median = (xs: number[]) => quantile(xs, 0.5);
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

const dir = await mkdtemp(join(tmpdir(), 'sayiir-bench-latency-'));
let dynamo: ReturnType<typeof countRequests> | undefined;
const stack = await startLocalStack({
  dataDir: dir,
  workflows: [tenSteps(), mapped],
  pollerConcurrency: CLIENTS,
  reaperIntervalMs: 1_000,
  instrument: (clients) => {
    dynamo = countRequests(clients.dynamo, 'benchLatency');
  },
});
const headers = { 'x-api-key': stack.apiKey, 'content-type': 'application/json' };

/** Starts a run and waits for its output with `?wait=`; resolves with the client-side latency (ms). */
async function runOnce(workflow: string, input: number): Promise<{ ms: number; output: unknown }> {
  const t0 = performance.now();
  const res = await fetch(`${stack.url}/v1/workflows/${workflow}/instances`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ input }),
  });
  const { instanceId } = (await res.json()) as { instanceId: string };
  for (;;) {
    const view = (await (await fetch(`${stack.url}/v1/instances/${instanceId}?wait=25`, { headers })).json()) as {
      status: string;
      output?: unknown;
      error?: { message: string };
    };
    if (view.status === 'COMPLETED') return { ms: performance.now() - t0, output: view.output };
    if (view.status !== 'RUNNING') throw new Error(`run ${instanceId} ended ${view.status}: ${view.error?.message}`);
  }
}

try {
  console.log('\nSayiir latency bench (local stack, real wire protocols: dynalite, fauxqs)\n');

  // Warm up the stack (connections, compiled flows).
  for (let i = 0; i < 5; i++) await runOnce('ten', i);

  const latencies: number[] = [];
  for (let i = 0; i < RUNS; i++) latencies.push((await runOnce('ten', i)).ms);
  console.log(
    `sequential, ${STEPS} no-op steps, ${RUNS} runs one at a time: median ${median(latencies).toFixed(1)} ms, p95 ${quantile(latencies, 0.95).toFixed(1)} ms (start request to output in hand)`,
  );

  const loop: number[] = [];
  const until = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; performance.now() < until; i++) loop.push((await runOnce('ten', c * 1_000_000 + i)).ms);
    }),
  );
  console.log(
    `closed loop, ${CLIENTS} clients for ${SECONDS} s: ${(loop.length / SECONDS).toFixed(1)} runs/s, ${((loop.length * STEPS) / SECONDS).toFixed(0)} steps/s, latency median ${median(loop).toFixed(1)} ms, p95 ${quantile(loop, 0.95).toFixed(1)} ms`,
  );

  for (const n of MAPS) {
    const r = await runOnce('mapped', n);
    if (r.output !== n) throw new Error(`map of ${n} returned ${String(r.output)}`);
    console.log(`map of ${n} no-op items (maxConcurrency 16): ${(r.ms / 1000).toFixed(2)} s to output`);
  }

  // The critical path of one chained step: its journal put (the task itself aside).
  dynamo?.reset();
  await runOnce('ten', 0);
  const counted = dynamo?.snapshot() ?? {};
  const perRunDynamo = Object.values(counted).reduce((a, b) => a + b, 0);
  const perStep = AWS_MS.dynamo;
  // Start: API + create; queue hop: send + event source; chain start: reserve, load, start; then one put per step.
  const firstStep = AWS_MS.apiAndLambda + AWS_MS.dynamo + AWS_MS.sqsSend + AWS_MS.eventSource + 3 * AWS_MS.dynamo;
  console.log(
    `modelled on AWS: ${perStep} ms per chained step (one conditional put), ${firstStep} ms before the first task runs, ` +
      `${firstStep + STEPS * perStep} ms for a ${STEPS}-step run (the client's own round trips aside); ` +
      `DynamoDB requests of one run, the API answering ?wait= included: ${perRunDynamo} (${JSON.stringify(counted)}), per-request latencies assumed: ${JSON.stringify(AWS_MS)}`,
  );
} finally {
  await stack.stop();
  await rm(dir, { recursive: true, force: true });
}
