import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusText from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localTelemetry, serveMetrics } from '../../local/observability.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { QueueUrlCache } from '../../shared/adapters/sqs/queue-urls.ts';
import { SqsTaskQueue } from '../../shared/adapters/sqs/task-queue.ts';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import { branch, flow, TerminalError, task } from '../../shared/index.ts';
import type { TaskReport } from '../../shared/runtime/worker.ts';
import { startFauxqs } from '../support/fauxqs.ts';
import { apiClient, waitFor } from '../support/local-api.ts';
import { parentOf, startTestTracing, type TestTracing } from '../support/tracing.ts';

/** Markers that must never reach a log line: a payload, a secret value. */
const PAYLOAD = 'PAYLOAD-MARKER-7f3a';
const SECRET = 'SECRET-VALUE-91c2e';

const fetchToken = task('fetch-token', async (input: { note: string }, ctx) => {
  const token = await ctx.secret('obs/token');
  return { note: `${input.note}:${PAYLOAD}`, tokenLength: token.length };
});
const side = (name: string) => task(name, (x: { note: string }) => ({ [name]: x.note }));
const flaky = task(
  'flaky',
  (x: Record<string, string>, ctx) => {
    if (ctx.attempt === 1) throw new Error('transient glitch');
    return { done: x };
  },
  { retry: { maxAttempts: 3, initialDelay: '100ms', maxDelay: '100ms' } },
);
const observed = flow<{ note: string }>('observed')
  .then(fetchToken)
  .fork([branch('left', side('left')), branch('right', side('right'))])
  .join('both', ([l, r]) => ({ ...l, ...r }))
  .then(flaky)
  .build();
const doomed = task('doomed', (_: { note: string }): number => {
  throw new TerminalError('cannot ship to the moon');
});
const failing = flow<{ note: string }>('failing').then(doomed).build();

/** A metric family as parse-prometheus-text-format returns it. */
interface Family {
  readonly name: string;
  readonly type: string;
  readonly metrics: readonly {
    readonly value?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly buckets?: Readonly<Record<string, string>>;
  }[];
}

async function scrape(url: string): Promise<{ contentType: string; families: Map<string, Family> }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  const families = parsePrometheusText(await res.text()) as Family[];
  return { contentType: res.headers.get('content-type') ?? '', families: new Map(families.map((f) => [f.name, f])) };
}

/**
 * Observations of one histogram series: its `_count` sample. (The npm parser
 * merges the series of a labelled histogram and drops their labels, counts
 * and sums, so this one sample is read from the exposition's own line.)
 */
