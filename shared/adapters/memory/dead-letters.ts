import type { Dispatch } from '../../engine/snapshot.ts';
import type { DeadLetterQueue, ReceivedDeadLetter } from '../../ports/dead-letters.ts';

interface Held {
  letter: ReceivedDeadLetter;
  until: number;
}

/**
 * In-memory SQS dead-letter queues, per pool, with the hold semantics of
 * SQS: a received message is hidden until deleted or its hold ends.
 * {@link moved} and {@link malformed} put messages there as SQS would.
 */
export class MemoryDeadLetters implements DeadLetterQueue {
  private readonly pools = new Map<string, Held[]>();
  private seq = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async receive(
    pool: string,
    options: { readonly maxMessages?: number; readonly holdSeconds?: number } = {},
  ): Promise<ReceivedDeadLetter[]> {
    const now = this.now();
    const out: ReceivedDeadLetter[] = [];
    for (const h of this.pools.get(pool) ?? []) {
      if (out.length >= (options.maxMessages ?? 10)) break;
      if (h.until > now) continue;
      h.until = now + (options.holdSeconds ?? 30) * 1000;
      h.letter = {
        ...h.letter,
        receiptHandle: `${h.letter.messageId}:${++this.seq}`,
        receiveCount: h.letter.receiveCount + 1,
      };
      out.push(h.letter);
    }
    return out;
  }

  async delete(pool: string, messages: readonly ReceivedDeadLetter[]): Promise<void> {
    const handles = new Set(messages.map((l) => l.receiptHandle));
    this.pools.set(
      pool,
      (this.pools.get(pool) ?? []).filter((h) => !handles.has(h.letter.receiptHandle)),
    );
  }

  /** A dispatch moved here the way a queue's redrive policy moves a message after too many receives (tests). */
  moved(dispatch: Dispatch, receiveCount = 3): void {
    this.add(dispatch.pool, { kind: 'dispatch', dispatch }, receiveCount);
  }

  /** A message that is no dispatch (tests). */
  malformed(pool: string, body: string): void {
    this.add(pool, { kind: 'malformed', body, error: new Error('not a dispatch') }, 1);
  }

  /** Messages of a pool, held or not (tests). */
  size(pool: string): number {
    return this.pools.get(pool)?.length ?? 0;
  }

  private add(
    pool: string,
    content: { kind: 'dispatch'; dispatch: Dispatch } | { kind: 'malformed'; body: string; error: Error },
    receiveCount: number,
  ): void {
    const list = this.pools.get(pool) ?? [];
    const id = `m${++this.seq}`;
    list.push({ letter: { messageId: id, receiptHandle: id, receiveCount, ...content }, until: 0 });
    this.pools.set(pool, list);
  }
}
