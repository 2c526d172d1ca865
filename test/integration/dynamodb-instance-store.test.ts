import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteItemCommand, type DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countRequests } from '../../shared/adapters/aws/request-counter.ts';
import { DynamoDeadLetterStore } from '../../shared/adapters/dynamodb/dead-letter-store.ts';
import { DynamoInstanceStore, MAX_ITEM_BYTES } from '../../shared/adapters/dynamodb/index.ts';
import { DUE_SHARDS, dueShard, LIST_SHARDS } from '../../shared/adapters/dynamodb/instance-store.ts';
import type { TaskDeadLetter } from '../../shared/ports/dead-letter-store.ts';
import { InstanceExistsError, JournalConflictError } from '../../shared/ports/errors.ts';
import { INDEX } from '../../shared/resources/tables.ts';
import { type Dynalite, startDynalite } from '../support/dynalite.ts';
import { describeInstanceStoreContract, entry, snapshot } from '../support/instance-store-contract.ts';

describeInstanceStoreContract(
  'DynamoInstanceStore on dynalite',
  async () => {
    const db = await startDynalite();
    return {
      store: new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances }),
      close: () => db.close(),
    };
  },
  {
    maxItemBytes: MAX_ITEM_BYTES,
    openWithObjects: async (objects) => {
      const db = await startDynalite();
      return {
        store: new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances, objects }),
        close: () => db.close(),
      };
    },
  },
);

describe('DynamoInstanceStore sharded indexes', () => {
  let db: Dynalite;
  let store: DynamoInstanceStore;

  beforeEach(async () => {
    db = await startDynalite();
    store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
  });
  afterEach(async () => {
    await db.close();
  });

  /** The instance ids (and watched seqs) the byDue index holds in one shard. */
  async function shardItems(shard: string): Promise<string[]> {
    const out = await db.client.send(
      new QueryCommand({
        TableName: db.tables.instances,
        IndexName: INDEX.byDue,
        KeyConditionExpression: 'duepk = :shard',
        ExpressionAttributeValues: { ':shard': { S: shard } },
      }),
    );
    return (out.Items ?? []).map((item) => `${item.pk?.S}|${item.sk?.S}`).sort();
  }

  it('dueShard is a stable function of the instance id onto DUE#0 … DUE#<DUE_SHARDS - 1>', () => {
    const ids = Array.from({ length: 200 }, (_, i) => `order-${i}`);
    const shards = ids.map(dueShard);
    expect(ids.map(dueShard)).toEqual(shards);
    for (const shard of shards) expect(shard).toMatch(/^DUE#\d+$/);
    expect(new Set(shards)).toEqual(new Set(Array.from({ length: DUE_SHARDS }, (_, n) => `DUE#${n}`)));
  });

  it("snapshots and watched entries are indexed in their instance's shard, and leave it when done", async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `s${i}`);
    for (const [i, id] of ids.entries()) await store.create(snapshot(id, { dueAt: 100 + i }), null, []);
    await store.append('s0', entry(1, { watchAt: 50 }));
    expect(new Set(ids.map(dueShard)).size).toBeGreaterThan(1);

    for (let n = 0; n < DUE_SHARDS; n++) {
      const shard = `DUE#${n}`;
      const expected = ids.filter((id) => dueShard(id) === shard).map((id) => `I#${id}|S`);
      if (dueShard('s0') === shard) expected.push('I#s0|J#0000000001');
      expect(await shardItems(shard), shard).toEqual(expected.sort());
    }

    await store.unwatch('s0', 1);
    // The timer fired: a compaction without a due time.
    expect(await store.compact({ ...snapshot('s0'), version: 1 })).toBe(true);
    expect(await shardItems(dueShard('s0'))).not.toContain('I#s0|S');
    expect(await shardItems(dueShard('s0'))).not.toContain('I#s0|J#0000000001');
  });

  it('due merges the shards: the earliest across all of them, even when one shard holds more than the limit', async () => {
    // Find a shard with at least five ids, and ids in other shards.
    const ids = Array.from({ length: 80 }, (_, i) => `m${i}`);
    const crowded = ids.filter((id) => dueShard(id) === dueShard('m0')).slice(0, 5);
    const elsewhere = ids.filter((id) => dueShard(id) !== dueShard('m0')).slice(0, 5);
    expect(crowded).toHaveLength(5);
    // The crowded shard's timers interleave with the others'.
    const due = [...crowded, ...elsewhere].map((id, i) => ({
      instanceId: id,
      dueAt: i < 5 ? 100 + i * 20 : 110 + (i - 5) * 20,
    }));
    for (const d of due) await store.create(snapshot(d.instanceId, { dueAt: d.dueAt }), null, []);
    const byTime = [...due].sort((a, b) => a.dueAt - b.dueAt);

    expect(await store.due(1_000, 3)).toEqual(byTime.slice(0, 3));
    expect(await store.due(1_000, 7)).toEqual(byTime.slice(0, 7));
    expect(await store.due(1_000, 100)).toEqual(byTime);
  });

  it('spreads one workflow over every listing shard and pages through them once each, newest first', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `run-${String(i).padStart(2, '0')}`);
    for (const [i, id] of ids.entries()) {
      await store.create(snapshot(id, { workflow: 'orders', createdAt: 1_000 + i, updatedAt: 1_000 + i }), null, []);
    }
    const partitions = new Set<string>();
    for (let n = 0; n < LIST_SHARDS; n++) {
      const out = await db.client.send(
        new QueryCommand({
          TableName: db.tables.instances,
          IndexName: INDEX.byWorkflow,
          KeyConditionExpression: 'wfpk = :p',
          ExpressionAttributeValues: { ':p': { S: `W#orders@${n}` } },
        }),
      );
      if ((out.Items ?? []).length > 0) partitions.add(`W#orders@${n}`);
    }
    expect(partitions.size).toBe(LIST_SHARDS);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.list({ workflow: 'orders', limit: 7, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(7);
      seen.push(...page.items.map((i) => i.instanceId));
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 20);
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBe(6);
  });
});

