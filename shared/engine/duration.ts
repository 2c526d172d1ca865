import { DurationFormatError } from './errors.ts';

/** A duration: milliseconds, or a string such as `'250ms'`, `'30s'`, `'5m'`, `'2h'`, `'1d'`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/**
 * Parses a {@link Duration} into whole milliseconds.
 *
 * @throws {DurationFormatError} for negative, non-finite or malformed values.
 * @example
 * ```ts
 * toMillis('1.5s'); // 1500
 * ```
 */
export function toMillis(value: Duration | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new DurationFormatError(value);
    return Math.round(value);
  }
  const match = typeof value === 'string' ? PATTERN.exec(value.trim()) : null;
  if (!match) throw new DurationFormatError(value);
  const amount = Number(match[1]);
  const unit = match[2] as keyof typeof UNIT_MS;
  return Math.round(amount * UNIT_MS[unit]);
}
