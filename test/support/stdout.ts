import { afterEach, beforeEach, vi } from 'vitest';

/**
 * Captures what the test writes to stdout (Powertools and EMF write there
 * directly): registers the spy before each test and restores it after.
 *
 * @returns the chunks written by the current test, in order.
 * @example
 * ```ts
 * const stdout = captureStdout();
 * it('logs', () => { log.info('hi'); expect(stdout().join('')).toContain('"hi"'); });
 * ```
 */
export function captureStdout(): () => readonly string[] {
  let out: string[] = [];
  beforeEach(() => {
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());
  return () => out;
}
