/**
 * How a {@link Dispatch} travels through SQS: its body (JSON of the dispatch,
 * references only, never payloads), its FIFO deduplication id and its FIFO
 * message group id.
 */

import { createHash } from 'node:crypto';
import type { PathStep, Ref } from '../../engine/refs.ts';
import type { Dispatch } from '../../engine/snapshot.ts';
import { PRIORITIES, type Priority } from '../../engine/task.ts';
import { PayloadTooLargeError } from '../../ports/errors.ts';
import { DispatchParseError } from './errors.ts';

/**
 * Largest dispatch body the adapter sends, in bytes: SQS's classic message
 * limit, which every account and region accepts. A dispatch holds references
 * only (typically a few hundred bytes); coming near this means a payload
 * leaked into a ref, or a very wide join of references.
 */
export const MAX_DISPATCH_BODY_BYTES = 256 * 1024;

/** SQS FIFO ids: 1 to 128 characters, printable ASCII without space. */
const FIFO_ID = /^[!-~]{1,128}$/;

/**
 * A valid SQS FIFO id (deduplication or group id) for the given parts.
 *
 * Readable when possible: the parts joined with `:`, when that is valid for
 * SQS and unambiguous (at most one part contains a `:`, so a fixed number of
 * parts splits back one way only). Otherwise `sha256-` and the hex SHA-256 of
 * the parts as JSON (71 characters). Readable ids always contain a `:` and
 * hashed ids never do, so the two forms cannot collide.
 */
export function fifoId(parts: readonly (string | number)[]): string {
  const strings = parts.map(String);
  const joined = strings.join(':');
  if (strings.filter((p) => p.includes(':')).length <= 1 && FIFO_ID.test(joined)) return joined;
  return `sha256-${createHash('sha256').update(JSON.stringify(strings)).digest('hex')}`;
}

/**
 * Deduplication id of a dispatch: `instanceId:key:attempt:gen`. Sending the
 * same dispatch twice within SQS's five-minute window delivers it once; a
 * retry (next attempt) or a re-dispatch by the reaper (next generation, after
 * a message was lost) is a new message.
 */
export function dispatchDeduplicationId(d: Pick<Dispatch, 'instanceId' | 'key' | 'attempt' | 'gen'>): string {
  return fifoId([d.instanceId, d.key, d.attempt, d.gen]);
}

/**
 * Message group id of a dispatch: `instanceId:key`. Task keys are unique
 * within an instance (map items and loop iterations included), so fork
 * branches and map items of one run are in different groups and run in
 * parallel, while two attempts of one task are serialised by FIFO group
 * locking.
 */
export function dispatchGroupId(d: Pick<Dispatch, 'instanceId' | 'key'>): string {
  return fifoId([d.instanceId, d.key]);
}

/**
 * The SQS body of a dispatch: its JSON, with the fields in a fixed order.
 *
 * @throws PayloadTooLargeError when the body is over `maxBytes`.
 */
export function encodeDispatch(d: Dispatch, maxBytes: number = MAX_DISPATCH_BODY_BYTES): string {
  const body = JSON.stringify({
    instanceId: d.instanceId,
    workflow: d.workflow,
    key: d.key,
    qid: d.qid,
    input: d.input,
    attempt: d.attempt,
    gen: d.gen,
    priority: d.priority,
    pool: d.pool,
    ...(d.lane ? { lane: d.lane } : {}),
  } satisfies Dispatch);
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > maxBytes) {
    throw new PayloadTooLargeError(`dispatch of task '${d.key}' of '${d.instanceId}'`, bytes, maxBytes);
  }
  return body;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseRef(value: unknown, where: string, body: string): Ref {
  if (!isObject(value)) throw new DispatchParseError(`${where} is not a ref object`, body);
  if ('c' in value) return { c: value.c };
  if ('all' in value) {
    if (!Array.isArray(value.all)) throw new DispatchParseError(`${where}.all is not an array`, body);
    return { all: value.all.map((r, i) => parseRef(r, `${where}.all[${i}]`, body)) };
  }
  if ('v' in value) {
    if (typeof value.v !== 'string' || value.v === '') {
      throw new DispatchParseError(`${where}.v is not a non-empty string`, body);
    }
    if (value.at === undefined) return { v: value.v };
    if (!Array.isArray(value.at) || !value.at.every((s) => typeof s === 'string' || Number.isInteger(s))) {
      throw new DispatchParseError(`${where}.at is not an array of names and indices`, body);
    }
    return { v: value.v, at: value.at as PathStep[] };
  }
  if ('each' in value) {
    if (typeof value.each !== 'string' || !value.each.includes('[]')) {
      throw new DispatchParseError(`${where}.each is not a value-id template with '[]'`, body);
    }
    if (!Number.isInteger(value.n) || (value.n as number) < 0) {
      throw new DispatchParseError(`${where}.n is not a non-negative integer`, body);
    }
    if (value.except === undefined) return { each: value.each, n: value.n as number };
    if (!isObject(value.except)) throw new DispatchParseError(`${where}.except is not an object`, body);
    const except: Record<string, Ref> = {};
    for (const [i, r] of Object.entries(value.except)) except[i] = parseRef(r, `${where}.except.${i}`, body);
    return { each: value.each, n: value.n as number, except };
  }
  throw new DispatchParseError(`${where} has none of 'v', 'all', 'c', 'each'`, body);
}

