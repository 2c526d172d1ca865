import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryClaimStore } from '../../../shared/adapters/memory/claim-store.ts';
import { MemoryDeadLetterStore } from '../../../shared/adapters/memory/dead-letter-store.ts';
import { MemoryDeadLetters } from '../../../shared/adapters/memory/dead-letters.ts';
import { MemoryTaskQueue } from '../../../shared/adapters/memory/task-queue.ts';
import { makeApi } from '../../../shared/api/api.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { FakeClock, flow, MemoryInstanceStore, MemorySecrets, TerminalError, task } from '../../../shared/index.ts';
import { startInstance } from '../../../shared/runtime/instances.ts';
import { reapOnce } from '../../../shared/runtime/reaper.ts';
import { WorkflowRegistry } from '../../../shared/runtime/registry.ts';
import { processDispatch, type WorkerDeps } from '../../../shared/runtime/worker.ts';

const KEY = 'test-key';
let healthy = false;
const pay = flow<{ amount: number }>('pay')
  .then(
    task('charge', ({ amount }: { amount: number }) => {
      if (!healthy) throw new TerminalError(`declined: ${amount}`);
      return { paid: amount };
    }),
  )
  .build();

let store: MemoryInstanceStore;
let queue: MemoryTaskQueue;
let dlq: MemoryDeadLetters;
let letters: MemoryDeadLetterStore;
let claims: MemoryClaimStore;
let registry: WorkflowRegistry;
let clock: FakeClock;
let worker: WorkerDeps;
let api: ReturnType<typeof makeApi>;

function call(method: string, target: string, body?: unknown) {
  const [path = '', query = ''] = target.split('?');
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: query,
    ...(query ? { queryStringParameters: Object.fromEntries(new URLSearchParams(query)) } : {}),
    headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    isBase64Encoded: false,
    requestContext: { http: { method, path }, stage: '$default' },
  } as unknown as APIGatewayProxyEventV2;
  return api(event).then((r) => ({ status: r.statusCode, json: r.body ? JSON.parse(r.body) : null }));
}

beforeEach(() => {
  healthy = false;
  store = new MemoryInstanceStore();
  queue = new MemoryTaskQueue();
  clock = new FakeClock(1_000_000);
  dlq = new MemoryDeadLetters(() => clock.now());
  letters = new MemoryDeadLetterStore();
  registry = new WorkflowRegistry([pay]);
  const secrets = new MemorySecrets({ 'sayiir/api-keys': JSON.stringify([KEY]) });
  claims = new MemoryClaimStore();
  api = makeApi({ store, queue, registry, secrets, clock, claims, deadLetters: letters });
  worker = { store, claims, queue, registry, clock, secrets, pool: 'default', workerId: 'w', deadLetters: letters };
});

async function failRun(id: string): Promise<Dispatch> {
  const started = await startInstance(store, pay, { amount: 7 }, { instanceId: id, now: clock.now() });
  const d = started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []))[0] as Dispatch;
  await processDispatch(worker, d, () => 900_000);
  clock.advance(1_000);
  return d;
}

/** Runs what the queue holds, as the workers would. */
async function drainQueue(): Promise<void> {
  for (const d of queue.sent.splice(0)) await processDispatch(worker, d, () => 900_000);
}

/** Everything a read could change: the records and the SQS DLQ. */
const dump = () => JSON.stringify({ records: letters.all(), queued: dlq.size('default') });

