/** Errors the ports raise. Adapters turn their platform's conditional failures into these. */

/** `create` found an instance with that id. Nothing was written. */
export class InstanceExistsError extends Error {
  override readonly name = 'InstanceExistsError';
  constructor(readonly instanceId: string) {
    super(`instance '${instanceId}' already exists`);
  }
}

/** No instance with that id. */
export class InstanceNotFoundError extends Error {
  override readonly name = 'InstanceNotFoundError';
  constructor(readonly instanceId: string) {
    super(`instance '${instanceId}' not found`);
  }
}

/**
 * `update` lost a race: the stored snapshot is not at the version the caller
 * read. Nothing was written; reload, re-apply the event, and try again.
 */
export class VersionConflictError extends Error {
  override readonly name = 'VersionConflictError';
  constructor(
    readonly instanceId: string,
    readonly expectedVersion: number,
  ) {
    super(`instance '${instanceId}' is no longer at version ${expectedVersion}`);
  }
}

/** A value does not fit the store (too large for an item). Nothing was written. */
export class PayloadTooLargeError extends Error {
  override readonly name = 'PayloadTooLargeError';
  constructor(
    readonly what: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`${what} is ${bytes} bytes, over the limit of ${limit} bytes`);
  }
}

/** Another worker holds a live claim on the task. Nothing was written. */
export class ClaimHeldError extends Error {
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
export class ClaimLostError extends Error {
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
export class SecretNotFoundError extends Error {
  override readonly name = 'SecretNotFoundError';
  constructor(readonly secretName: string) {
    super(`secret '${secretName}' not found`);
  }
}
