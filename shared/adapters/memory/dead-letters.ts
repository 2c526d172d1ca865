import type { DeadLetterQueue, DeadLetterRecord, ReceivedDeadLetter } from '../../ports/dead-letters.ts';

interface Held {
  readonly letter: ReceivedDeadLetter;
  until: number;
}

/** In-memory dead-letter queues, per pool, with the same hold semantics as SQS. */
export class MemoryDeadLetters implements DeadLetterQueue {
  private readonly pools = new Map<string, Held[]>();
  private seq = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async send(record: DeadLetterRecord): Promise<void> {
    const list = this.pools.get(record.dispatch.pool) ?? [];
    const same = list.some(
      (h) =>
        h.letter.origin !== 'malformed' &&
        h.letter.record.dispatch.instanceId === record.dispatch.instanceId &&
        h.letter.record.dispatch.key === record.dispatch.key &&
        h.letter.record.attempts === record.attempts,
    );
    if (same) return;
    const id = `m${++this.seq}`;
    list.push({
      letter: { messageId: id, receiptHandle: id, receiveCount: 0, sentAt: this.now(), origin: 'engine', record },
      until: 0,
    });
    this.pools.set(record.dispatch.pool, list);
  }

  async list(pool: string, options: { limit?: number; holdSeconds?: number } = {}): Promise<ReceivedDeadLetter[]> {
    const now = this.now();
    const out: ReceivedDeadLetter[] = [];
    for (const h of this.pools.get(pool) ?? []) {
      if (out.length >= (options.limit ?? 100)) break;
      if (h.until > now) continue;
      h.until = now + (options.holdSeconds ?? 30) * 1000;
      out.push({ ...h.letter, receiveCount: h.letter.receiveCount + 1 });
      (h as { letter: ReceivedDeadLetter }).letter = { ...h.letter, receiveCount: h.letter.receiveCount + 1 };
    }
    return out;
  }

  async delete(pool: string, letters: readonly ReceivedDeadLetter[]): Promise<void> {
    const ids = new Set(letters.map((l) => l.messageId));
    this.pools.set(
      pool,
      (this.pools.get(pool) ?? []).filter((h) => !ids.has(h.letter.messageId)),
    );
  }

  async release(pool: string, letters: readonly ReceivedDeadLetter[]): Promise<void> {
    const ids = new Set(letters.map((l) => l.messageId));
    for (const h of this.pools.get(pool) ?? []) if (ids.has(h.letter.messageId)) h.until = 0;
  }

  /** Records a dispatch the way a queue's redrive policy moves a message after too many receives (tests). */
  moved(dispatch: DeadLetterRecord['dispatch'], receiveCount: number): void {
    const list = this.pools.get(dispatch.pool) ?? [];
    const id = `m${++this.seq}`;
    const record = {
      dispatch,
      reason: 'moved by the queue after maxReceiveCount receives',
      attempts: dispatch.attempt,
    };
    list.push({
      letter: { messageId: id, receiptHandle: id, receiveCount, sentAt: this.now(), origin: 'redrive', record },
      until: 0,
    });
    this.pools.set(dispatch.pool, list);
  }

  /** Entries of a pool, held or not (tests). */
  size(pool: string): number {
    return this.pools.get(pool)?.length ?? 0;
  }
}
