/**
 * `npm run bench` (first half): how fast the local stack runs workflows on
 * each back end, side by side (embedded: SQLite and in-process queues; AWS
 * emulation: dynalite and fauxqs over the wire), client-side over its HTTP
 * API, waiting for results with `?wait=`:
 *
 * - a sequential run of 10 no-op steps, one run at a time (median, p95);
 * - closed-loop throughput: N clients (in a worker thread, as another
 *   process would be), each starting a 10-step run and waiting for its
 *   output, again and again, for a fixed time;
 * - maps of no-op items (time from the start request to the output);
 * - the requests on the critical path of a step, and the latency a step
 *   would have on AWS at stated per-request latencies (emulation only: it
 *   counts DynamoDB requests).
 *
 *   npm run bench -- [--runs 200] [--clients 16] [--seconds 15] [--maps 100,1000,10000]
 *                    [--emulated-max-map 10000] [--backends embedded,emulated]
 *
 * Maps larger than `--emulated-max-map` are skipped on the emulation (a
 * 10,000-item map takes about 20 s there; lower it for a quicker look). Figures are printed, never asserted:
 * the machines are shared and noisy.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { type LocalStack, startLocalStack } from '../local/stack.ts';
import { countRequests } from '../shared/adapters/aws/request-counter.ts';
import { SayiirClient } from '../shared/client/index.ts';
import { type AnyFlow, flow } from '../shared/index.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    clients: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '15' },
    maps: { type: 'string', default: '100,1000,10000' },
    'emulated-max-map': { type: 'string', default: '10000' },
    backends: { type: 'string', default: 'embedded,emulated' },
  },
});
const EMULATED_MAX_MAP = Number(values['emulated-max-map']);
const BACKENDS = String(values.backends)
  .split(',')
  .filter((b): b is 'embedded' | 'emulated' => b === 'embedded' || b === 'emulated');
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

/**
 * The closed loop's clients run in a worker thread, as clients in another
 * process would: their own HTTP work (fetch, JSON) runs on its own event
 * loop and core rather than the stack's, on both back ends alike.
 */

