/**
 * Errors of the Sayiir engine.
 *
 * A task that throws a {@link TerminalError} is never retried: the run (or its
 * branch) fails at once. Any other error is retryable under the task's retry
 * policy. Errors cross process boundaries as {@link SerializedError}.
 */

import { type ApiErrorCode, SayiirError } from '../errors.ts';

/** Serializable form of an error, as checkpointed and reported. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** False for a {@link TerminalError}: the engine does not retry it. */
  readonly retryable: boolean;
  readonly stack?: string;
}

/**
 * An error that must not be retried (bad input, a business rule violated).
 *
 * @example
 * ```ts
 * task('charge', async (order: Order) => {
 *   if (order.total < 0) throw new TerminalError('negative total');
 *   return pay(order);
 * });
 * ```
 */
export class TerminalError extends SayiirError {
  override readonly name: string = 'TerminalError';
  readonly retryable = false;
}

/** A task ran past its timeout. Retryable. */
export class TaskTimeoutError extends SayiirError {
  override readonly name = 'TaskTimeoutError';
  constructor(
    readonly taskKey: string,
    readonly timeoutMs: number,
  ) {
    super(`task '${taskKey}' timed out after ${timeoutMs} ms`);
  }
}

/** A task's input or output failed its schema. Never retried. */
export class TaskSchemaError extends TerminalError {
  override readonly name = 'TaskSchemaError';
  constructor(
    readonly taskKey: string,
    readonly which: 'input' | 'output',
    cause: unknown,
  ) {
    super(`task '${taskKey}' ${which} failed its schema: ${ensureError(cause).message}`);
  }
}

/** The flow definition is invalid; thrown by the builder at build time. */
export class FlowDefinitionError extends SayiirError {
  override readonly name = 'FlowDefinitionError';
  constructor(
    readonly flowName: string,
    message: string,
  ) {
    super(`flow '${flowName}': ${message}`);
  }
}

/** A duration string or number could not be parsed. */
export class DurationFormatError extends SayiirError {
  override readonly name = 'DurationFormatError';
  constructor(readonly value: unknown) {
    super(
      `invalid duration ${JSON.stringify(value)}: use milliseconds (a non-negative number) or a string like '500ms', '30s', '5m', '2h', '1d'`,
    );
  }
}

/** A stored instance was started from a different definition than the current one. */
export class DefinitionMismatchError extends SayiirError {
  override readonly name = 'DefinitionMismatchError';
  override readonly httpStatus = 409;
  override readonly code: ApiErrorCode = 'definition_mismatch';
  constructor(
    readonly instanceId: string,
    readonly storedHash: string,
    readonly currentHash: string,
  ) {
    super(
      `instance '${instanceId}' was started with definition ${storedHash}, but the current definition is ${currentHash}; refusing to resume it with a different structure`,
    );
  }
}

/** Turns anything thrown into an `Error`, keeping an `Error` as it is. */
export function ensureError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return new Error(`non-error thrown: ${text}`);
}

/** True when the engine should not retry this error. */
export function isTerminal(error: unknown): boolean {
  return (
    error instanceof TerminalError ||
    (typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === false)
  );
}

/** The serializable form of any thrown value. */
export function serializeError(value: unknown): SerializedError {
  const error = ensureError(value);
  return {
    name: truncateText(String(error.name), MAX_ERROR_NAME_CHARS),
    message: truncateText(String(error.message)),
    retryable: !isTerminal(error),
    ...(error.stack ? { stack: truncateText(String(error.stack), MAX_STACK_CHARS) } : {}),
  };
}

/**
 * Longest error message (or other free text the engine stores: a cancel
 * reason, a dead letter's reason) kept and shown; the rest is cut, with a
 * marker saying how much. A task may throw an error of any size: its
 * journal entry, its dead letter and a page of history must stay small.
 */
export const MAX_MESSAGE_CHARS = 2_000;

/**
 * How many reservations of one attempt may expire (their workers died
 * holding them) before the attempt counts as failed (`WorkerLostError`):
 * one or two are a worker that died before starting, which costs nothing;
 * more are most likely a task that kills its worker.
 */
export const RESERVATION_LAPSES = 3;

/**
 * The failure of an attempt whose worker died (the reaper found its claim
 * expired): its lease ran out, or {@link RESERVATION_LAPSES} reservations of
 * it did. Retryable: the retry policy decides what follows.
 */
export const WORKER_LOST = {
  lease: {
    name: 'WorkerLostError',
    message: 'the worker running this attempt stopped renewing its lease',
    retryable: true,
  },
  reservations: {
    name: 'WorkerLostError',
    message: `the workers holding this attempt stopped before renewing their reservation, ${RESERVATION_LAPSES} times`,
    retryable: true,
  },
} as const;
/** Longest error name kept. */
export const MAX_ERROR_NAME_CHARS = 200;
/** Longest stack trace kept. */
export const MAX_STACK_CHARS = 8_000;

/**
 * `text` cut to `max` characters, with a marker naming what was cut.
 *
 * @example
 * ```ts
 * truncateText('x'.repeat(2_010), 2_000); // 'xx…x… [10 more characters]'
 * ```
 */
export function truncateText(text: string, max: number = MAX_MESSAGE_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters]`;
}

/**
 * A value cannot be stored because JSON cannot express it: a BigInt, a
 * circular reference, a `toJSON` that throws, nesting too deep for the
 * stack. Never retried: the same value fails the same way every time.
 * `problem` names the cause and, when it can be found, where it is
 * (`a BigInt at $.order.total`).
 */
export class PayloadSerializationError extends TerminalError {
  override readonly name = 'PayloadSerializationError';
  constructor(
    readonly subject: string,
    readonly problem: string,
    options?: { readonly cause?: unknown },
  ) {
    super(`${subject} cannot be stored as JSON: ${problem}`, options);
  }
}

/**
 * An offloaded value's bytes are not the ones its reference was made for
 * (another size or SHA-256): the object was overwritten or damaged. Never
 * retried: reading it again returns the same bytes.
 */
export class PayloadIntegrityError extends TerminalError {
  override readonly name = 'PayloadIntegrityError';
  constructor(
    readonly key: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`offloaded value '${key}' has ${actual}, but its reference expects ${expected}`);
  }
}
