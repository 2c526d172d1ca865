/**
 * The root of Sayiir's errors. Every error Sayiir throws extends
 * {@link SayiirError}, so a caller can tell Sayiir's failures from anything
 * else with one `instanceof`, then tell the cases apart by subclass (named
 * `<Domain><Case>Error`) or by `name`.
 *
 * This module imports nothing: every layer (the pure engine, the Lambdas, the
 * client) can import it without pulling in anything else.
 */

/**
 * Machine-readable error codes of the HTTP API, one per distinct cause, so a
 * client can branch on `error.code` without parsing messages.
 */
export type ApiErrorCode =
  | 'malformed_json'
  | 'invalid_request'
  | 'invalid_input'
  | 'unauthorized'
  | 'route_not_found'
  | 'workflow_not_found'
  | 'instance_not_found'
  | 'signal_not_found'
  | 'method_not_allowed'
  | 'instance_exists'
  | 'instance_finished'
  | 'invalid_transition'
  | 'definition_mismatch'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'invalid_task_state'
  | 'task_completed'
  | 'task_not_found'
  | 'invalid_output'
  | 'dead_letter_not_found'
  | 'pool_not_found'
  | 'signal_buffer_full'
  | 'forbidden'
  | 'internal_error';

/**
 * The base of every Sayiir error. Not thrown itself: code throws one of its
 * subclasses, callers catch it.
 *
 * An error a client can cause says how the HTTP API answers it, as a
 * property of its class ({@link httpStatus} and {@link code}), so the API
 * maps errors without knowing their classes.
 *
 * @example
 * ```ts
 * class OrderMissingError extends SayiirError {
 *   override readonly name = 'OrderMissingError';
 *   override readonly httpStatus = 404;
 *   override readonly code: ApiErrorCode = 'instance_not_found';
 * }
 *
 * try {
 *   await runWorkflow(order, input);
 * } catch (e) {
 *   if (e instanceof SayiirError) console.error(`sayiir: ${e.name}: ${e.message}`);
 *   else throw e;
 * }
 * ```
 */
export abstract class SayiirError extends Error {
  override readonly name: string = 'SayiirError';

  /**
   * What the API answers when this error reaches it: a 4xx status, with the
   * error's {@link code} and message shown to the client.
   * @default undefined: not a client error; the API answers a generic 500
   * and hides the message.
   */
  declare readonly httpStatus?: number;

  /**
   * The API's error code for this error (`instance_not_found`, …), set
   * together with {@link httpStatus}. On an error the client raises from an
   * API answer, the code that answer carried.
   * @default undefined
   */
  declare readonly code?: string;
}