/** Latencies (ms) of every run the closed loop completed in `SECONDS`. */
function closedLoop(url: string, apiKey: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    // A worker thread starts without this process's TypeScript loader: its entry registers tsx's.
    const worker = new Worker(new URL('./closed-loop-worker.mjs', import.meta.url), {
      workerData: { url, apiKey, clients: CLIENTS, seconds: SECONDS },
    });
    worker.once('message', (latencies: number[]) => {
      resolve(latencies);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

/** One back end's figures, as printed in the table. */
interface Figures {
  sequential?: string;
  throughput?: string;
  maps: Map<number, string>;
  model?: string;
}

async function bench(backend: 'embedded' | 'emulated'): Promise<Figures> {
  const dir = await mkdtemp(join(tmpdir(), 'sayiir-bench-latency-'));
  let dynamo: ReturnType<typeof countRequests> | undefined;
  const common = {
    dataDir: dir,
    workflows: [tenSteps(), mapped],
    pollerConcurrency: CLIENTS,
    reaperIntervalMs: 1_000,
  };
  const stack: LocalStack =
    backend === 'emulated'
      ? await startLocalStack({
          ...common,
          emulateAws: true,
          instrument: (clients) => {
            dynamo = countRequests(clients.dynamo, 'benchLatency');
          },
        })
      : await startLocalStack(common);
  const sayiir = new SayiirClient({ url: stack.url, apiKey: stack.apiKey });

  /** Starts a run and waits for its output (`?wait=`, through the typed client); resolves with the client-side latency (ms). */
  async function runOnce(workflow: string, input: number): Promise<{ ms: number; output: unknown }> {
    const t0 = performance.now();
    const output = await (await sayiir.start(workflow, input)).result({ timeoutMs: 600_000 });
    return { ms: performance.now() - t0, output };
  }

  const figures: Figures = { maps: new Map() };
  try {
    // Warm up the stack (connections, compiled flows).
    for (let i = 0; i < 5; i++) await runOnce('ten', i);

    const latencies: number[] = [];
    for (let i = 0; i < RUNS; i++) latencies.push((await runOnce('ten', i)).ms);
    figures.sequential = `median ${median(latencies).toFixed(1)} ms, p95 ${quantile(latencies, 0.95).toFixed(1)} ms`;

    const cpu0 = process.cpuUsage();
    const loop = await closedLoop(stack.url, stack.apiKey);
    const cpu = process.cpuUsage(cpu0);
    // The process's CPU time (the clients' thread included) per step: steadier than steps/s on a shared machine.
    const cpuPerStepMs = (cpu.user + cpu.system) / 1000 / Math.max(1, loop.length * STEPS);
    figures.throughput = `${((loop.length * STEPS) / SECONDS).toFixed(0)} steps/s (${(loop.length / SECONDS).toFixed(1)} runs/s, median ${median(loop).toFixed(1)} ms, CPU ${cpuPerStepMs.toFixed(2)} ms/step)`;

    for (const n of MAPS) {
      if (backend === 'emulated' && n > EMULATED_MAX_MAP) {
        figures.maps.set(n, 'skipped (--emulated-max-map)');
        continue;
      }
      const r = await runOnce('mapped', n);
      if (r.output !== n) throw new Error(`map of ${n} returned ${String(r.output)}`);
      figures.maps.set(n, `${(r.ms / 1000).toFixed(2)} s`);
    }

    if (dynamo) {
      // The critical path of one chained step: its journal put (the task itself aside).
      dynamo.reset();
      await runOnce('ten', 0);
      const counted = dynamo.snapshot();
      const perRunDynamo = Object.values(counted).reduce((a, b) => a + b, 0);
      const perStep = AWS_MS.dynamo;
      // Start: API + create; queue hop: send + event source; chain start: reserve, load, start; then one put per step.
      const firstStep = AWS_MS.apiAndLambda + AWS_MS.dynamo + AWS_MS.sqsSend + AWS_MS.eventSource + 3 * AWS_MS.dynamo;
      figures.model =
        `modelled on AWS: ${perStep} ms per chained step (one conditional put), ${firstStep} ms before the first task runs, ` +
        `${firstStep + STEPS * perStep} ms for a ${STEPS}-step run (the client's own round trips aside); ` +
        `DynamoDB requests of one run, the API answering ?wait= included: ${perRunDynamo} (${JSON.stringify(counted)}), per-request latencies assumed: ${JSON.stringify(AWS_MS)}`;
    }
  } finally {
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}

console.log('\nSayiir latency bench: the local stack on each back end (same handlers, same workflows)\n');
const results = new Map<string, Figures>();
for (const backend of BACKENDS) {
  process.stdout.write(`  running on ${backend}…\n`);
  results.set(backend, await bench(backend));
}
const rows: [string, (f: Figures) => string | undefined][] = [
  [`sequential, ${STEPS} no-op steps, ${RUNS} runs one at a time`, (f) => f.sequential],
  [`closed loop, ${CLIENTS} clients for ${SECONDS} s`, (f) => f.throughput],
  ...MAPS.map((n): [string, (f: Figures) => string | undefined] => [
    `map of ${n} no-op items (maxConcurrency 16), start to output`,
    (f) => f.maps.get(n),
  ]),
];
const columns = [...results.keys()];
const width = Math.max(...rows.map(([label]) => label.length));
const cell = 66;
console.log(`\n${''.padEnd(width)} | ${columns.map((c) => c.padEnd(cell)).join(' | ')}`);
console.log(`${'-'.repeat(width)}-|-${columns.map(() => '-'.repeat(cell)).join('-|-')}`);
for (const [label, pick] of rows) {
  console.log(
    `${label.padEnd(width)} | ${columns.map((c) => (pick(results.get(c) as Figures) ?? '-').padEnd(cell)).join(' | ')}`,
  );
}
const model = results.get('emulated')?.model;
if (model) console.log(`\n${model}`);
