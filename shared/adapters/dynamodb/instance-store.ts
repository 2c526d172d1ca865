import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { type HistoryEntry, historySortKey } from '../../engine/history.ts';
import { ValueMissingError } from '../../engine/refs.ts';
import type { Snapshot } from '../../engine/snapshot.ts';
import { InstanceExistsError, VersionConflictError } from '../../ports/errors.ts';
import type { InstanceStore, InstanceSummary, ListPage, ListQuery } from '../../ports/instance-store.ts';
import type { DueInstance, TimerIndex } from '../../ports/timers.ts';
import { INDEX, TTL_ATTRIBUTE } from '../../resources/tables.ts';
import {
  assertFits,
  decodeCursor,
  encodeCursor,
  fromJson,
  type Item,
  isConditionFailed,
  num,
  readNum,
  readStr,
  str,
  toJson,
} from './codec.ts';

/** Options of {@link DynamoInstanceStore}. */
export interface DynamoInstanceStoreOptions {
  /** The client; inject one pointed at dynalite for local runs and tests. */
  readonly client: DynamoDBClient;
  /** Physical name of the table defined by `instancesTable`. */
  readonly tableName: string;
  /**
   * How many times `getValues` retries keys DynamoDB left unprocessed
   * (throttling), with exponential backoff from 25 ms.
   * @default 8
   */
  readonly maxBatchRetries?: number;
  /**
   * How long history entries are kept: each gets the table's TTL attribute
   * at its time plus this. Nothing relies on the deletion.
   * @default 30 days
   */
  readonly historyRetentionMs?: number;
}

// Conditions, by name.
const absent = 'attribute_not_exists(pk)';
const atPreviousVersion = 'version = :previous';

/** BatchGetItem's cap on keys per request. */
const BATCH_GET_MAX = 100;
/** Partition key value of the sparse due-timer index. */
const DUE = 'DUE';
const SNAPSHOT_SK = 'S';

const instancePk = (instanceId: string): string => `I#${instanceId}`;
const valueSk = (valueId: string): string => `V#${valueId}`;
const workflowPk = (workflow: string): string => `W#${workflow}`;
const workflowStatusPk = (workflow: string, status: string): string => `W#${workflow}#${status}`;
/** Sort key of the listing indexes: zero-padded so that text order is time order. */
const listingSk = (createdAt: number, instanceId: string): string =>
  `${String(createdAt).padStart(15, '0')}#${instanceId}`;
const instanceIdOf = (item: Item): string => readStr(item, 'pk').slice('I#'.length);

/**
 * The snapshot as one item, with its listing keys, and the due-timer keys
 * only while the snapshot has a timer (a sparse index: a run without timers
 * costs the reaper nothing). Every write replaces the whole item, so the
 * sparse attributes can never outlive the `dueAt` they mirror.
 */
function snapshotItem(snapshot: Snapshot): Item {
  const sk = listingSk(snapshot.createdAt, snapshot.instanceId);
  return {
    pk: str(instancePk(snapshot.instanceId)),
    sk: str(SNAPSHOT_SK),
    snap: str(JSON.stringify(snapshot)),
    version: num(snapshot.version),
    workflow: str(snapshot.workflow),
    status: str(snapshot.status),
    createdAt: num(snapshot.createdAt),
    updatedAt: num(snapshot.updatedAt),
    wfpk: str(workflowPk(snapshot.workflow)),
    wfspk: str(workflowStatusPk(snapshot.workflow, snapshot.status)),
    wfsk: str(sk),
    ...(snapshot.dueAt !== undefined ? { dueAt: num(snapshot.dueAt), duepk: str(DUE) } : {}),
  };
}

function valueItem(instanceId: string, valueId: string, value: unknown): Item {
  return { pk: str(instancePk(instanceId)), sk: str(valueSk(valueId)), val: str(toJson(value)) };
}

