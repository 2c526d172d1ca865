/**
 * `npm run bench`: what a step costs. Runs workflows on the local stack (the
 * same handler code as on Lambda, over the real DynamoDB and SQS wire
 * protocols), counts every request and the capacity units it would consume,
 * times the engine's own work per step, and prices a million steps.
 *
 *   npm run bench -- [--runs 20] [--steps 20]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type EmulatedLocalStack, startLocalStack } from '../local/stack.ts';
import { SayiirClient } from '../shared/client/index.ts';
import { type AnyFlow, branch, flow, task } from '../shared/index.ts';

/** us-east-1 list prices used (USD). */
export const PRICES = {
  dynamoWriteUnitPerMillion: 0.625, // on-demand, per million write request units (1 KB each)
  dynamoReadUnitPerMillion: 0.125, // on-demand, per million read request units (4 KB strongly consistent)
  lambdaRequestPerMillion: 0.2,
  lambdaArmGbSecond: 0.0000133334,
  sqsFifoRequestPerMillion: 0.5,
  stepFunctionsStandardPerMillionTransitions: 25,
  stepFunctionsExpressRequestPerMillion: 1,
} as const;

interface Units {
  requests: Record<string, number>;
  /** Messages sent to the queues (entries of the batch sends). */
  messages: number;
  writeUnits: number;
  readUnits: number;
}

function sizeOfItem(item: Record<string, unknown> | undefined): number {
  // DynamoDB item size: attribute names plus values, near enough for pricing.
  return item ? Buffer.byteLength(JSON.stringify(item)) : 0;
}

function instrument(stack: { dynamo: EmulatedLocalStack['dynamo']; sqs: EmulatedLocalStack['sqs'] }, units: Units) {
  stack.dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? 'unknown';
      units.requests[name] = (units.requests[name] ?? 0) + 1;
      const input = (args as { input: Record<string, unknown> }).input;
      if (name === 'PutItemCommand') units.writeUnits += Math.max(1, Math.ceil(sizeOfItem(input.Item as never) / 1024));
      if (name === 'UpdateItemCommand' || name === 'DeleteItemCommand') units.writeUnits += 1;
      if (name === 'BatchWriteItemCommand') {
        for (const reqs of Object.values(
          (input.RequestItems ?? {}) as Record<string, { PutRequest?: { Item: never } }[]>,
        )) {
          for (const r of reqs) units.writeUnits += Math.max(1, Math.ceil(sizeOfItem(r.PutRequest?.Item) / 1024));
        }
      }
      const out = await next(args);
      const output = (out as unknown as { output: Record<string, unknown> }).output;
      if (name === 'GetItemCommand') units.readUnits += Math.max(1, Math.ceil(sizeOfItem(output.Item as never) / 4096));
      if (name === 'BatchGetItemCommand') {
        for (const items of Object.values((output.Responses ?? {}) as Record<string, never[]>)) {
          for (const item of items) units.readUnits += Math.max(1, Math.ceil(sizeOfItem(item) / 4096));
        }
      }
      if (name === 'QueryCommand') units.readUnits += Math.max(1, Math.ceil(Number(output.ScannedCount ?? 0) / 4) / 2);
      return out;
    },
    { step: 'initialize', name: 'benchUnits' },
  );
  stack.sqs.middlewareStack.add(
    (next, context) => async (args) => {
      const name = `sqs:${(context as { commandName?: string }).commandName ?? 'unknown'}`;
      units.requests[name] = (units.requests[name] ?? 0) + 1;
      if (name === 'sqs:SendMessageBatchCommand') {
        units.messages += ((args as { input: { Entries?: unknown[] } }).input.Entries ?? []).length;
      }
      return next(args);
    },
    { step: 'initialize', name: 'benchSqs' },
  );
}

/** Short tasks: their timeout fits in the stack's reservation (5 s), so a chain never starts its claim. */
function sequential(steps: number): AnyFlow {
  let f = flow<number>('sequential').then(task('s1', (n: number) => n + 1, { timeout: '2s' }));
  for (let i = 2; i <= steps; i++) f = f.then(task(`s${i}`, (n: number) => n + 1, { timeout: '2s' }));
  return f.build();
}

const fanOut = flow<number>('fan-out')
  .fork([branch('a', (n: number) => n + 1), branch('b', (n: number) => n + 2), branch('c', (n: number) => n + 3)])
  .join('join', ([a, b, c]) => a + b + c)
  .map(
    'items',
    (n) => Array.from({ length: 8 }, (_, i) => n + i),
    (x: number) => x * 2,
    { maxConcurrency: 4 },
  )
  .then('sum', (xs: number[]) => xs.reduce((a, b) => a + b, 0))
  .build();
