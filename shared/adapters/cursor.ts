import { isDeadLetterSortKey } from '../ports/dead-letter-store.ts';
import { InvalidCursorError } from '../ports/errors.ts';
import type { ListQuery } from '../ports/instance-store.ts';

/**
 * The one cursor codec of every instance store. A cursor is base64url JSON of
 * `{ v, s, p }`: a format version, the scope it pages and the position of the
 * next page. Binding the scope into the cursor is what lets a store refuse a
 * cursor of another listing or another instance's history, and decoding checks
 * every field, so a crafted cursor is refused before it reaches a query.
 */

/**
 * What a cursor pages: a listing (`workflow`, and `status` when filtered) or
 * the history of one instance. Values are compared exactly on decode.
 */
export type CursorScope = Readonly<Record<string, string>>;

/** The type of each field of a position: a string, or a non-negative safe integer. */
export type PositionShape = Readonly<Record<string, 'string' | 'integer'>>;

/** The position a {@link PositionShape} describes. */
export type PositionOf<S extends PositionShape> = { readonly [K in keyof S]: S[K] extends 'string' ? string : number };

const VERSION = 1;
/** Longer than any cursor a store produces (keys are bounded by the item key limits). */
const MAX_CURSOR_CHARS = 8192;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The scope of a listing: its workflow and, when filtered, its status.
 *
 * @example
 * ```ts
 * listScope({ workflow: 'orders', status: 'RUNNING' }); // { pages: 'list', workflow: 'orders', status: 'RUNNING' }
 * ```
 */
export function listScope(query: Pick<ListQuery, 'workflow' | 'status'>): CursorScope {
  return { pages: 'list', workflow: query.workflow, ...(query.status === undefined ? {} : { status: query.status }) };
}

/**
 * The scope of an instance's history.
 *
 * @example
 * ```ts
 * historyScope('order-1'); // { pages: 'history', instanceId: 'order-1' }
 * ```
 */
export function historyScope(instanceId: string): CursorScope {
  return { pages: 'history', instanceId };
}

/** Where a history page starts: journal entry `seq` (0: the creation's entries), after its first `skip` entries. */
export interface HistoryPosition {
  readonly seq: number;
  readonly skip: number;
}

/**
 * The start of a history page, the same for every store: the cursor's
 * position, else just after journal entry `afterSeq` (see
 * `InstanceStore.readHistory`), else the beginning.
 *
 * @throws {InvalidCursorError} the cursor is not one of this instance's history.
 */
export function historyStart(
  instanceId: string,
  options: { readonly cursor?: string; readonly afterSeq?: number },
): HistoryPosition {
  if (options.cursor !== undefined) {
    return decodeCursor(historyScope(instanceId), options.cursor, { seq: 'integer', skip: 'integer' });
  }
  return { seq: options.afterSeq === undefined ? 0 : options.afterSeq + 1, skip: 0 };
}

/**
 * The scope of a pool's dead letters.
 *
 * @example
 * ```ts
 * deadLetterScope('default'); // { pages: 'dead-letters', pool: 'default' }
 * ```
 */
export function deadLetterScope(pool: string): CursorScope {
  return { pages: 'dead-letters', pool };
}

/**
 * The cursor of a pool's dead letters after the record whose sort key is
 * `before` (see `deadLetterSortKey`): the next page holds the records whose
 * sort key is lower. One position for every adapter, however it shards.
 */
export function encodeDeadLetterCursor(pool: string, before: string): string {
  return encodeCursor(deadLetterScope(pool), { before });
}

/**
 * The sort key a dead-letter cursor of this pool resumes before.
 *
 * @throws {InvalidCursorError} anything {@link encodeDeadLetterCursor} did not make for this pool.
 */
export function decodeDeadLetterCursor(pool: string, cursor: string): string {
  const { before } = decodeCursor(deadLetterScope(pool), cursor, { before: 'string' });
  if (!isDeadLetterSortKey(before)) throw malformed();
  return before;
}

/**
 * The scope of an instance's lane timers, all of them or those of one map
 * or fork (`parent`).
 *
 * @example
 * ```ts
 * laneTimerScope('order-1', 'items'); // { pages: 'lane-timers', instanceId: 'order-1', parent: 'items' }
 * ```
 */
export function laneTimerScope(instanceId: string, parent: string | undefined): CursorScope {
  return { pages: 'lane-timers', instanceId, ...(parent === undefined ? {} : { parent }) };
}

/** The cursor of an instance's lane timers after the one whose id is `after` (see `InstanceStore.listTimers`). */
export function encodeLaneTimerCursor(instanceId: string, parent: string | undefined, after: string): string {
  return encodeCursor(laneTimerScope(instanceId, parent), { after });
}

/**
 * The timer id a lane-timer cursor of this instance (and parent) resumes after.
 *
 * @throws {InvalidCursorError} anything {@link encodeLaneTimerCursor} did not make for this scope.
 */
export function decodeLaneTimerCursor(instanceId: string, parent: string | undefined, cursor: string): string {
  return decodeCursor(laneTimerScope(instanceId, parent), cursor, { after: 'string' }).after;
}

/**
 * An opaque cursor for `position` within `scope`.
 *
 * @example
 * ```ts
 * const cursor = encodeCursor(historyScope('order-1'), { offset: 100 });
 * ```
 */
export function encodeCursor(scope: CursorScope, position: Readonly<Record<string, string | number>>): string {
  return Buffer.from(JSON.stringify({ v: VERSION, s: scope, p: position }), 'utf8').toString('base64url');
}

/**
 * The position a cursor stands for, on condition that it was made by
 * {@link encodeCursor} for this very scope and that its position has exactly
 * the fields of `shape`, of their types.
 *
 * @throws {InvalidCursorError} anything else: not base64url JSON, another
 *   shape, another scope (listing, status or instance), a missing, extra or
 *   mistyped field.
 * @example
 * ```ts
 * const { offset } = decodeCursor(historyScope('order-1'), cursor, { offset: 'integer' });
 * ```
 */
export function decodeCursor<S extends PositionShape>(scope: CursorScope, cursor: string, shape: S): PositionOf<S> {
  if (cursor.length > MAX_CURSOR_CHARS || !BASE64URL.test(cursor)) throw malformed();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw malformed();
  }
  if (!isPlainObject(parsed) || !hasExactlyKeys(parsed, ['v', 's', 'p']) || parsed.v !== VERSION) throw malformed();
  const { s, p } = parsed;
  if (!isPlainObject(s) || !isPlainObject(p) || !hasExactlyKeys(p, Object.keys(shape))) throw malformed();
  for (const [field, type] of Object.entries(shape)) {
    const value = p[field];
    const ok = type === 'string' ? typeof value === 'string' : Number.isSafeInteger(value) && (value as number) >= 0;
    if (!ok) throw malformed();
  }
  if (!hasExactlyKeys(s, Object.keys(scope)) || Object.entries(scope).some(([k, v]) => s[k] !== v)) {
    throw outOfScope();
  }
  return p as PositionOf<S>;
}

/** The error for a cursor that decodes but points outside the scope (e.g. another partition's key). */
export function outOfScope(): InvalidCursorError {
  return new InvalidCursorError('cursor', 'does not belong to this listing');
}

function malformed(): InvalidCursorError {
  return new InvalidCursorError('cursor', 'is not a cursor returned by a previous page');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasExactlyKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(value, k));
}
