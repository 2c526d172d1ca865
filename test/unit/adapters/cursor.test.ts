import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, historyScope, listScope } from '../../../shared/adapters/cursor.ts';
import { InvalidCursorError } from '../../../shared/ports/errors.ts';

describe('cursor codec', () => {
  it('decodes what it encoded, for the same scope and shape', () => {
    const scope = listScope({ workflow: 'orders', status: 'RUNNING' });
    const cursor = encodeCursor(scope, { pk: 'I#a', offset: 7 });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(scope, cursor, { pk: 'string', offset: 'integer' })).toEqual({ pk: 'I#a', offset: 7 });
  });

  it('refuses a cursor of another scope, naming the cursor parameter', () => {
    const cursor = encodeCursor(historyScope('a'), { offset: 1 });
    const decode = () => decodeCursor(historyScope('b'), cursor, { offset: 'integer' });
    expect(decode).toThrow(InvalidCursorError);
    expect(decode).toThrow('cursor: does not belong to this listing');
  });

  it('refuses a position with a missing, extra or mistyped field', () => {
    const scope = historyScope('a');
    const positions: Record<string, string | number>[] = [{}, { offset: 1, x: 'y' }, { offset: 'one' }, { other: 1 }];
    for (const position of positions) {
      const cursor = encodeCursor(scope, position);
      expect(() => decodeCursor(scope, cursor, { offset: 'integer' }), JSON.stringify(position)).toThrow(
        'cursor: is not a cursor returned by a previous page',
      );
    }
  });

  it('refuses a cursor longer than any store produces', () => {
    const scope = historyScope('a');
    const cursor = encodeCursor(scope, { pk: 'x'.repeat(10_000) });
    expect(() => decodeCursor(scope, cursor, { pk: 'string' })).toThrow(InvalidCursorError);
  });
});