describe('DynamoInstanceStore requests', () => {
  let db: Dynalite;

  beforeEach(async () => {
    db = await startDynalite();
  });
  afterEach(async () => {
    await db.close();
  });

  it('create and append are one conditional put each; load with a short tail is one query', async () => {
    const counter = countRequests(db.client);
    const store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });

    await store.create(snapshot('a'), { order: 1 }, []);
    expect(counter.snapshot()).toEqual({ PutItemCommand: 1 });
    counter.reset();
    for (let seq = 1; seq <= 5; seq++) await store.append('a', entry(seq, { value: { data: seq } }));
    expect(counter.snapshot()).toEqual({ PutItemCommand: 5 });
    counter.reset();

    const loaded = await store.load('a');
    expect(loaded?.tail).toHaveLength(5);
    expect(counter.snapshot()).toEqual({ QueryCommand: 1 });
  });
});

describe('DynamoInstanceStore purge', () => {
  let db: Dynalite;

  beforeEach(async () => {
    db = await startDynalite();
  });
  afterEach(async () => {
    await db.close();
  });

  /** Every item key of an instance's partition, as `sk`. */
  async function partition(instanceId: string): Promise<string[]> {
    const out = await db.client.send(
      new QueryCommand({
        TableName: db.tables.instances,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: `I#${instanceId}` } },
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map((item) => item.sk?.S as string);
  }

  /**
   * A client whose first `times` BatchWriteItems leave their last
   * `unprocessed` requests unprocessed, as DynamoDB does when throttled; it
   * counts the BatchWriteItems sent.
   */
  function throttling(unprocessed: number, times: number): { client: DynamoDBClient; batches: () => number } {
    let left = times;
    let batches = 0;
    const send = async (command: unknown) => {
      if (!(command instanceof BatchWriteItemCommand)) return db.client.send(command as QueryCommand);
      batches++;
      if (left <= 0) return db.client.send(command);
      left--;
      const [table, requests] = Object.entries(command.input.RequestItems ?? {})[0] ?? ['', []];
      const cut = Math.max(0, requests.length - unprocessed);
      if (cut > 0)
        await db.client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests.slice(0, cut) } }));
      return { UnprocessedItems: { [table]: requests.slice(cut) } };
    };
    return { client: { send } as unknown as DynamoDBClient, batches: () => batches };
  }

  it('deletes the partition in BatchWriteItems of 25, then the snapshot with one DeleteItem', async () => {
    const counter = countRequests(db.client);
    const store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
    await store.create(snapshot('a'), null, []);
    for (let seq = 1; seq <= 40; seq++) await store.append('a', entry(seq));
    await store.putValue('a', 'out:x', 1);
    await store.addToCounter('a', 'n', 1);
    counter.reset();

    await store.purge('a');

    expect(counter.snapshot()).toEqual({ QueryCommand: 1, BatchWriteItemCommand: 2, DeleteItemCommand: 1 });
    expect(await partition('a')).toEqual([]);
  });

  it("leaves the instance's dead letters, which belong to the dead-letter store", async () => {
    const store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
    const letters = new DynamoDeadLetterStore({ client: db.client, tableName: db.tables.instances });
    await store.create(snapshot('a'), null, []);
    await store.append('a', entry(1));
    const letter: TaskDeadLetter = {
      origin: 'engine',
      dispatch: {
        instanceId: 'a',
        workflow: 'orders',
        key: 'charge',
        qid: 'charge',
        input: { c: null },
        attempt: 3,
        gen: 1,
        priority: 'normal',
        pool: 'default',
      },
      at: 1_000,
      reason: 'Error: card declined',
      attempts: 3,
      error: { name: 'Error', message: 'card declined' },
    };
    expect(await letters.put(letter)).toBe('created');

    await store.purge('a');

    expect(await store.get('a')).toBeUndefined();
    expect((await partition('a')).map((sk) => sk.slice(0, 2))).toEqual(['D#']);
    expect(await letters.ofInstance('a')).toHaveLength(1);
  });

  it('retries the items a BatchWriteItem leaves unprocessed until none is left', async () => {
    const { client, batches } = throttling(10, 2);
    const store = new DynamoInstanceStore({ client, tableName: db.tables.instances });
    await store.create(snapshot('a'), null, []);
    for (let seq = 1; seq <= 30; seq++) await store.append('a', entry(seq));

    await store.purge('a');

    // 25 with 10 left over; those 10, all left over; those 10; the last 5.
    expect(batches()).toBe(4);
    expect(await partition('a')).toEqual([]);
  });

  it('gives up after maxBatchRetries, leaving the snapshot for the next purge', async () => {
    const { client, batches } = throttling(1, 100);
    const store = new DynamoInstanceStore({ client, tableName: db.tables.instances, maxBatchRetries: 2 });
    await store.create(snapshot('a', { dueAt: 500 }), null, []);
    for (let seq = 1; seq <= 3; seq++) await store.append('a', entry(seq));

    await expect(store.purge('a')).rejects.toThrow(/unprocessed after 2 retries/);
    expect(batches()).toBe(3);
    expect(await partition('a')).toEqual(['J#0000000003', 'S']);
    expect(await store.due(1_000, 10)).toEqual([{ instanceId: 'a', dueAt: 500 }]);

    await new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances }).purge('a');
    expect(await partition('a')).toEqual([]);
  });
});