function histogramCount(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}_count{${labels}} `));
  return Number(line?.split(' ')[1] ?? 0);
}

/** A counter sample's value, by labels (an OpenMetrics counter's samples are under `<name>_total`). */
const counterValue = (f: Family | undefined, labels: Record<string, string>) =>
  Number(f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0);

interface Line {
  readonly level: string;
  readonly message: string;
  readonly [key: string]: unknown;
}

describe('observability on the local stack (real SQS and DynamoDB wire protocols)', () => {
  let dir: string;
  let stack: LocalStack;
  let call: ReturnType<typeof apiClient>;
  let tracing: TestTracing;
  const raw: string[] = [];
  const reports: TaskReport[] = [];
  const lines = () => raw.map((l) => JSON.parse(l) as Line);
  const ofRun = (id: string) => lines().filter((l) => l.instanceId === id);

  beforeAll(async () => {
    tracing = startTestTracing();
    dir = await mkdtemp(join(tmpdir(), 'sayiir-obs-'));
    await writeFile(join(dir, 'secrets.json'), JSON.stringify({ 'obs/token': SECRET }));
    stack = await startLocalStack({
      emulateAws: true,
      dataDir: dir,
      workflows: [observed, failing],
      reaperIntervalMs: 200,
      claims: { reserveTtlMs: 1_000, leaseMs: 3_000, heartbeatMs: 500 },
      log: (line) => raw.push(line),
      onTask: (r) => reports.push(r),
    });
    call = apiClient(stack);
  });
  afterAll(async () => {
    await stack?.stop();
    await tracing?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (workflow: string, instanceId: string) => {
    const started = await call('POST', `/workflows/${workflow}/instances`, { input: { note: PAYLOAD }, instanceId });
    expect(started.status).toBe(201);
    return waitFor(
      async () => {
        const r = await call('GET', `/instances/${instanceId}`);
        if (r.json?.status === 'RUNNING') return undefined;
        // The run's end is logged when its entry is appended: wait for that line too.
        return ofRun(instanceId).some((l) => String(l.message).startsWith('run ')) &&
          ofRun(instanceId).filter((l) => l.message === 'run started').length === 1
          ? r.json
          : undefined;
      },
      20_000,
      `${instanceId} to finish`,
    );
  };

  it('logs one JSON line per task outcome, with every correlation key, and one per run start and end', async () => {
    const done = await run('observed', 'obs-1');
    expect(done.status).toBe('COMPLETED');
    const mine = ofRun('obs-1');
    // Every task the worker reported is one line, whatever its outcome.
    const taskReports = reports.filter((r) => r.dispatch.instanceId === 'obs-1');
    const taskLines = mine.filter((l) => String(l.message).startsWith('task '));
    expect(taskLines).toHaveLength(taskReports.length);
    const completed = taskLines.filter((l) => l.message === 'task completed');
    expect(completed.map((l) => l.taskKey).sort()).toEqual(
      taskReports
        .filter((r) => r.outcome === 'completed')
        .map((r) => r.dispatch.key)
        .sort(),
    );
    // fetch-token, left, right, both, flaky: each completed once.
    expect(completed).toHaveLength(5);
    const retried = taskLines.filter((l) => l.message === 'task retried');
    expect(retried).toHaveLength(1);
    expect(retried[0]).toMatchObject({ level: 'WARN', attempt: 1, outcome: 'retried' });
    expect(completed.find((l) => String(l.taskKey).includes('flaky'))).toMatchObject({ attempt: 2 });
    const traceIds = new Set<unknown>();
    for (const l of taskLines) {
      expect(l).toMatchObject({ service: 'sayiir', workflow: 'observed', instanceId: 'obs-1', pool: 'default' });
      expect(typeof l.taskKey).toBe('string');
      expect(l.attempt).toBeGreaterThanOrEqual(1);
      expect(typeof l.function_request_id).toBe('string');
      expect(String(l.traceId)).toMatch(/^[0-9a-f]{32}$/);
      expect(typeof l.timestamp).toBe('string');
      if (l.outcome !== 'skipped') expect(l.durationMs).toBeGreaterThanOrEqual(0);
      traceIds.add(l.traceId);
    }
    // One run, one trace: across the queue hops, the inline chain and the retry the reaper dispatched
    // (from the run's root context, kept in its stored snapshot).
    expect(traceIds.size).toBe(1);
    const stored = await stack.store.get('obs-1');
    expect(stored?.trace?.split('-')[1]).toBe([...traceIds][0]);
    const runLines = mine.filter((l) => String(l.message).startsWith('run '));
    expect(runLines.map((l) => l.message)).toEqual(['run started', 'run completed']);
    expect(runLines[0]).toMatchObject({ workflow: 'observed', inputBytes: JSON.stringify({ note: PAYLOAD }).length });
    expect(runLines[1]).toMatchObject({ level: 'INFO', status: 'COMPLETED', workflow: 'observed' });
    expect(runLines[1]?.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('logs a terminal failure as a failed task, a dead letter and a failed run, at level ERROR', async () => {
    const done = await run('failing', 'obs-2');
    expect(done.status).toBe('FAILED');
    await waitFor(
      async () => (ofRun('obs-2').some((l) => l.message === 'task dead-lettered') ? true : undefined),
      10_000,
      'the dead-letter line',
    );
    const mine = ofRun('obs-2');
    const failed = mine.filter((l) => l.message === 'task failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: 'ERROR', workflow: 'failing', attempt: 1, pool: 'default' });
    expect(mine.filter((l) => l.message === 'task dead-lettered')).toHaveLength(1);
    expect(mine.find((l) => l.message === 'run failed')).toMatchObject({ level: 'ERROR', error: 'TerminalError' });
  });

  it('makes a fork/join run one trace across the queue hops: each task span is the child of the step that dispatched it', () => {
    const spans = tracing.spans().filter((sp) => sp.attributes['sayiir.instance_id'] === 'obs-1');
    const root = spans.find((sp) => sp.name === 'start observed');
    expect(root).toBeDefined();
    expect(parentOf(root as (typeof spans)[number])).toBeUndefined();
    const ran = spans.filter((sp) => sp.name.startsWith('task ') && sp.attributes['sayiir.outcome'] !== 'skipped');
    const byTask = (name: string) => ran.filter((sp) => String(sp.attributes['sayiir.task_key']).includes(name));
    expect(new Set(spans.map((sp) => sp.spanContext().traceId)).size).toBe(1);
    const [token] = byTask('fetch-token');
    const [left] = byTask('left');
    const [right] = byTask('right');
    const [both] = byTask('both');
    const flakies = byTask('flaky').sort(
      (a, b) => Number(a.attributes['sayiir.attempt']) - Number(b.attributes['sayiir.attempt']),
    );
    expect([token, left, right, both].every(Boolean)).toBe(true);
    expect(flakies).toHaveLength(2);
    const id = (sp: (typeof spans)[number] | undefined) => sp?.spanContext().spanId;
    expect(parentOf(token as (typeof spans)[number])).toBe(id(root));
    // Both branches were dispatched by the first task's commit (one ran inline, one came through SQS).
    expect(parentOf(left as (typeof spans)[number])).toBe(id(token));
    expect(parentOf(right as (typeof spans)[number])).toBe(id(token));
    // The join was dispatched by the branch that finished last.
    expect([id(left), id(right)]).toContain(parentOf(both as (typeof spans)[number]));
    expect(parentOf(flakies[0] as (typeof spans)[number])).toBe(id(both));
    // The retry was dispatched by the reaper when its backoff ended: a child of the run's root.
    expect(parentOf(flakies[1] as (typeof spans)[number])).toBe(id(root));
    expect(flakies.map((sp) => sp.attributes['sayiir.outcome'])).toEqual(['retried', 'completed']);
    expect(token?.attributes).toMatchObject({
      'sayiir.workflow': 'observed',
      'sayiir.instance_id': 'obs-1',
      'sayiir.attempt': 1,
      'sayiir.pool': 'default',
      'sayiir.outcome': 'completed',
    });
  });

  it('never writes the API key, a secret value or a payload in any line', () => {
    expect(raw.length).toBeGreaterThan(10);
    for (const line of raw) {
      expect(line).not.toContain(stack.apiKey);
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(PAYLOAD);
      expect(line).not.toContain('cannot ship to the moon');
    }
  });

  it('serves the metrics on a local-only port in the OpenMetrics text format, with the right histogram counts', async () => {
    expect(stack.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const { contentType, families } = await scrape(stack.metricsUrl);
    const text = await (await fetch(stack.metricsUrl)).text();
    expect(contentType).toContain('application/openmetrics-text');
    // Every attempt that ran and was not skipped is one observation; every run that ended, one run duration.
    const ran = (workflow: string) =>
      reports.filter((r) => r.dispatch.workflow === workflow && r.outcome !== 'skipped').length;
    expect([ran('observed'), ran('failing')]).toEqual([6, 1]); // 5 completed + 1 retried; 1 failed
    for (const name of ['sayiir_task_duration_seconds', 'sayiir_step_latency_seconds', 'sayiir_run_duration_seconds']) {
      expect(families.get(name)?.type).toBe('HISTOGRAM');
    }
    for (const workflow of ['observed', 'failing']) {
      const series = `workflow="${workflow}",pool="default"`;
      expect(histogramCount(text, 'sayiir_task_duration_seconds', series)).toBe(ran(workflow));
      expect(histogramCount(text, 'sayiir_step_latency_seconds', series)).toBe(ran(workflow));
      expect(histogramCount(text, 'sayiir_run_duration_seconds', `workflow="${workflow}"`)).toBe(1);
    }
    // One queue wait per dispatch that came through SQS: fewer than the attempts (some ran inline), at least one per run.
    const waits = histogramCount(text, 'sayiir_queue_wait_seconds', 'workflow="observed",pool="default"');
    expect(waits).toBe(
      reports.filter(
        (r) => r.dispatch.workflow === 'observed' && r.timing?.queueWaitMs !== undefined && r.outcome !== 'skipped',
      ).length,
    );
    expect(waits).toBeGreaterThanOrEqual(1);
    const completed = families.get('sayiir_tasks_completed_total');
    expect(counterValue(completed, { workflow: 'observed', pool: 'default' })).toBe(5);
    expect(counterValue(families.get('sayiir_tasks_retried_total'), { workflow: 'observed' })).toBe(1);
    expect(counterValue(families.get('sayiir_tasks_failed_total'), { workflow: 'failing' })).toBe(1);
    expect(counterValue(families.get('sayiir_dead_letters_total'), { pool: 'default' })).toBe(1);
    expect(counterValue(families.get('sayiir_runs_started_total'), { workflow: 'observed' })).toBe(1);
    expect(counterValue(families.get('sayiir_runs_completed_total'), { workflow: 'observed' })).toBe(1);
    expect(counterValue(families.get('sayiir_runs_failed_total'), { workflow: 'failing' })).toBe(1);
    // Nothing is labelled by instance.
    expect(text).not.toContain('obs-1');
    expect(text.trimEnd().endsWith('# EOF')).toBe(true);
  });

  it('answers 404 to anything but GET /metrics', async () => {
    expect((await fetch(stack.metricsUrl.replace('/metrics', '/'))).status).toBe(404);
    expect((await fetch(stack.metricsUrl, { method: 'POST' })).status).toBe(404);
  });
});

describe('the queue depth gauge', () => {
  it('moves when work is queued (read from SQS at each scrape)', async () => {
    const sqs = await startFauxqs();
    try {
      await sqs.createPoolQueues('obs', { name: 'idle', functionTimeoutSeconds: 30, visibilityTimeoutSeconds: 30 });
      const queue = new SqsTaskQueue(sqs.client, new QueueUrlCache(sqs.client, 'obs').queueUrl);
      const t = localTelemetry({ pools: ['idle'], queue: () => queue });
      const server = await serveMetrics(t.metrics);
      try {
        const depth = async (priority: string) =>
          counterValue((await scrape(server.url)).families.get('sayiir_queue_depth'), { pool: 'idle', priority });
        expect(await depth('normal')).toBe(0);
        const dispatch = (key: string, priority: 'normal' | 'high'): Dispatch => ({
          instanceId: 'q-1',
          workflow: 'w',
          key,
          qid: key,
          input: { v: 'x' },
          attempt: 1,
          gen: 1,
          priority,
          pool: 'idle',
        });
        await queue.send([
          dispatch('a', 'normal'),
          dispatch('b', 'normal'),
          dispatch('c', 'normal'),
          dispatch('d', 'high'),
        ]);
        expect(await depth('normal')).toBe(3);
        expect(await depth('high')).toBe(1);
        expect(await depth('low')).toBe(0);
      } finally {
        await server.close();
      }
    } finally {
      await sqs.close();
    }
  });
});
