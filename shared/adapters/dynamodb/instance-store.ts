import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { HistoryEntry } from '../../engine/history.ts';
import { ValueMissingError } from '../../engine/refs.ts';
import { FINAL_STATUSES, type Snapshot } from '../../engine/snapshot.ts';
import { InstanceExistsError, InvalidCursorError, JournalConflictError } from '../../ports/errors.ts';
import {
  type InstanceStore,
  type InstanceSummary,
  type JournalEntry,
  journalSeqOf,
  journalValueId,
  type LaneLookTimer,
  type LaneRetry,
  type LaneTimer,
  type ListPage,
  type ListQuery,
  type StoredInstance,
  type TimerPage,
} from '../../ports/instance-store.ts';
import type { ObjectStore } from '../../ports/object-store.ts';
import type { DueInstance, TimerIndex } from '../../ports/timers.ts';
import { INDEX } from '../../resources/tables.ts';
import {
  decodePayload,
  encodePayload,
  isEncodedPayload,
  PAYLOAD_OFFLOAD_THRESHOLD_BYTES,
} from '../../runtime/payloads.ts';
import { decodeCursor, encodeCursor, historyScope, historyStart, listScope } from '../cursor.ts';
import {
  assertFits,
  fromJson,
  type Item,
  isConditionFailed,
  MalformedItemError,
  num,
  queryPages,
  readNum,
  readStr,
  shardKey,
  shardKeys,
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
   * How many times `getValues` and `purge` retry keys DynamoDB left
   * unprocessed (throttling), with exponential backoff from 25 ms.
   * @default 8
   */
  readonly maxBatchRetries?: number;
  /**
   * Where values over `offloadThresholdBytes` go (the run input, journal
   * payloads, put values): the item keeps a reference. Without one, a value
   * that does not fit an item is refused with `PayloadTooLargeError`.
   */
  readonly objects?: ObjectStore;
  /** @default PAYLOAD_OFFLOAD_THRESHOLD_BYTES */
  readonly offloadThresholdBytes?: number;
}

// Conditions, by name.
const absent = 'attribute_not_exists(pk)';
const present = 'attribute_exists(pk)';
const olderCompaction = 'version < :version';

/** BatchGetItem's cap on keys per request. */
const BATCH_GET_MAX = 100;
/** BatchWriteItem's cap on requests per call. */
const BATCH_WRITE_MAX = 25;
/** Sort-key prefix of the dead-letter records kept in an instance's partition (see `dead-letter-store.ts`). */
const DEAD_LETTER_SK_PREFIX = 'D#';
/**
 * Shards of the due index: an item's `duepk` is `DUE#<n>` with `n` from a
 * hash of its instance id, so no single partition key takes every timer
 * write, and the reaper reads the shards in parallel.
 */
export const DUE_SHARDS = 8;
const SNAPSHOT_SK = 'S';
/** Entries read with the snapshot in one query; more only when the tail is longer. */
const LOAD_PAGE = 8;

const instancePk = (instanceId: string): string => `I#${instanceId}`;
const valueSk = (valueId: string): string => `V#${valueId}`;
const counterSk = (counterId: string): string => `C#${counterId}`;
const timerSk = (id: string): string => `T#${id}`;
const journalSk = (seq: number): string => `J#${String(seq).padStart(10, '0')}`;
const LAST_JOURNAL_SK = journalSk(9_999_999_999);
/**
 * Shards of the listing indexes: an instance's listing keys are
 * `W#<workflow>@<shard>` and `W#<workflow>#<status>@<shard>`, the shard from
 * a hash of its id, so a busy workflow's starts and compactions spread over
 * several partition keys; `list` reads the shards in parallel and merges them
 * newest first.
 */
export const LIST_SHARDS = 4;
const workflowPk = (workflow: string, shard: string): string => `W#${workflow}@${shard}`;
const workflowStatusPk = (workflow: string, status: string, shard: string): string =>
  `W#${workflow}#${status}@${shard}`;
