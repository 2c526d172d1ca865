/**
 * A run retention as people read it: `90 days`, `36 hours`, `90 minutes`,
 * or `forever` (the largest whole unit; seconds and below are rounded up to
 * a minute, the smallest retention a deployment takes).
 *
 * @example
 * ```ts
 * retentionText(7_776_000_000); // '90 days'
 * retentionText('forever');     // 'forever'
 * ```
 */
export function retentionText(retention: number | 'forever'): string {
  if (retention === 'forever') return 'forever';
  const minutes = Math.max(1, Math.ceil(retention / 60_000));
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (minutes % (24 * 60) === 0) return plural(minutes / (24 * 60), 'day');
  if (minutes % 60 === 0) return plural(minutes / 60, 'hour');
  return plural(minutes, 'minute');
}
