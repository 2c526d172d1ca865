import { describe, expect, it } from 'vitest';
import { retentionText } from '../../../shared/client/retention-text.ts';

describe('retentionText', () => {
  it('names a retention in its largest whole unit, and forever as such', () => {
    expect(retentionText(90 * 24 * 3_600_000)).toBe('90 days');
    expect(retentionText(24 * 3_600_000)).toBe('1 day');
    expect(retentionText(36 * 3_600_000)).toBe('36 hours');
    expect(retentionText(3_600_000)).toBe('1 hour');
    expect(retentionText(90 * 60_000)).toBe('90 minutes');
    expect(retentionText(60_000)).toBe('1 minute');
    expect(retentionText(1_500)).toBe('1 minute');
    expect(retentionText('forever')).toBe('forever');
  });
});