/**
 * The instance store on DynamoDB: one partition per instance holding the
 * snapshot item and one item per value. Every write is a single-item
 * conditional put (no transactions: dynalite has none, and they cost double).
 * A failed condition becomes the port's error here; items that would not fit
 * are refused before anything is sent.
 *
 * @example
 * ```ts
 * const store = new DynamoInstanceStore({ client: new DynamoDBClient({}), tableName: 'sayiir-instances' });
 * await store.create(snapshot, input);
 * ```
 */
export class DynamoInstanceStore implements InstanceStore, TimerIndex {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly maxBatchRetries: number;
  private readonly historyRetentionMs: number;

  constructor(options: DynamoInstanceStoreOptions) {
    this.client = options.client;
    this.table = options.tableName;
    this.maxBatchRetries = options.maxBatchRetries ?? 8;
    this.historyRetentionMs = options.historyRetentionMs ?? 30 * 86_400_000;
  }

  async create(snapshot: Snapshot, input: unknown): Promise<void> {
    const inputItem = valueItem(snapshot.instanceId, snapshot.inputId, input);
    const item = snapshotItem(snapshot);
    // Both checked before either is written: a refused create leaves nothing behind.
    assertFits(inputItem, `input of instance '${snapshot.instanceId}'`);
    assertFits(item, `snapshot of instance '${snapshot.instanceId}'`);
    // Unconditional: the input id is unique per creation attempt.
    await this.client.send(new PutItemCommand({ TableName: this.table, Item: inputItem }));
    try {
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: absent }));
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      // The input we just wrote belongs to no snapshot; tidy up, best effort (nothing reads it).
      await this.client
        .send(new DeleteItemCommand({ TableName: this.table, Key: { pk: inputItem.pk!, sk: inputItem.sk! } }))
        .catch(() => undefined);
      throw new InstanceExistsError(snapshot.instanceId);
    }
  }

  async get(instanceId: string): Promise<Snapshot | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: str(instancePk(instanceId)), sk: str(SNAPSHOT_SK) },
        ConsistentRead: true,
      }),
    );
    return out.Item ? (JSON.parse(readStr(out.Item, 'snap')) as Snapshot) : undefined;
  }

  async update(snapshot: Snapshot): Promise<void> {
    const item = snapshotItem(snapshot);
    assertFits(item, `snapshot of instance '${snapshot.instanceId}'`);
    const previous = snapshot.version - 1;
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: item,
          ConditionExpression: atPreviousVersion,
          ExpressionAttributeValues: { ':previous': num(previous) },
        }),
      );
    } catch (err) {
      if (isConditionFailed(err)) throw new VersionConflictError(snapshot.instanceId, previous);
      throw err;
    }
  }

  async putValue(instanceId: string, valueId: string, value: unknown): Promise<'created' | 'exists'> {
    const item = valueItem(instanceId, valueId, value);
    assertFits(item, `value '${valueId}' of instance '${instanceId}'`);
    try {
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: absent }));
      return 'created';
    } catch (err) {
      if (isConditionFailed(err)) return 'exists';
      throw err;
    }
  }

  async getValues(instanceId: string, valueIds: Iterable<string>): Promise<Map<string, unknown>> {
    // BatchGetItem rejects duplicate keys; the map keeps the callers' order.
    const ids = [...new Set(valueIds)];
    const found = new Map<string, unknown>();
    const prefix = valueSk('');
    for (let i = 0; i < ids.length; i += BATCH_GET_MAX) {
      let keys: Item[] = ids
        .slice(i, i + BATCH_GET_MAX)
        .map((id) => ({ pk: str(instancePk(instanceId)), sk: str(valueSk(id)) }));
      for (let attempt = 0; keys.length > 0; attempt++) {
        if (attempt > this.maxBatchRetries) {
          throw new Error(`getValues: ${keys.length} keys still unprocessed after ${this.maxBatchRetries} retries`);
        }
        if (attempt > 0) await sleep(Math.min(25 * 2 ** (attempt - 1), 2_000));
        const out = await this.client.send(
          new BatchGetItemCommand({
            RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true, ProjectionExpression: 'sk, val' } },
          }),
        );
        for (const item of out.Responses?.[this.table] ?? []) {
          found.set(readStr(item, 'sk').slice(prefix.length), fromJson(readStr(item, 'val')));
        }
        keys = (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as Item[];
      }
    }
    const values = new Map<string, unknown>();
    for (const id of ids) {
      if (!found.has(id)) throw new ValueMissingError(id);
      values.set(id, found.get(id));
    }
    return values;
  }

  async list(query: ListQuery): Promise<ListPage> {
    const limit = query.limit ?? 50;
    if (limit < 1) return { items: [] };
    const [indexName, partitionKey, partition] =
      query.status === undefined
        ? [INDEX.byWorkflow, 'wfpk', workflowPk(query.workflow)]
        : [INDEX.byWorkflowStatus, 'wfspk', workflowStatusPk(query.workflow, query.status)];
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: indexName,
        KeyConditionExpression: `${partitionKey} = :partition`,
        ExpressionAttributeValues: { ':partition': str(partition) },
        ScanIndexForward: false,
        Limit: limit,
        ...(query.cursor !== undefined ? { ExclusiveStartKey: decodeCursor(query.cursor) } : {}),
      }),
    );
    const items = (out.Items ?? []).map(
      (item): InstanceSummary => ({
        instanceId: instanceIdOf(item),
        workflow: readStr(item, 'workflow'),
        status: readStr(item, 'status') as InstanceSummary['status'],
        createdAt: readNum(item, 'createdAt'),
        updatedAt: readNum(item, 'updatedAt'),
      }),
    );
    return { items, ...(out.LastEvaluatedKey ? { cursor: encodeCursor(out.LastEvaluatedKey) } : {}) };
  }

  async due(now: number, limit: number): Promise<DueInstance[]> {
    const due: DueInstance[] = [];
    let start: Item | undefined;
    while (due.length < limit) {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: INDEX.byDue,
          KeyConditionExpression: 'duepk = :due AND dueAt <= :now',
          ExpressionAttributeValues: { ':due': str(DUE), ':now': num(now) },
          ScanIndexForward: true,
          Limit: limit - due.length,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of out.Items ?? []) due.push({ instanceId: instanceIdOf(item), dueAt: readNum(item, 'dueAt') });
      start = out.LastEvaluatedKey;
      if (!start) break;
    }
    return due;
  }

  async appendHistory(instanceId: string, entries: readonly HistoryEntry[]): Promise<void> {
    const items = entries.map((e, i) => {
      const item: Item = {
        pk: str(instancePk(instanceId)),
        sk: str(`H#${historySortKey(e, i)}`),
        entry: str(toJson(e)),
        [TTL_ATTRIBUTE]: num(Math.ceil((e.at + this.historyRetentionMs) / 1000)),
      };
      assertFits(item, `history entry of '${instanceId}'`);
      return item;
    });
    if (items.length === 1) {
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: items[0] as Item }));
      return;
    }
    for (let i = 0; i < items.length; i += 25) {
      let requests = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        const out = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.table]: requests } }));
        requests = (out.UnprocessedItems?.[this.table] ?? []).flatMap((r) =>
          r.PutRequest?.Item ? [{ PutRequest: { Item: r.PutRequest.Item } }] : [],
        );
        if (requests.length > 0) {
          if (attempt >= this.maxBatchRetries) throw new Error(`history of '${instanceId}': unprocessed writes remain`);
          await sleep(25 * 2 ** attempt);
        }
      }
    }
  }

  async readHistory(
    instanceId: string,
    options: { readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<{ entries: HistoryEntry[]; cursor?: string }> {
    const limit = options.limit ?? 1000;
    const entries: HistoryEntry[] = [];
    let start: Item | undefined = options.cursor ? decodeCursor(options.cursor) : undefined;
    while (entries.length < limit) {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :h)',
          ExpressionAttributeValues: { ':pk': str(instancePk(instanceId)), ':h': str('H#') },
          ConsistentRead: true,
          Limit: limit - entries.length,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of out.Items ?? []) entries.push(fromJson(readStr(item, 'entry')) as HistoryEntry);
      start = out.LastEvaluatedKey;
      if (!start) break;
    }
    return { entries, ...(start ? { cursor: encodeCursor(start) } : {}) };
  }
}
