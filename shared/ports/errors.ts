/** Errors the ports raise. Adapters turn their platform's conditional failures into these. */

import { type ApiErrorCode, SayiirError } from '../errors.ts';

/** `create` found an instance with that id. Nothing was written. */
export class InstanceExistsError extends SayiirError {
  override readonly name = 'InstanceExistsError';
  override readonly httpStatus = 409;
  override readonly code: ApiErrorCode = 'instance_exists';
  constructor(readonly instanceId: string) {
    super(`instance '${instanceId}' already exists`);
  }
}

/** No instance with that id. */
export class InstanceNotFoundError extends SayiirError {
  override readonly name = 'InstanceNotFoundError';
  override readonly httpStatus = 404;
  override readonly code: ApiErrorCode = 'instance_not_found';
  constructor(readonly instanceId: string) {
    super(`instance '${instanceId}' not found`);
  }
}

/**
 * `append` lost a race: another writer committed a journal entry at that
 * `seq` first. Nothing was written; read the journal after the state the
 * caller had, re-apply the event, and try again.
 */
export class JournalConflictError extends SayiirError {
  override readonly name = 'JournalConflictError';
  // applyEvent retries conflicts many times before giving up: report a conflict, the client may retry.
  override readonly httpStatus = 409;
  override readonly code: ApiErrorCode = 'conflict';
  constructor(
    readonly instanceId: string,
    readonly seq: number,
  ) {
    super(`instance '${instanceId}' already has journal entry ${seq}`);
  }
}

/** A value does not fit the store (too large for an item). Nothing was written. */
export class PayloadTooLargeError extends SayiirError {
  override readonly name = 'PayloadTooLargeError';
  override readonly httpStatus = 413;
  override readonly code: ApiErrorCode = 'payload_too_large';
  constructor(
    readonly what: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`${what} is ${bytes} bytes, over the limit of ${limit} bytes`);
  }
}

/** Another worker holds a live claim on the task. Nothing was written. */
export class ClaimHeldError extends SayiirError {
  override readonly name = 'ClaimHeldError';
  constructor(
    readonly instanceId: string,
    readonly taskKey: string,
  ) {
    super(`task '${taskKey}' of '${instanceId}' is claimed by another worker`);
  }
}

/**
 * The caller's claim was taken over (its fence is no longer current) or
 * released. The caller must stop writing for that task.
 */
export class ClaimLostError extends SayiirError {
  override readonly name = 'ClaimLostError';
  constructor(
    readonly instanceId: string,
    readonly taskKey: string,
    readonly fence: number,
  ) {
    super(`claim on task '${taskKey}' of '${instanceId}' with fence ${fence} was lost`);
  }
}

/** The secret does not exist or cannot be read. */
export class SecretNotFoundError extends SayiirError {
  override readonly name = 'SecretNotFoundError';
  constructor(readonly secretName: string) {
    super(`secret '${secretName}' not found`);
  }
}

/**
 * A paging cursor that the store did not hand out for this query: malformed,
 * or made for another listing or another instance's history. Nothing was read.
 */
export class InvalidCursorError extends SayiirError {
  override readonly name = 'InvalidCursorError';
  override readonly httpStatus = 400;
  override readonly code: ApiErrorCode = 'invalid_request';
  constructor(
    /** The parameter that carried the cursor. */
    readonly parameter: string,
    readonly reason: string,
  ) {
    super(`${parameter}: ${reason}`);
  }
}

/** No object is stored under that key (never put, or deleted). */
export class ObjectNotFoundError extends SayiirError {
  override readonly name = 'ObjectNotFoundError';
  constructor(readonly key: string) {
    super(`object '${key}' not found`);
  }
}

/** The key breaks the object store's key rule (see `assertObjectKey`). Nothing was read or written. */
export class InvalidObjectKeyError extends SayiirError {
  override readonly name = 'InvalidObjectKeyError';
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`invalid object key ${JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key)}: ${reason}`);
  }
}