describe('DLQ routes', () => {
  it('lists a dead task from the store with its state, reason, attempts, input and attempt history', async () => {
    await failRun('r1');
    const listed = await call('GET', '/v1/dlq/default');
    expect(listed.status).toBe(200);
    expect(listed.json.items).toEqual([
      expect.objectContaining({
        origin: 'engine',
        state: 'open',
        pool: 'default',
        instanceId: 'r1',
        taskKey: 'charge',
        attempt: 1,
        attempts: 1,
        reason: 'TerminalError: declined: 7',
        input: { amount: 7 },
        attemptHistory: [
          expect.objectContaining({
            attempt: 1,
            worker: 'w',
            error: { name: 'TerminalError', message: 'declined: 7' },
          }),
        ],
      }),
    ]);
    expect(listed.json.cursor).toBeUndefined();
  });

  it('keeps the attempt history with the record, so a listing reads no run history; an older record without it still shows it', async () => {
    await failRun('r1');
    const [record] = letters.all();
    expect(record?.origin === 'engine' && record.attemptHistory).toEqual([
      expect.objectContaining({ attempt: 1, worker: 'w', error: { name: 'TerminalError', message: 'declined: 7' } }),
    ]);
    const reads = vi.spyOn(store, 'readHistory');
    const listed = await call('GET', '/v1/dlq/default');
    expect(listed.json.items[0].attemptHistory).toHaveLength(1);
    expect(reads).not.toHaveBeenCalled();

    // A record made before attempt histories were kept: the view reads the run's history instead.
    if (record?.origin !== 'engine') throw new Error('expected an engine record');
    const { attemptHistory: _kept, ...older } = record;
    await letters.delete(record);
    await letters.put(older);
    const again = await call('GET', '/v1/dlq/default');
    expect(again.json.items[0].attemptHistory).toEqual(listed.json.items[0].attemptHistory);
    expect(reads).toHaveBeenCalledTimes(1);
    reads.mockRestore();
  });

  it('reading changes nothing: two reads in a row return the same letters, and neither the store nor the queue moved', async () => {
    await failRun('r1');
    await failRun('r2');
    dlq.moved({ ...(await failRun('r3')), attempt: 9 });
    const before = dump();
    const first = await call('GET', '/v1/dlq/default');
    const second = await call('GET', '/v1/dlq/default');
    expect(first.json.items.map((i: { instanceId: string }) => i.instanceId)).toEqual(['r3', 'r2', 'r1']);
    expect(second.json).toEqual(first.json);
    expect(dump()).toBe(before);
  });

  it('pages newest first with a cursor; a bad cursor is a 400 that reads nothing', async () => {
    for (const id of ['a', 'b', 'c', 'd', 'e']) await failRun(id);
    const first = await call('GET', '/v1/dlq/default?limit=2');
    const second = await call('GET', `/v1/dlq/default?limit=2&cursor=${first.json.cursor}`);
    const third = await call('GET', `/v1/dlq/default?limit=2&cursor=${second.json.cursor}`);
    const ids = [first, second, third].map((r) => r.json.items.map((i: { instanceId: string }) => i.instanceId));
    expect(ids).toEqual([['e', 'd'], ['c', 'b'], ['a']]);
    expect(third.json.cursor).toBeUndefined();
    for (const bad of ['garbage', 'e30', 'W10']) {
      expect((await call('GET', `/v1/dlq/default?cursor=${bad}`)).status).toBe(400);
      expect((await call('POST', `/v1/dlq/default/redrive?cursor=${bad}`)).status).toBe(400);
    }
    expect((await call('GET', '/v1/dlq/default?limit=51')).status).toBe(400);
  });

  it("a task's second dead letter is a second record; the first reads resolved once the task was retried", async () => {
    await failRun('r1');
    expect((await call('POST', '/v1/instances/r1/tasks/charge/retry')).status).toBe(200);
    clock.advance(1_000);
    await drainQueue(); // the retried attempt fails again: a second dead letter
    const items = (await call('GET', '/v1/dlq/default')).json.items;
    expect(items.map((i: { attempt: number; state: string }) => [i.attempt, i.state])).toEqual([
      [2, 'open'],
      [1, 'resolved'],
    ]);
    expect(items[1].resolution).toBe('the task has had a later attempt since');
  });

  it('a manual retry or skip, or a run that ends, leaves the letter in place but resolved; a redrive removes it as skipped', async () => {
    await failRun('retried');
    await failRun('skipped');
    healthy = true;
    expect((await call('POST', '/v1/instances/retried/tasks/charge/retry')).status).toBe(200);
    expect((await call('POST', '/v1/instances/skipped/tasks/charge/skip', { output: { paid: 0 } })).status).toBe(200);
    await drainQueue();
    expect((await store.get('retried'))?.status).toBe('COMPLETED');
    const listed = (await call('GET', '/v1/dlq/default')).json.items;
    expect(
      listed.map((i: { instanceId: string; state: string; resolution: string }) => [
        i.instanceId,
        i.state,
        i.resolution,
      ]),
    ).toEqual([
      ['skipped', 'resolved', 'the run is COMPLETED'],
      ['retried', 'resolved', 'the run is COMPLETED'],
    ]);
    expect(letters.all()).toHaveLength(2);
    const r = await call('POST', '/v1/dlq/default/redrive');
    expect(r.json.redriven).toEqual([]);
    expect(r.json.skipped.map((s: { instanceId: string; reason: string }) => [s.instanceId, s.reason])).toEqual([
      ['skipped', 'the run is COMPLETED'],
      ['retried', 'the run is COMPLETED'],
    ]);
    expect(letters.all()).toEqual([]);
    expect(queue.sent).toEqual([]);
  });

  it('redrives all at most 25 per request, answering a cursor while more remain', async () => {
    for (let i = 0; i < 30; i++) await failRun(`r${String(i).padStart(2, '0')}`);
    healthy = true;
    const first = await call('POST', '/v1/dlq/default/redrive');
    expect(first.status).toBe(200);
    expect(first.json.redriven).toHaveLength(25);
    expect(first.json.skipped).toEqual([]);
    expect(first.json.cursor).toBeTypeOf('string');
    expect(queue.sent).toHaveLength(25);
    const second = await call('POST', `/v1/dlq/default/redrive?cursor=${first.json.cursor}`);
    expect(second.json.redriven.map((x: { instanceId: string }) => x.instanceId)).toEqual([
      'r04',
      'r03',
      'r02',
      'r01',
      'r00',
    ]);
    expect(second.json.cursor).toBeUndefined();
    expect(letters.all()).toEqual([]);
    await drainQueue();
    for (let i = 0; i < 30; i++) expect((await store.get(`r${String(i).padStart(2, '0')}`))?.status).toBe('COMPLETED');
  });

  it('redrives one by instance and task; 404 when nothing matches; a task key needs its instance', async () => {
    await failRun('r1');
    await failRun('r2');
    expect((await call('POST', '/v1/dlq/default/redrive', { instanceId: 'zzz' })).status).toBe(404);
    expect((await call('POST', '/v1/dlq/default/redrive', { instanceId: 'r1', taskKey: 'nope' })).status).toBe(404);
    expect((await call('POST', '/v1/dlq/default/redrive', { taskKey: 'charge' })).status).toBe(400);
    const r = await call('POST', '/v1/dlq/default/redrive', { instanceId: 'r2', taskKey: 'charge' });
    expect(r.json.redriven).toEqual([expect.objectContaining({ instanceId: 'r2', taskKey: 'charge' })]);
    expect(letters.all().map((l) => l.origin !== 'malformed' && l.dispatch.instanceId)).toEqual(['r1']);
    expect((await store.get('r2'))?.status).toBe('RUNNING');
    expect((await store.get('r1'))?.status).toBe('FAILED');
  });

  it('the reaper drains a dispatch SQS moved into a record; its redrive sends the dispatch again at once', async () => {
    const started = await startInstance(store, pay, { amount: 1 }, { instanceId: 'm1', now: clock.now() });
    const d = started.effects.flatMap((e) => (e.type === 'dispatch' ? [e.dispatch] : []))[0] as Dispatch;
    dlq.moved(d, 5);
    dlq.malformed('default', 'garbage');
    const summary = await reapOnce({
      store,
      timers: store,
      claims,
      queue,
      registry,
      clock,
      deadLetters: letters,
      deadLetterQueue: dlq,
    });
    expect(summary.drained).toBe(2);
    expect(dlq.size('default')).toBe(0);
    // The drained task's record keeps its attempt history too (none failed yet: its workers kept dying unseen).
    const drained = letters.all().find((l) => l.origin === 'redrive');
    expect(drained?.origin === 'redrive' && drained.attemptHistory).toEqual([]);
    const items = (await call('GET', '/v1/dlq/default')).json.items;
    expect(items.map((i: { origin: string; state: string }) => [i.origin, i.state]).sort()).toEqual([
      ['malformed', 'open'],
      ['redrive', 'open'],
    ]);
    queue.sent.splice(0);
    const r = await call('POST', '/v1/dlq/default/redrive');
    expect(r.json.redriven).toEqual([expect.objectContaining({ instanceId: 'm1', taskKey: 'charge' })]);
    expect(r.json.skipped).toEqual([expect.objectContaining({ reason: expect.stringMatching(/^not a dispatch/) })]);
    expect(queue.sent).toEqual([expect.objectContaining({ key: 'charge', attempt: 1, gen: d.gen + 1 })]);
    // The malformed letter is kept for inspection.
    expect(letters.all().map((l) => l.origin)).toEqual(['malformed']);
  });
});

describe('redrive of one instance', () => {
  it('takes at most 25 of its letters per request and says how many remain', async () => {
    await failRun('big');
    // 29 more dead letters of the same task, as 29 manual retries that failed again.
    for (let i = 0; i < 29; i++) {
      expect((await call('POST', '/v1/instances/big/tasks/charge/retry')).status).toBe(200);
      clock.advance(1_000);
      await drainQueue();
    }
    expect(await letters.ofInstance('big')).toHaveLength(30);
    const first = await call('POST', '/v1/dlq/default/redrive', { instanceId: 'big' });
    expect(first.json.redriven.length + first.json.skipped.length).toBe(25);
    expect(first.json.remaining).toBe(5);
    const second = await call('POST', '/v1/dlq/default/redrive', { instanceId: 'big' });
    expect(second.json.redriven.length + second.json.skipped.length).toBe(5);
    expect(second.json.remaining).toBeUndefined();
    // Exactly one of the thirty was open (the last attempt): one retry ran in all.
    expect(first.json.redriven.length + second.json.redriven.length).toBe(1);
    expect(await letters.ofInstance('big')).toEqual([]);
  });
});
