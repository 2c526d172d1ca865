import { DeleteItemCommand, type DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import {
  type DeadLetter,
  type DeadLetterListOptions,
  type DeadLetterPage,
  type DeadLetterStore,
  deadLetterId,
  deadLetterSortKey,
  poolOf,
  type TaskDeadLetter,
} from '../../ports/dead-letter-store.ts';
import { INDEX } from '../../resources/tables.ts';
import { decodeDeadLetterCursor, encodeDeadLetterCursor } from '../cursor.ts';
import { assertFits, type Item, isConditionFailed, readStr, shardKey, str } from './codec.ts';

/** Options of {@link DynamoDeadLetterStore}. */
export interface DynamoDeadLetterStoreOptions {
  /** The client; inject one pointed at dynalite for local runs and tests. */
  readonly client: DynamoDBClient;
  /** Physical name of the table defined by `instancesTable` (records live beside their instance). */
  readonly tableName: string;
}

// Conditions, by name.
const absent = 'attribute_not_exists(pk)';
const present = 'attribute_exists(pk)';

/**
 * Shards of the dead-letter index: a record's `dlpk` is `DL#<pool>@<n>`, `n`
 * from a hash of its instance id (of its message id for a malformed one), so
 * a burst of failures across many runs spreads over several partition keys;
 * `list` reads the shards in parallel and merges them newest first.
 */
export const DEAD_LETTER_SHARDS = 4;
const SK_PREFIX = 'D#';

const dlpk = (pool: string, shard: string): string => `DL#${pool}@${shard}`;
const shardOf = (letter: DeadLetter): string =>
  shardKey(
    'DL',
    letter.origin === 'malformed' ? letter.messageId : letter.dispatch.instanceId,
    DEAD_LETTER_SHARDS,
  ).slice(3);

/** The table key of a record: beside its instance (`I#<id>`), or under its pool for a malformed one. */
function keyOf(letter: DeadLetter): Item {
  const pk = letter.origin === 'malformed' ? `DLQ#${letter.pool}` : `I#${letter.dispatch.instanceId}`;
  return { pk: str(pk), sk: str(`${SK_PREFIX}${deadLetterId(letter)}`) };
}

const parse = (item: Item): DeadLetter => JSON.parse(readStr(item, 'dl')) as DeadLetter;

/**
 * Dead-letter records on DynamoDB, as items of the instances table:
 *
 * - a task's record: `pk` = `I#<instanceId>` (it lives and goes with its
 *   instance), `sk` = `D#<deadLetterId>`; a malformed message's record:
 *   `pk` = `DLQ#<pool>`;
 * - `dl`: the record as JSON;
 * - the sparse `byDeadLetterPool` index: `dlpk` = `DL#<pool>@<shard>`,
 *   `dlsk` = the record's `deadLetterSortKey` (time, then id).
 *
 * A put is conditional on the item's absence (the same attempt twice keeps
 * the first record), a delete on its presence; reads are queries only.
 *
 * @example
 * ```ts
 * const letters = new DynamoDeadLetterStore({ client: new DynamoDBClient({}), tableName: 'sayiir-instances' });
 * const page = await letters.list('default', { limit: 25 });
 * ```
 */
export class DynamoDeadLetterStore implements DeadLetterStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  constructor(options: DynamoDeadLetterStoreOptions) {
    this.client = options.client;
    this.table = options.tableName;
  }

  async put(letter: DeadLetter): Promise<'created' | 'exists'> {
    const item: Item = {
      ...keyOf(letter),
      dl: str(JSON.stringify(letter)),
      dlpk: str(dlpk(poolOf(letter), shardOf(letter))),
      dlsk: str(deadLetterSortKey(letter)),
    };
    assertFits(item, 'dead letter');
    try {
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: absent }));
      return 'created';
    } catch (e) {
      if (isConditionFailed(e)) return 'exists';
      throw e;
    }
  }

  async list(pool: string, options: DeadLetterListOptions = {}): Promise<DeadLetterPage> {
    // The cursor is decoded first, so a bad one is refused whatever the limit.
    const before = options.cursor === undefined ? undefined : decodeDeadLetterCursor(pool, options.cursor);
    const limit = options.limit ?? 50;
    if (limit < 1) return { letters: [] };
    const shards = Array.from({ length: DEAD_LETTER_SHARDS }, (_, n) => String(n));
    // Up to `limit` records from each shard, newest first; all older than the cursor's.
    const pages = await Promise.all(
      shards.map(async (n) => {
        const out = await this.client.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: INDEX.byDeadLetterPool,
            KeyConditionExpression: before === undefined ? 'dlpk = :p' : 'dlpk = :p AND dlsk < :before',
            ExpressionAttributeValues: { ':p': str(dlpk(pool, n)), ...(before ? { ':before': str(before) } : {}) },
            ScanIndexForward: false,
            Limit: limit,
          }),
        );
        return { items: out.Items ?? [], more: out.LastEvaluatedKey !== undefined };
      }),
    );
    const merged = pages
      .flatMap((p) => p.items.map((item) => ({ item, key: readStr(item, 'dlsk') })))
      .sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    const taken = merged.slice(0, limit);
    const last = taken[taken.length - 1];
    // Every record newer than the last one taken is taken (a merge of sorted shards), so one position resumes them all.
    const more = merged.length > limit || pages.some((p) => p.more);
    return {
      letters: taken.map((t) => parse(t.item)),
      ...(more && last ? { cursor: encodeDeadLetterCursor(pool, last.key) } : {}),
    };
  }

  async ofInstance(instanceId: string, options: { readonly limit?: number } = {}): Promise<TaskDeadLetter[]> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': str(`I#${instanceId}`), ':prefix': str(SK_PREFIX) },
        ConsistentRead: true,
        Limit: options.limit ?? 100,
      }),
    );
    return (out.Items ?? []).map(parse).filter((l): l is TaskDeadLetter => l.origin !== 'malformed');
  }

  async delete(letter: DeadLetter): Promise<boolean> {
    try {
      await this.client.send(
        new DeleteItemCommand({ TableName: this.table, Key: keyOf(letter), ConditionExpression: present }),
      );
      return true;
    } catch (e) {
      if (isConditionFailed(e)) return false;
      throw e;
    }
  }
}