const FAN_OUT_STEPS = 3 + 1 + 1 + 8 + 1; // branches, join, items, map items, sum

async function measure(name: string, f: AnyFlow, stepsPerRun: number, runs: number) {
  const dir = await mkdtemp(join(tmpdir(), 'sayiir-bench-'));
  const units: Units = { requests: {}, messages: 0, writeUnits: 0, readUnits: 0 };
  let stack: EmulatedLocalStack | undefined;
  try {
    stack = await startLocalStack({
      emulateAws: true,
      dataDir: dir,
      workflows: [f],
      reaperIntervalMs: 600_000, // keep the reaper's idle scans out of the figures
      instrument: (clients) => instrument(clients, units),
    });
    const s = stack;
    const sayiir = new SayiirClient({ url: s.url, apiKey: s.apiKey });
    const started = performance.now();
    const ids = await Promise.all(
      Array.from({ length: runs }, async (_, i) => (await sayiir.start(f.name, i)).instanceId),
    );
    for (const id of ids) {
      for (;;) {
        const snap = await s.store.get(id);
        units.requests.GetItemCommand = (units.requests.GetItemCommand ?? 1) - 1; // the bench's own polling
        units.readUnits -= 1;
        if (snap?.status === 'COMPLETED') break;
        if (snap?.status === 'FAILED') throw new Error(`run ${id} failed: ${snap.error?.message}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const elapsedMs = performance.now() - started;
    const steps = stepsPerRun * runs;
    const sqsSends =
      (units.requests['sqs:SendMessageBatchCommand'] ?? 0) + (units.requests['sqs:SendMessageCommand'] ?? 0);
    const messages = units.messages;
    const writes = ['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand'].reduce(
      (n, c) => n + (units.requests[c] ?? 0),
      0,
    );
    return { name, runs, steps, elapsedMs, writes, sqsSends, messages, units };
  } finally {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function price(m: Awaited<ReturnType<typeof measure>>, engineMsPerStep: number) {
  const perStep = (x: number) => x / m.steps;
  const million = 1_000_000;
  const dynamo =
    perStep(m.units.writeUnits) * PRICES.dynamoWriteUnitPerMillion +
    perStep(m.units.readUnits) * PRICES.dynamoReadUnitPerMillion;
  // Sends as counted (batched); each message also costs at most one receive and one delete
  // (the event source batches them), and at most one Lambda invocation.
  const sqs = perStep(m.sqsSends + 2 * m.messages) * PRICES.sqsFifoRequestPerMillion;
  const lambdaInvocations = perStep(m.messages) * PRICES.lambdaRequestPerMillion;
  // Upper bound: the local figure includes the DynamoDB and SQS servers' own work. 1 GB worker.
  const lambdaCompute = (engineMsPerStep / 1000) * PRICES.lambdaArmGbSecond * million;
  return {
    dynamo,
    sqs,
    lambda: lambdaInvocations + lambdaCompute,
    total: dynamo + sqs + lambdaInvocations + lambdaCompute,
  };
}

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '20' }, steps: { type: 'string', default: '20' } },
});
const runs = Number(values.runs);
const steps = Number(values.steps);
const results = [
  await measure('sequential', sequential(steps), steps, runs),
  await measure('fan-out', fanOut, FAN_OUT_STEPS, runs),
];

console.log('\nSayiir cost bench (local stack, real wire protocols)\n');
for (const m of results) {
  const msPerStep = m.elapsedMs / m.steps;
  const p = price(m, msPerStep);
  console.log(
    `${m.name}: ${m.runs} runs, ${m.steps} steps, ${m.elapsedMs.toFixed(0)} ms wall, ${msPerStep.toFixed(2)} ms of machine time per step (local DynamoDB and SQS servers included)`,
  );
  console.log(
    `  per step: ${(m.writes / m.steps).toFixed(2)} DynamoDB writes (${(m.units.writeUnits / m.steps).toFixed(2)} WRU), ${(m.units.readUnits / m.steps).toFixed(2)} RRU, ${(m.sqsSends / m.steps).toFixed(3)} SQS send requests, ${(m.messages / m.steps).toFixed(3)} queued messages`,
  );
  console.log(
    `  per million steps: DynamoDB $${p.dynamo.toFixed(2)}, SQS $${p.sqs.toFixed(2)}, Lambda $${p.lambda.toFixed(2)} => $${p.total.toFixed(2)}` +
      ` (Step Functions Standard: $${PRICES.stepFunctionsStandardPerMillionTransitions.toFixed(2)} in transitions alone)`,
  );
  console.log(`  requests: ${JSON.stringify(m.units.requests)}`);
}
console.log(`\nprices used (USD, us-east-1 list): ${JSON.stringify(PRICES)}`);
