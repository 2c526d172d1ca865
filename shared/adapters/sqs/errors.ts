/** Errors of the SQS adapter. */

import type { Dispatch } from '../../engine/snapshot.ts';
import { SayiirError } from '../../errors.ts';

/** A dispatch SQS did not accept, and why. */
export interface FailedDispatch {
  readonly dispatch: Dispatch;
  /** SQS error code (`InvalidParameterValue`, `ServiceUnavailable`, ...) or the thrown error's name. */
  readonly code: string;
  readonly message: string;
  /** True when the request itself was wrong: resending the same entry fails again. */
  readonly senderFault: boolean;
}

/**
 * Some dispatches were not accepted by SQS after retries. The others were:
 * the caller may resend all of them, since the queue deduplicates by
 * `instance:key:attempt` for five minutes; if it gives up, the reaper
 * re-dispatches the work later (messages are hints, DynamoDB is the truth).
 */
export class QueueSendError extends SayiirError {
  override readonly name = 'QueueSendError';
  constructor(
    readonly failed: readonly FailedDispatch[],
    options?: { cause?: unknown },
  ) {
    const shown = failed
      .slice(0, 5)
      .map((f) => `${f.dispatch.instanceId}/${f.dispatch.key}#${f.dispatch.attempt} (${f.code})`)
      .join(', ');
    const more = failed.length > 5 ? ` and ${failed.length - 5} more` : '';
    super(`SQS did not accept ${failed.length} dispatch(es): ${shown}${more}`, options);
  }

  /** `instanceId:key` of every dispatch that was not accepted. */
  get keys(): string[] {
    return this.failed.map((f) => `${f.dispatch.instanceId}:${f.dispatch.key}`);
  }
}

/**
 * A queue message is not a valid dispatch (not JSON, or a field missing or of
 * the wrong type). Retrying cannot fix it: report it and let the message go
 * to the dead-letter queue.
 */
export class DispatchParseError extends SayiirError {
  override readonly name = 'DispatchParseError';
  /** The start of the offending body, for logs. */
  readonly excerpt: string;
  constructor(
    readonly reason: string,
    body: string,
  ) {
    const excerpt = body.length > 200 ? `${body.slice(0, 200)}…` : body;
    super(`malformed dispatch message: ${reason}; body: ${excerpt}`);
    this.excerpt = excerpt;
  }
}

/** A queue the adapter needs does not exist (not deployed, or a wrong prefix). */
export class QueueNotFoundError extends SayiirError {
  override readonly name = 'QueueNotFoundError';
  constructor(
    readonly queueName: string,
    options?: { cause?: unknown },
  ) {
    super(`SQS queue '${queueName}' does not exist`, options);
  }
}
