import { SayiirError } from '../errors.ts';
/**
 * References to checkpointed values.
 *
 * The reducer never holds payloads: a step's input is a {@link Ref} to values
 * stored beside the snapshot (the run input, task outputs, signal payloads).
 * This keeps the snapshot small and a checkpoint O(1) however large the data,
 * and lets queue messages carry references instead of payloads.
 */

/** A path step into a stored value: a property name or an array index. */
export type PathStep = string | number;

export type Ref =
  /** A stored value, optionally a part of it. */
  | { readonly v: string; readonly at?: readonly PathStep[] }
  /** A tuple of values, in order (a join's input, a map's result). */
  | { readonly all: readonly Ref[] }
  /** A constant known to the definition. */
  | { readonly c: unknown }
  /**
   * A map's results, without listing them: `n` values whose ids are `each`
   * with its one `[]` filled with the item index, except the items in
   * `except` (an item whose body ended without a task of its own). Keeps a
   * map of any size a few bytes in the snapshot and in queue messages.
   */
  | { readonly each: string; readonly n: number; readonly except?: Readonly<Record<string, Ref>> };

/** The value id of item `i` of an `each` ref. */
export const eachId = (template: string, i: number): string => template.replace('[]', `[${i}]`);

/** Value id of a run's input; `nonce` is unique per creation attempt. */
export const inputId = (nonce: string): string => `input:${nonce}`;
/** Value id of a task's committed output. */
export const outputId = (taskKey: string): string => `out:${taskKey}`;
/** Value id of a signal payload; `deliveryId` is unique per delivery (chosen by the sender). */
export const signalId = (deliveryId: string): string => `sig:${deliveryId}`;

/** The ids of every stored value a ref reads. */
export function refValueIds(ref: Ref, into: Set<string> = new Set()): Set<string> {
  if ('v' in ref) into.add(ref.v);
  else if ('all' in ref) for (const r of ref.all) refValueIds(r, into);
  else if ('each' in ref) {
    for (let i = 0; i < ref.n; i++) {
      const special = ref.except?.[i];
      if (special) refValueIds(special, into);
      else into.add(eachId(ref.each, i));
    }
  }
  return into;
}

/** Thrown when a ref points at a value that is not stored. */
export class ValueMissingError extends SayiirError {
  override readonly name = 'ValueMissingError';
  constructor(readonly valueId: string) {
    super(`value '${valueId}' is not stored`);
  }
}

/** Builds the value a ref denotes from already-loaded values. */
export function materialize(ref: Ref, values: ReadonlyMap<string, unknown>): unknown {
  if ('c' in ref) return ref.c;
  if ('all' in ref) return ref.all.map((r) => materialize(r, values));
  if ('each' in ref) {
    return Array.from({ length: ref.n }, (_, i) => {
      const special = ref.except?.[i];
      return materialize(special ?? { v: eachId(ref.each, i) }, values);
    });
  }
  if (!values.has(ref.v)) throw new ValueMissingError(ref.v);
  let value = values.get(ref.v);
  for (const step of ref.at ?? []) {
    value = value == null ? undefined : (value as Record<PathStep, unknown>)[step];
  }
  return value;
}
