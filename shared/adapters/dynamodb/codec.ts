/**
 * A tiny AttributeValue codec: the adapters only store strings and numbers,
 * so plain `{ S }` / `{ N }` values are all they need (no util-dynamodb).
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
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
export class MalformedItemError extends Error {
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

/** JSON text of a value; `undefined` (and what JSON cannot express at the top) as the text `undefined`. */
export function toJson(value: unknown): string {
  return JSON.stringify(value) ?? 'undefined';
}

/** The inverse of {@link toJson}. */
export function fromJson(text: string): unknown {
  return text === 'undefined' ? undefined : JSON.parse(text);
}

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

/** Thrown for a list cursor that this adapter did not produce. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
  constructor() {
    super('invalid list cursor');
  }
}

/** An opaque cursor from a query's `LastEvaluatedKey` (string and number keys only). */
export function encodeCursor(key: Item): string {
  const plain: Record<string, { S: string } | { N: string }> = {};
  for (const [name, value] of Object.entries(key)) {
    if (value.S !== undefined) plain[name] = { S: value.S };
    else if (value.N !== undefined) plain[name] = { N: value.N };
  }
  return Buffer.from(JSON.stringify(plain), 'utf8').toString('base64url');
}

/**
 * The `ExclusiveStartKey` a cursor stands for.
 *
 * @throws {InvalidCursorError} it is not one of ours.
 */
export function decodeCursor(cursor: string): Item {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidCursorError();
  const key: Item = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    const v = value as { S?: unknown; N?: unknown } | null;
    if (typeof v?.S === 'string') key[name] = { S: v.S };
    else if (typeof v?.N === 'string') key[name] = { N: v.N };
    else throw new InvalidCursorError();
  }
  return key;
}