function requireString(obj: Json, field: keyof Dispatch, body: string): string {
  const value = obj[field];
  if (typeof value !== 'string' || value === '') {
    throw new DispatchParseError(`'${field}' is not a non-empty string`, body);
  }
  return value;
}

/**
 * Parses and validates an SQS message body into a {@link Dispatch}. Unknown
 * fields are dropped.
 *
 * @throws DispatchParseError when the body is not JSON or not a dispatch.
 * @example
 * ```ts
 * for (const record of event.Records) {
 *   const dispatch = parseDispatch(record.body);
 * }
 * ```
 */
export function parseDispatch(body: string): Dispatch {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new DispatchParseError(`not JSON (${(error as Error).message})`, body);
  }
  if (!isObject(value)) throw new DispatchParseError('not a JSON object', body);
  const attempt = value.attempt;
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) {
    throw new DispatchParseError("'attempt' is not a positive integer", body);
  }
  // Absent in messages sent before dispatch generations existed: the first one.
  const gen = value.gen ?? 1;
  if (typeof gen !== 'number' || !Number.isInteger(gen) || gen < 1) {
    throw new DispatchParseError("'gen' is not a positive integer", body);
  }
  const priority = value.priority;
  if (!PRIORITIES.includes(priority as Priority)) {
    throw new DispatchParseError(`'priority' is not one of ${PRIORITIES.join(', ')}`, body);
  }
  const lane = value.lane;
  if (
    lane !== undefined &&
    !(
      isObject(lane) &&
      typeof lane.parent === 'string' &&
      Number.isSafeInteger(lane.item) &&
      (lane.item as number) >= 0
    )
  ) {
    throw new DispatchParseError("'lane' is not { parent, item }", body);
  }
  return {
    instanceId: requireString(value, 'instanceId', body),
    workflow: requireString(value, 'workflow', body),
    key: requireString(value, 'key', body),
    qid: requireString(value, 'qid', body),
    input: parseRef(value.input, 'input', body),
    attempt,
    gen,
    priority: priority as Priority,
    pool: requireString(value, 'pool', body),
    ...(lane === undefined ? {} : { lane: { parent: lane.parent as string, item: lane.item as number } }),
  };
}

/** The SQS message attribute carrying a dispatch's trace context (W3C `traceparent`). */
export const TRACEPARENT_ATTRIBUTE = 'traceparent';

/**
 * The message attributes of a dispatch: its trace context, when it has one.
 *
 * @example
 * ```ts
 * entry.MessageAttributes = dispatchAttributes(dispatch);
 * ```
 */
export function dispatchAttributes(
  d: Pick<Dispatch, 'trace'>,
): Record<string, { DataType: 'String'; StringValue: string }> | undefined {
  return d.trace === undefined ? undefined : { [TRACEPARENT_ATTRIBUTE]: { DataType: 'String', StringValue: d.trace } };
}

/** What {@link parseDispatchRecord} reads of a Lambda SQS record. */
export interface DispatchRecord {
  readonly body: string;
  readonly attributes?: { readonly SentTimestamp?: string };
  readonly messageAttributes?: Readonly<Record<string, { readonly stringValue?: string | undefined }>>;
}

/**
 * A dispatch from an SQS record: {@link parseDispatch} of its body, with its
 * trace context (message attribute) and its sending time (`SentTimestamp`).
 *
 * @throws DispatchParseError when the body is not a dispatch.
 */
export function parseDispatchRecord(record: DispatchRecord): Dispatch {
  const d = parseDispatch(record.body);
  const trace = record.messageAttributes?.[TRACEPARENT_ATTRIBUTE]?.stringValue;
  const sentAt = Number(record.attributes?.SentTimestamp);
  return {
    ...d,
    ...(trace ? { trace } : {}),
    ...(Number.isSafeInteger(sentAt) && sentAt > 0 ? { sentAt } : {}),
  };
}