describe('DynamoInstanceStore persistence on dynalite', () => {
  let dir: string;
  let db: Dynalite | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-dynalite-'));
  });
  afterEach(async () => {
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps snapshots, journals, values and the due index across a close and a restart on the same path', async () => {
    db = await startDynalite({ path: dir });
    let store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
    const s = snapshot('kept', { dueAt: 10 });
    await store.create(s, { input: '✓' }, [{ at: 1_000, type: 'run-started', version: 0 }]);
    const entries = [entry(1, { value: { data: 'one' } }), entry(2, { watchAt: 20 }), entry(3)];
    for (const e of entries) await store.append('kept', e);
    const compacted = { ...s, version: 1, dueAt: 30 };
    await store.compact(compacted);
    await store.putValue('kept', 'out:a', [1, 2, 3]);
    await db.close();

    db = await startDynalite({ path: dir });
    store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
    const loaded = await store.load('kept');
    expect(loaded?.snapshot).toEqual(compacted);
    expect(loaded?.tail).toEqual(entries.slice(1));
    expect(await store.getValues('kept', [s.inputId, 'j:1', 'out:a'])).toEqual(
      new Map<string, unknown>([
        [s.inputId, { input: '✓' }],
        ['j:1', 'one'],
        ['out:a', [1, 2, 3]],
      ]),
    );
    expect((await store.readHistory('kept')).entries.map((e) => e.type)).toEqual([
      'run-started',
      'timer-fired',
      'timer-fired',
      'timer-fired',
    ]);
    expect(await store.due(100, 5)).toEqual([
      { instanceId: 'kept', dueAt: 20, watched: 2 },
      { instanceId: 'kept', dueAt: 30 },
    ]);
    // Still conditional after the restart.
    await expect(store.create(s, null, [])).rejects.toBeInstanceOf(InstanceExistsError);
    await expect(store.append('kept', entry(3))).rejects.toBeInstanceOf(JournalConflictError);
    expect(await store.putValue('kept', 'out:a', 'late')).toBe('exists');
    expect(await store.compact(compacted)).toBe(false);
  });
});
