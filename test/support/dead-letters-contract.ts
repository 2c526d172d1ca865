import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Dispatch } from '../../shared/engine/snapshot.ts';
import type { DeadLetterQueue } from '../../shared/ports/dead-letters.ts';

const dispatch = (over: Partial<Dispatch> = {}): Dispatch => ({
  instanceId: 'inst-9',
  workflow: 'order',
  key: 'charge',
  qid: 'charge',
  input: { all: [{ v: 'out:a' }, { c: 3 }] },
  attempt: 5,
  gen: 1,
  priority: 'high',
  pool: 'default',
  ...over,
});

/**
 * The contract of the dead-letter queue port (`shared/ports/dead-letters.ts`)
 * for one adapter: records read back whole, one record per attempt, holds,
 * release and delete. `open` gives a fresh, empty queue per test.
 *
 * @example
 * ```ts
 * describeDeadLettersContract('MemoryDeadLetters', async () => ({ deadLetters: new MemoryDeadLetters(), close: async () => {} }));
 * ```
 */
export function describeDeadLettersContract(
  name: string,
  open: () => Promise<{ readonly deadLetters: DeadLetterQueue; readonly close: () => Promise<void> }>,
): void {
  describe(`${name} dead-letter queue contract`, () => {
    let deadLetters: DeadLetterQueue;
    let close: () => Promise<void>;
    beforeEach(async () => {
      ({ deadLetters, close } = await open());
    });
    afterEach(async () => {
      await close();
    });

    it('sends a record to the pool DLQ and reads it back with its reason and attempts', async () => {
      const record = {
        dispatch: dispatch(),
        reason: 'retries exhausted',
        attempts: 5,
        failedAt: 1_700_000_000_000,
        error: { name: 'PaymentDeclined', message: 'card declined' },
      };
      await deadLetters.send(record);
      const letters = await deadLetters.list('default');
      expect(letters).toHaveLength(1);
      const [letter] = letters;
      expect(letter?.origin).toBe('engine');
      expect(letter?.origin === 'engine' && letter.record).toEqual(record);
      expect(letter?.receiveCount).toBe(1);
      expect(letter?.sentAt).toBeGreaterThan(0);
    });

    it('keeps one record when the same attempt is sent twice', async () => {
      const record = { dispatch: dispatch(), reason: 'retries exhausted', attempts: 5 };
      await deadLetters.send(record);
      await deadLetters.send(record);
      await deadLetters.send({ ...record, dispatch: dispatch({ key: 'other' }) });
      const letters = await deadLetters.list('default');
      expect(letters.map((l) => (l.origin === 'malformed' ? 'malformed' : l.record.dispatch.key)).sort()).toEqual([
        'charge',
        'other',
      ]);
    });

    it('hides listed records until released, and deletes them for good', async () => {
      await deadLetters.send({ dispatch: dispatch(), reason: 'x', attempts: 1 });
      const listed = await deadLetters.list('default', { holdSeconds: 30 });
      expect(listed).toHaveLength(1);
      expect(await deadLetters.list('default')).toHaveLength(0);

      await deadLetters.release('default', listed);
      const again = await deadLetters.list('default');
      expect(again).toHaveLength(1);
      expect(again[0]?.receiveCount).toBe(2);

      await deadLetters.delete('default', again);
      await deadLetters.release('default', again);
      expect(await deadLetters.list('default')).toHaveLength(0);
    });
  });
}