const listShard = (instanceId: string): string => shardKey('L', instanceId, LIST_SHARDS).slice(2);
/** A shard's place in a listing cursor: where it resumes (a `wfsk`), from its start, or nothing left. */
const FROM_START = '';
const EXHAUSTED = '-';
const invalidListCursor = () => new InvalidCursorError('cursor', 'is not a cursor returned by a previous page');
/** Sort key of the listing indexes: zero-padded so that text order is time order. */
const listingSk = (createdAt: number, instanceId: string): string =>
  `${String(createdAt).padStart(15, '0')}#${instanceId}`;
const instanceIdOf = (item: Item): string => readStr(item, 'pk').slice('I#'.length);

/** The due-index shard of an instance. */
export const dueShard = (instanceId: string): string => shardKey('DUE', instanceId, DUE_SHARDS);
/**
 * The due-index shard of a lane timer: from its own id as well, so the
 * timers of a map's items spread over every shard, not one per run.
 */
export const timerDueShard = (instanceId: string, id: string): string =>
  shardKey('DUE', `${instanceId}|${id}`, DUE_SHARDS);
/** The partition of the due index where a finished run waits for its purge (see `TimerIndex.duePurges`). */
export const purgeShard = (instanceId: string): string => shardKey('PURGE', instanceId, DUE_SHARDS);

/** The attributes of a snapshot item that a compaction rewrites (not the input, not the creation history). */
function snapshotAttributes(snapshot: Snapshot): Item {
  return {
    snap: str(JSON.stringify(snapshot)),
    version: num(snapshot.version),
    workflow: str(snapshot.workflow),
    status: str(snapshot.status),
    createdAt: num(snapshot.createdAt),
    updatedAt: num(snapshot.updatedAt),
    wfpk: str(workflowPk(snapshot.workflow, listShard(snapshot.instanceId))),
    wfspk: str(workflowStatusPk(snapshot.workflow, snapshot.status, listShard(snapshot.instanceId))),
    wfsk: str(listingSk(snapshot.createdAt, snapshot.instanceId)),
  };
}

/**
 * The instance store on DynamoDB. One partition per instance:
 *
 * - `S`: the compacted snapshot, its listing keys, the due-index keys while
 *   it has a due time, the run input (`inp`) and the creation's history;
 * - `J#<seq>`: the journal, one item per committed entry (`e`: events and
 *   history as JSON; `val`: the payload committed with them), due-index keys
 *   while the entry is watched;
 * - `V#<valueId>`: values put with `putValue`;
 * - `C#<counterId>`: counters;
 * - `T#<id>`: lane timers (`parent`, `item`, `firedAt`, `retry`), with due-index
 *   keys until fired;
 * - `D#<deadLetterId>`: dead letters, the dead-letter store's (not read,
 *   written or purged here).
 *
 * Every write is a single-item conditional put or update (no transactions:
 * dynalite has none, and they cost double), but `purge`'s unconditional
 * deletes. A failed condition becomes the port's error here; items that
 * would not fit are refused before anything is sent.
 *
 * @example
 * ```ts
 * const store = new DynamoInstanceStore({ client: new DynamoDBClient({}), tableName: 'sayiir-instances' });
 * await store.create(snapshot, input, history);
 * ```
 */
export class DynamoInstanceStore implements InstanceStore, TimerIndex {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly maxBatchRetries: number;

  private readonly objects: ObjectStore | undefined;
  private readonly threshold: number;

  constructor(options: DynamoInstanceStoreOptions) {
    this.client = options.client;
    this.table = options.tableName;
    this.maxBatchRetries = options.maxBatchRetries ?? 8;
    this.objects = options.objects;
    this.threshold = options.offloadThresholdBytes ?? PAYLOAD_OFFLOAD_THRESHOLD_BYTES;
  }

  /**
   * A value as an item attribute: `<name>` holds its JSON text, or, over the
   * threshold with an object store, `<name>ref` the reference to it under a
   * key unique to this write (a racing writer never overwrites the bytes a
   * committed reference points at).
   */
  private async valueAttribute(name: string, value: unknown, key: string, subject: string): Promise<Item> {
    if (!this.objects) return { [name]: str(toJson(value, subject)) };
    const encoded = await encodePayload(value, {
      store: this.objects,
      key: `${key}.${randomUUID()}`,
      threshold: this.threshold,
      subject,
    });
    return 'inline' in encoded ? { [name]: str(encoded.inline) } : { [`${name}ref`]: str(JSON.stringify(encoded.ref)) };
  }

