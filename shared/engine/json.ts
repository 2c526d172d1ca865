/**
 * Values as the engine stores them: JSON text, with `undefined` (and what
 * JSON cannot express at the top: a function, a symbol) as the text
 * `undefined`. Everything JSON drops or converts inside a value (a function
 * property, a `Date`, `NaN`) is dropped or converted the same way here.
 */
import { ensureError, PayloadSerializationError } from './errors.ts';

/**
 * JSON text of a value.
 *
 * @param subject what the value is, for the error (`output of task 'charge'`).
 * @throws {PayloadSerializationError} JSON cannot express the value (a BigInt, a cycle…).
 * @example
 * ```ts
 * toJson({ a: 1 }); // '{"a":1}'
 * toJson(undefined); // 'undefined'
 * ```
 */
export function toJson(value: unknown, subject = 'value'): string {
  try {
    return JSON.stringify(value) ?? 'undefined';
  } catch (err) {
    throw new PayloadSerializationError(subject, describeFailure(value, err), { cause: err });
  }
}

/**
 * The inverse of {@link toJson}.
 *
 * @throws {SyntaxError} the text is not JSON (nor `undefined`).
 * @example
 * ```ts
 * fromJson('{"a":1}'); // { a: 1 }
 * fromJson('undefined'); // undefined
 * ```
 */
export function fromJson(text: string): unknown {
  return text === 'undefined' ? undefined : JSON.parse(text);
}

/** The cause of a failed `JSON.stringify`, located when it is a BigInt or a cycle. */
function describeFailure(value: unknown, err: unknown): string {
  let found: string | undefined;
  try {
    found = findUnserializable(value, '$', new Set());
  } catch {
    // Too deep to walk as well: the engine's own message says so.
  }
  return found ?? ensureError(err).message;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Walks a value the way `JSON.stringify` does (own enumerable keys; a cycle
 * is an object among its own ancestors, a shared one is fine) to the first
 * BigInt or cycle. An object with `toJSON` is not entered: calling it again
 * could have effects.
 */
function findUnserializable(value: unknown, at: string, ancestors: Set<object>): string | undefined {
  if (typeof value === 'bigint') return `a BigInt at ${at}`;
  if (typeof value !== 'object' || value === null) return undefined;
  if (ancestors.has(value)) return `a circular reference at ${at}`;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const found = findUnserializable(value[i], `${at}[${i}]`, ancestors);
        if (found) return found;
      }
      return undefined;
    }
    for (const [key, child] of Object.entries(value)) {
      const step = IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
      const found = findUnserializable(child, `${at}${step}`, ancestors);
      if (found) return found;
    }
    return undefined;
  } finally {
    ancestors.delete(value);
  }
}
