/**
 * A tiny AttributeValue codec: the adapters only store strings and numbers,
 * so plain `{ S }` / `{ N }` values are all they need (no util-dynamodb).
 */

import {
  type AttributeValue,
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { SayiirError } from '../../errors.ts';
import { PayloadTooLargeError } from '../../ports/errors.ts';

/** A DynamoDB item in wire form. */
export type Item = Record<string, AttributeValue>;

/**
 * Largest item the adapters write, in bytes. DynamoDB's limit is 400 KB; the
 * margin covers the estimate's slack. Checked before sending, so the caller
 * gets a {@link PayloadTooLargeError}, never an SDK validation error.
 */
export const MAX_ITEM_BYTES = 350_000;

/** A string attribute. */
export const str = (value: string): AttributeValue => ({ S: value });

/** A number attribute. */
export const num = (value: number): AttributeValue => ({ N: String(value) });

/** Thrown when a stored item lacks an attribute the adapter wrote: the table holds something foreign. */
export class MalformedItemError extends SayiirError {
  override readonly name = 'MalformedItemError';
  constructor(
    readonly attribute: string,
    readonly expected: 'S' | 'N',
  ) {
    super(`stored item has no ${expected} attribute '${attribute}'`);
  }
}

/** Reads a string attribute. @throws {MalformedItemError} */
export function readStr(item: Item, name: string): string {
  const value = item[name]?.S;
  if (value === undefined) throw new MalformedItemError(name, 'S');
  return value;
}

/** Reads a number attribute. @throws {MalformedItemError} */
export function readNum(item: Item, name: string): number {
  const value = item[name]?.N;
  if (value === undefined) throw new MalformedItemError(name, 'N');
  return Number(value);
}

/** Reads a number attribute that may be absent. */
export function readOptNum(item: Item, name: string): number | undefined {
  const value = item[name]?.N;
  return value === undefined ? undefined : Number(value);
}

/** Value JSON text: one rule for every store and the payload codec, kept in `engine/json.ts`. */
export { fromJson, toJson } from '../../engine/json.ts';

/**
 * Upper estimate of an item's size as DynamoDB counts it: attribute name
 * bytes plus value bytes (UTF-8 for strings; a number never takes more than
 * its decimal text plus one).
 */
export function itemBytes(item: Item): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name, 'utf8');
    if (value.S !== undefined) bytes += Buffer.byteLength(value.S, 'utf8');
    else if (value.N !== undefined) bytes += value.N.length + 1;
    else throw new TypeError(`unexpected attribute type for '${name}'`);
  }
  return bytes;
}

/**
 * Refuses an item over {@link MAX_ITEM_BYTES}.
 *
 * @throws {PayloadTooLargeError} naming `what`.
 */
export function assertFits(item: Item, what: string): void {
  const bytes = itemBytes(item);
  if (bytes > MAX_ITEM_BYTES) throw new PayloadTooLargeError(what, bytes, MAX_ITEM_BYTES);
}

/** Whether an SDK error is a failed condition (checked by name: robust to duplicated SDK copies). */
export function isConditionFailed(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}

/** Kept here for the adapter's public exports; the port defines it. */
export { InvalidCursorError } from '../../ports/errors.ts';

/**
 * The shard of a sparse index's partition key for an item of instance
 * `instanceId`: `<prefix>#<n>`, `n` from an FNV-1a hash of the id, so no
 * single partition key takes every write of the index (the due index, the
 * lease index) and its readers query the shards in parallel.
 *
 * @example
 * ```ts
 * shardKey('DUE', 'order-17', 8); // 'DUE#5'
 * ```
 */
export function shardKey(prefix: string, instanceId: string, shards: number): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < instanceId.length; i++) h = Math.imul(h ^ instanceId.charCodeAt(i), 0x01000193) >>> 0;
  return `${prefix}#${h % shards}`;
}

/** Every shard key of a sparse index (see {@link shardKey}). */
export const shardKeys = (prefix: string, shards: number): string[] =>
  Array.from({ length: shards }, (_, n) => `${prefix}#${n}`);

/**
 * The pages of a query, following `LastEvaluatedKey`; a caller that has
 * enough stops iterating, and no further page is read.
 *
 * @example
 * ```ts
 * for await (const items of queryPages(client, { TableName, KeyConditionExpression, … })) use(items);
 * ```
 */
export async function* queryPages(client: DynamoDBClient, input: QueryCommandInput): AsyncGenerator<Item[]> {
  let start: Item | undefined;
  do {
    const out = await client.send(new QueryCommand({ ...input, ...(start ? { ExclusiveStartKey: start } : {}) }));
    yield out.Items ?? [];
    start = out.LastEvaluatedKey;
  } while (start);
}