  /** The value of a `valueAttribute`: `undefined` when the item has neither form. */
  private async readValue(item: Item, name: string): Promise<{ data: unknown } | undefined> {
    const inline = item[name]?.S;
    if (inline !== undefined) return { data: fromJson(inline) };
    const ref = item[`${name}ref`]?.S;
    if (ref === undefined) return undefined;
    if (!this.objects) throw new Error(`'${name}' of an item is offloaded, and this store has no object store`);
    const encoded: unknown = { ref: JSON.parse(ref) };
    if (!isEncodedPayload(encoded)) throw new MalformedItemError(`${name}ref`, 'S');
    return { data: await decodePayload(encoded, this.objects) };
  }

  async create(snapshot: Snapshot, input: unknown, history: readonly HistoryEntry[]): Promise<void> {
    const id = snapshot.instanceId;
    const item: Item = {
      pk: str(instancePk(id)),
      sk: str(SNAPSHOT_SK),
      ...snapshotAttributes(snapshot),
      ...this.dueAttributes(id, snapshot.dueAt),
      ...(await this.valueAttribute('inp', input, `${id}/input`, `input of instance '${id}'`)),
      created: str(JSON.stringify(history)),
    };
    assertFits(item, `input of instance '${snapshot.instanceId}'`);
    try {
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: absent }));
    } catch (err) {
      if (isConditionFailed(err)) throw new InstanceExistsError(snapshot.instanceId);
      throw err;
    }
  }

  /**
   * The due-index keys of an item due at `dueAt`: under `DUE#<n>` for live
   * work, under `PURGE#<n>` for a finished run's purge (same index, other
   * partitions: `due` and `duePurges` read them apart).
   */
  private dueAttributes(instanceId: string, dueAt: number | undefined, purge = false): Item {
    if (dueAt === undefined) return {};
    return { dueAt: num(dueAt), duepk: str(purge ? purgeShard(instanceId) : dueShard(instanceId)) };
  }

  async load(instanceId: string): Promise<StoredInstance | undefined> {
    const pk = instancePk(instanceId);
    let snapshotItem: Item | undefined;
    const entries: JournalEntry[] = [];
    // Newest first from the snapshot: one request when the tail is short.
    const query: QueryCommandInput = {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :first AND :snapshot',
      ExpressionAttributeValues: { ':pk': str(pk), ':first': str(journalSk(0)), ':snapshot': str(SNAPSHOT_SK) },
      ScanIndexForward: false,
      ConsistentRead: true,
      Limit: LOAD_PAGE,
    };
    pages: for await (const items of this.pages(query)) {
      for (const item of items) {
        if (readStr(item, 'sk') === SNAPSHOT_SK) {
          snapshotItem = item;
          continue;
        }
        if (!snapshotItem) return undefined;
        const entry = entryOf(item);
        if (entry.seq <= readNum(snapshotItem, 'version')) break pages;
        entries.push(entry);
      }
      if (!snapshotItem) return undefined;
    }
    if (!snapshotItem) return undefined;
    const snapshot = JSON.parse(readStr(snapshotItem, 'snap')) as Snapshot;
    const tail = entries.reverse();
    // Inline values come with the read; offloaded ones are fetched by `getValues` when needed.
    const values = new Map<string, unknown>();
    if (snapshotItem.inp?.S !== undefined) values.set(snapshot.inputId, fromJson(snapshotItem.inp.S));
    for (const e of tail) if (e.value) values.set(journalValueId(e.seq), e.value.data);
    return { snapshot, tail, values };
  }

  async readJournal(instanceId: string, afterSeq: number): Promise<JournalEntry[]> {
    const entries: JournalEntry[] = [];
    for await (const items of this.pages(this.journalFrom(instanceId, afterSeq + 1))) {
      for (const item of items) entries.push(entryOf(item));
    }
    return entries;
  }

  /** The query of an instance's journal entries from `seq` on, in order, consistently. */
  private journalFrom(instanceId: string, seq: number): QueryCommandInput {
    return {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': str(instancePk(instanceId)),
        ':from': str(journalSk(seq)),
        ':to': str(LAST_JOURNAL_SK),
      },
      ConsistentRead: true,
    };
  }

  private pages(input: QueryCommandInput): AsyncGenerator<Item[]> {
    return queryPages(this.client, input);
  }

  async append(instanceId: string, entry: JournalEntry): Promise<void> {
    const { value, watchAt, ...rest } = entry;
    const item: Item = {
      pk: str(instancePk(instanceId)),
      sk: str(journalSk(entry.seq)),
      e: str(JSON.stringify({ ...rest, ...(watchAt === undefined ? {} : { watchAt }) })),
      ...(value
        ? await this.valueAttribute(
            'val',
            value.data,
            `${instanceId}/j${entry.seq}`,
            `payload of journal entry ${entry.seq} of '${instanceId}'`,
          )
        : {}),
      ...(watchAt === undefined ? {} : { ...this.dueAttributes(instanceId, watchAt), watched: num(entry.seq) }),
      // No TTL: an entry holds the payloads a live run still refers to, however old the run.
    };
    assertFits(item, `journal entry ${entry.seq} of instance '${instanceId}'`);
    try {
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: absent }));
    } catch (err) {
      if (isConditionFailed(err)) throw new JournalConflictError(instanceId, entry.seq);
      throw err;
    }
  }

  async compact(snapshot: Snapshot): Promise<boolean> {
    const attributes = snapshotAttributes(snapshot);
    const due = this.dueAttributes(snapshot.instanceId, snapshot.dueAt, FINAL_STATUSES.has(snapshot.status));
    const set = { ...attributes, ...due };
    const names = Object.keys(set);
    const update = [
      `SET ${names.map((n) => `#${n} = :${n}`).join(', ')}`,
      ...(snapshot.dueAt === undefined ? ['REMOVE #dueAt, #duepk'] : []),
    ].join(' ');
    const nameMap: Record<string, string> = Object.fromEntries(names.map((n) => [`#${n}`, n]));
    if (snapshot.dueAt === undefined) Object.assign(nameMap, { '#dueAt': 'dueAt', '#duepk': 'duepk' });
    assertFits(
      { pk: str(instancePk(snapshot.instanceId)), sk: str(SNAPSHOT_SK), ...set },
      `snapshot of instance '${snapshot.instanceId}'`,
    );
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: str(instancePk(snapshot.instanceId)), sk: str(SNAPSHOT_SK) },
          UpdateExpression: update,
          ConditionExpression: `${present} AND ${olderCompaction}`,
          ExpressionAttributeNames: nameMap,
          ExpressionAttributeValues: Object.fromEntries(names.map((n) => [`:${n}`, set[n] as Item[string]])),
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  async unwatch(instanceId: string, seq: number): Promise<void> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: str(instancePk(instanceId)), sk: str(journalSk(seq)) },
          UpdateExpression: 'REMOVE duepk, dueAt, watched',
          ConditionExpression: present,
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  async get(instanceId: string): Promise<Snapshot | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: str(instancePk(instanceId)), sk: str(SNAPSHOT_SK) },
        ConsistentRead: true,
        ProjectionExpression: 'snap',
      }),
    );
    return out.Item ? (JSON.parse(readStr(out.Item, 'snap')) as Snapshot) : undefined;
  }

  async putValue(instanceId: string, valueId: string, value: unknown): Promise<'created' | 'exists'> {
    const item: Item = {
      pk: str(instancePk(instanceId)),
      sk: str(valueSk(valueId)),
      ...(await this.valueAttribute(
        'val',
        value,
        `${instanceId}/${valueId}`,
        `value '${valueId}' of instance '${instanceId}'`,
      )),
    };
    assertFits(item, `value '${valueId}' of instance '${instanceId}'`);
    return this.putIfAbsent(item);
  }

  /** Puts an item on condition that none has its key: the first writer wins, a later one changes nothing. */
  private async putIfAbsent(item: Item): Promise<'created' | 'exists'> {
    try {
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: absent }));
      return 'created';
    } catch (err) {
      if (isConditionFailed(err)) return 'exists';
      throw err;
    }
  }

  async listValueIds(instanceId: string, prefix: string): Promise<string[]> {
    const ids: string[] = [];
    const query: QueryCommandInput = {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': str(instancePk(instanceId)), ':prefix': str(valueSk(prefix)) },
      ProjectionExpression: 'sk',
      ConsistentRead: true,
    };
    for await (const items of this.pages(query)) {
      for (const item of items) ids.push(readStr(item, 'sk').slice(valueSk('').length));
    }
    return ids;
  }

  async putTimer(instanceId: string, timer: Omit<LaneTimer, 'firedAt'>): Promise<'created' | 'exists'> {
    const item: Item = {
      pk: str(instancePk(instanceId)),
      sk: str(timerSk(timer.id)),
      parent: str(timer.parent),
      item: num(timer.item),
      due: num(timer.dueAt),
      ...(timer.retry ? { retry: str(JSON.stringify(timer.retry)) } : {}),
      ...(timer.look ? { look: str(JSON.stringify(timer.look)) } : {}),
      dueAt: num(timer.dueAt),
      duepk: str(timerDueShard(instanceId, timer.id)),
    };
    return this.putIfAbsent(item);
  }

  async fireTimer(instanceId: string, id: string, at: number): Promise<void> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { pk: str(instancePk(instanceId)), sk: str(timerSk(id)) },
          // The index keys go; `due` stays, the timer's own record of when it was due.
          UpdateExpression: 'SET firedAt = :at REMOVE duepk, dueAt',
          ConditionExpression: 'attribute_exists(sk) AND attribute_not_exists(firedAt)',
          ExpressionAttributeValues: { ':at': num(at) },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  async listTimers(instanceId: string, prefix: string, page: TimerPage = {}): Promise<LaneTimer[]> {
    const timers: LaneTimer[] = [];
    const limit = page.limit ?? Number.POSITIVE_INFINITY;
    // After an id: every key above it, in order, until the first without the prefix (ids with it sort together).
    const from = page.after !== undefined && page.after >= prefix ? page.after : undefined;
    const query: QueryCommandInput = {
      TableName: this.table,
      KeyConditionExpression: from === undefined ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk AND sk > :after',
      ExpressionAttributeValues: {
        ':pk': str(instancePk(instanceId)),
        ...(from === undefined ? { ':prefix': str(timerSk(prefix)) } : { ':after': str(timerSk(from)) }),
      },
      ConsistentRead: true,
      ...(Number.isFinite(limit) ? { Limit: limit } : {}),
    };
    for await (const items of this.pages(query)) {
      for (const item of items) {
        if (timers.length >= limit || !readStr(item, 'sk').startsWith(timerSk(prefix))) return timers;
        timers.push(timerOf(item));
      }
    }
    return timers;
  }

  async getTimers(instanceId: string, ids: Iterable<string>): Promise<LaneTimer[]> {
    const sks = [...new Set(ids)].map(timerSk);
    const items = await this.batchGet(instancePk(instanceId), sks, undefined, 'getTimers');
    return items.map(timerOf).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async addToCounter(instanceId: string, counterId: string, by: number): Promise<number> {
    const out = await this.client.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { pk: str(instancePk(instanceId)), sk: str(counterSk(counterId)) },
        UpdateExpression: 'ADD #n :by',
        ExpressionAttributeNames: { '#n': 'n' },
        ExpressionAttributeValues: { ':by': num(by) },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(out.Attributes?.n?.N ?? 0);
  }

  async getCounter(instanceId: string, counterId: string): Promise<number> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: str(instancePk(instanceId)), sk: str(counterSk(counterId)) },
        ConsistentRead: true,
      }),
    );
    return out.Item?.n?.N === undefined ? 0 : Number(out.Item.n.N);
  }

  async getValues(instanceId: string, valueIds: Iterable<string>): Promise<Map<string, unknown>> {
    // BatchGetItem rejects duplicate keys; the map keeps the callers' order.
    const ids = [...new Set(valueIds)];
    const found = new Map<string, unknown>();
    const pk = instancePk(instanceId);
    const skOf = (id: string): string => {
      const seq = journalSeqOf(id);
      if (seq !== undefined) return journalSk(seq);
      return id.startsWith('input:') ? SNAPSHOT_SK : valueSk(id);
    };
    const idOfSk = new Map<string, string[]>();
    for (const id of ids) {
      const sk = skOf(id);
      const same = idOfSk.get(sk);
      if (same) same.push(id);
      else idOfSk.set(sk, [id]);
    }
    const items = await this.batchGet(pk, [...idOfSk.keys()], 'sk, val, valref, inp, inpref, snap', 'getValues');
    for (const item of items) {
      const sk = readStr(item, 'sk');
      for (const id of idOfSk.get(sk) ?? []) {
        if (sk === SNAPSHOT_SK) {
          // The input of this instance's creation, and no other.
          const input =
            (JSON.parse(readStr(item, 'snap')) as Snapshot).inputId === id
              ? await this.readValue(item, 'inp')
              : undefined;
          if (input) found.set(id, input.data);
        } else {
          const value = await this.readValue(item, 'val');
          if (value) found.set(id, value.data);
        }
      }
    }
    const values = new Map<string, unknown>();
    for (const id of ids) {
      if (!found.has(id)) throw new ValueMissingError(id);
      values.set(id, found.get(id));
    }
    return values;
  }

  /**
   * Reads items of one partition by sort key, consistently, 100 at a time,
   * retrying unprocessed keys with backoff; whole items without a projection.
   */
  private async batchGet(
    pk: string,
    sks: readonly string[],
    projection: string | undefined,
    what: string,
  ): Promise<Item[]> {
    const items: Item[] = [];
    for (let i = 0; i < sks.length; i += BATCH_GET_MAX) {
      let keys: Item[] = sks.slice(i, i + BATCH_GET_MAX).map((sk) => ({ pk: str(pk), sk: str(sk) }));
      for (let attempt = 0; keys.length > 0; attempt++) {
        if (attempt > this.maxBatchRetries) {
          throw new Error(`${what}: ${keys.length} keys still unprocessed after ${this.maxBatchRetries} retries`);
        }
        if (attempt > 0) await sleep(Math.min(25 * 2 ** (attempt - 1), 2_000));
        const out = await this.client.send(
          new BatchGetItemCommand({
            RequestItems: {
              [this.table]: {
                Keys: keys,
                ConsistentRead: true,
                ...(projection === undefined ? {} : { ProjectionExpression: projection }),
              },
            },
          }),
        );
        items.push(...(out.Responses?.[this.table] ?? []));
        keys = (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as Item[];
      }
    }
    return items;
  }

  async list(query: ListQuery): Promise<ListPage> {
    const limit = query.limit ?? 50;
    const [indexName, partitionKey] =
      query.status === undefined ? ([INDEX.byWorkflow, 'wfpk'] as const) : ([INDEX.byWorkflowStatus, 'wfspk'] as const);
    const partitionOf = (shard: string) =>
      query.status === undefined
        ? workflowPk(query.workflow, shard)
        : workflowStatusPk(query.workflow, query.status, shard);
    const shards = Array.from({ length: LIST_SHARDS }, (_, n) => String(n));
    const scope = listScope(query);
    // The cursor is decoded before the limit check, so a bad one is refused whatever the limit.
    const shape = Object.fromEntries(shards.map((n) => [`s${n}`, 'string' as const]));
    const from: Record<string, string> =
      query.cursor === undefined
        ? Object.fromEntries(shards.map((n) => [`s${n}`, FROM_START]))
        : decodeCursor(scope, query.cursor, shape);
    for (const n of shards) {
      const at = from[`s${n}`] as string;
      if (at !== FROM_START && at !== EXHAUSTED && !/^\d{15}#.+$/.test(at)) throw invalidListCursor();
    }
    if (limit < 1) return { items: [] };
    // Up to `limit` items from each shard that is not exhausted, newest first.
    const pages = await Promise.all(
      shards.map(async (n) => {
        const at = from[`s${n}`] as string;
        if (at === EXHAUSTED) return { n, items: [] as Item[], more: false };
        const partition = partitionOf(n);
        const start: Item | undefined =
          at === FROM_START
            ? undefined
            : {
                pk: str(instancePk(at.slice(16))),
                sk: str(SNAPSHOT_SK),
                [partitionKey]: str(partition),
                wfsk: str(at),
              };
        const out = await this.client.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: indexName,
            KeyConditionExpression: `${partitionKey} = :partition`,
            ExpressionAttributeValues: { ':partition': str(partition) },
            ScanIndexForward: false,
            Limit: limit,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        return { n, items: out.Items ?? [], more: out.LastEvaluatedKey !== undefined };
      }),
    );
    const merged = pages
      .flatMap((p) => p.items.map((item) => ({ n: p.n, item, wfsk: readStr(item, 'wfsk') })))
      .sort((a, b) => (a.wfsk < b.wfsk ? 1 : a.wfsk > b.wfsk ? -1 : 0));
    const taken = merged.slice(0, limit);
    const next: Record<string, string> = {};
    let more = false;
    for (const p of pages) {
      const mine = taken.filter((t) => t.n === p.n);
      const left = p.items.length > mine.length || p.more;
      const at = from[`s${p.n}`] as string;
      next[`s${p.n}`] = !left ? EXHAUSTED : mine.length > 0 ? (mine[mine.length - 1] as { wfsk: string }).wfsk : at;
      more ||= left;
    }
    const items = taken.map(
      ({ item }): InstanceSummary => ({
        instanceId: instanceIdOf(item),
        workflow: readStr(item, 'workflow'),
        status: readStr(item, 'status') as InstanceSummary['status'],
        createdAt: readNum(item, 'createdAt'),
        updatedAt: readNum(item, 'updatedAt'),
      }),
    );
    return { items, ...(more ? { cursor: encodeCursor(scope, next) } : {}) };
  }

  async due(now: number, limit: number): Promise<DueInstance[]> {
    return this.dueUnder('DUE', now, limit);
  }

  async duePurges(now: number, limit: number): Promise<DueInstance[]> {
    return this.dueUnder('PURGE', now, limit);
  }

  /** The earliest items due at or before `now` in the shards of `prefix`, merged. */
  private async dueUnder(prefix: 'DUE' | 'PURGE', now: number, limit: number): Promise<DueInstance[]> {
    const shards = shardKeys(prefix, DUE_SHARDS);
    const pages = await Promise.all(shards.map((shard) => this.dueIn(shard, now, limit)));
    return pages
      .flat()
      .sort((a, b) => a.dueAt - b.dueAt)
      .slice(0, limit);
  }

  private async dueIn(shard: string, now: number, limit: number): Promise<DueInstance[]> {
    const due: DueInstance[] = [];
    const query: QueryCommandInput = {
      TableName: this.table,
      IndexName: INDEX.byDue,
      KeyConditionExpression: 'duepk = :due AND dueAt <= :now',
      ExpressionAttributeValues: { ':due': str(shard), ':now': num(now) },
      ScanIndexForward: true,
      Limit: limit,
    };
    for await (const items of this.pages(query)) {
      for (const item of items) {
        const sk = readStr(item, 'sk');
        const watched = sk.startsWith('J#') ? Number(sk.slice(2)) : undefined;
        const timer = sk.startsWith(timerSk('')) ? sk.slice(timerSk('').length) : undefined;
        due.push({
          instanceId: instanceIdOf(item),
          dueAt: readNum(item, 'dueAt'),
          ...(watched === undefined ? {} : { watched }),
          ...(timer === undefined ? {} : { timer }),
        });
      }
      if (due.length >= limit) break;
    }
    return due.slice(0, limit);
  }

  async readHistory(
    instanceId: string,
    options: { readonly limit?: number; readonly cursor?: string; readonly afterSeq?: number } = {},
  ): Promise<{ entries: HistoryEntry[]; cursor?: string }> {
    const limit = options.limit ?? 1000;
    const scope = historyScope(instanceId);
    // Position: journal entry `seq` (0: the creation), after its first `skip` history entries.
    const from = historyStart(instanceId, options);
    const entries: HistoryEntry[] = [];
    const take = (
      seq: number,
      list: readonly HistoryEntry[],
      skip: number,
    ): { seq: number; skip: number } | undefined => {
      const room = limit - entries.length;
      const rest = list.slice(skip);
      entries.push(...rest.slice(0, room));
      return rest.length > room ? { seq, skip: skip + room } : undefined;
    };
    if (from.seq === 0) {
      const out = await this.client.send(
        new GetItemCommand({
          TableName: this.table,
          Key: { pk: str(instancePk(instanceId)), sk: str(SNAPSHOT_SK) },
          ConsistentRead: true,
          ProjectionExpression: 'created',
        }),
      );
      if (!out.Item) return { entries };
      const next = take(0, JSON.parse(readStr(out.Item, 'created')) as HistoryEntry[], from.skip);
      if (next) return { entries, cursor: encodeCursor(scope, next) };
    }
    const first = Math.max(1, from.seq);
    const query = { ...this.journalFrom(instanceId, first), Limit: Math.min(100, limit + 1) };
    for await (const items of this.pages(query)) {
      for (const item of items) {
        const entry = entryOf(item);
        const next = take(entry.seq, entry.history, entry.seq === from.seq ? from.skip : 0);
        if (next) return { entries, cursor: encodeCursor(scope, next) };
        if (entries.length >= limit) return { entries, cursor: encodeCursor(scope, { seq: entry.seq + 1, skip: 0 }) };
      }
    }
    return { entries };
  }

  /**
   * Reads the partition's keys (consistently, page by page) and deletes
   * every item but the snapshot and the dead letters with BatchWriteItem,
   * 25 a call, retrying what DynamoDB leaves unprocessed; then the object
   * store's folder; then the snapshot item, with a DeleteItem. A purge cut
   * short leaves the snapshot, and the next one deletes what remains.
   *
   * @throws {Error} items still unprocessed after `maxBatchRetries` retries
   *   (the snapshot is then untouched).
   */
  async purge(instanceId: string): Promise<void> {
    const pk = instancePk(instanceId);
    const query: QueryCommandInput = {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': str(pk) },
      ProjectionExpression: 'pk, sk',
      ConsistentRead: true,
    };
    // Keys only (the projection), so each item is its own key. Each page is deleted before
    // the next is read: a page's start key need not exist any more.
    for await (const items of this.pages(query)) {
      const keys = items.filter((item) => {
        const sk = readStr(item, 'sk');
        return sk !== SNAPSHOT_SK && !sk.startsWith(DEAD_LETTER_SK_PREFIX);
      });
      for (let i = 0; i < keys.length; i += BATCH_WRITE_MAX) await this.deleteBatch(keys.slice(i, i + BATCH_WRITE_MAX));
    }
    await this.objects?.deleteFolder(instanceId);
    // Unconditional: deleting a missing item succeeds, so a second purge does nothing.
    await this.client.send(
      new DeleteItemCommand({ TableName: this.table, Key: { pk: str(pk), sk: str(SNAPSHOT_SK) } }),
    );
  }

  /** Deletes up to 25 items in one BatchWriteItem, retrying the unprocessed ones with backoff. */
  private async deleteBatch(keys: readonly Item[]): Promise<void> {
    let requests = keys.map((key) => ({ DeleteRequest: { Key: key } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > this.maxBatchRetries) {
        throw new Error(`purge: ${requests.length} items still unprocessed after ${this.maxBatchRetries} retries`);
      }
      if (attempt > 0) await sleep(Math.min(25 * 2 ** (attempt - 1), 2_000));
      const out = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.table]: requests } }));
      requests = (out.UnprocessedItems?.[this.table] ?? []).flatMap((r) =>
        r.DeleteRequest?.Key ? [{ DeleteRequest: { Key: r.DeleteRequest.Key } }] : [],
      );
    }
  }
}

/** A journal item as the port's entry, with its payload when it is inline (an offloaded one is read by `getValues`). */
function entryOf(item: Item): JournalEntry {
  const e = JSON.parse(readStr(item, 'e')) as Omit<JournalEntry, 'value'>;
  const val = item.val?.S;
  return { ...e, ...(val === undefined ? {} : { value: { data: fromJson(val) } }) };
}

/** A lane timer item (`T#<id>`) as the port's record. */
function timerOf(item: Item): LaneTimer {
  return {
    id: readStr(item, 'sk').slice(timerSk('').length),
    dueAt: readNum(item, 'due'),
    parent: readStr(item, 'parent'),
    item: readNum(item, 'item'),
    ...(item.firedAt ? { firedAt: readNum(item, 'firedAt') } : {}),
    ...(item.retry ? { retry: JSON.parse(readStr(item, 'retry')) as LaneRetry } : {}),
    ...(item.look ? { look: JSON.parse(readStr(item, 'look')) as LaneLookTimer } : {}),
  };
}
