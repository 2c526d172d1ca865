import type { Dispatch } from '../../engine/snapshot.ts';
import type { TaskQueue } from '../../ports/task-queue.ts';

/** In-memory queue: keeps what was sent, for tests and single-process use. */
export class MemoryTaskQueue implements TaskQueue {
  readonly sent: Dispatch[] = [];
  private readonly listeners: ((d: Dispatch) => void)[] = [];

  async send(dispatches: readonly Dispatch[]): Promise<void> {
    for (const d of dispatches) {
      this.sent.push(d);
      for (const l of this.listeners) l(d);
    }
  }

  /** Nothing waits here: a sent dispatch is delivered (to listeners) at once. */
  async waiting(): Promise<number> {
    return 0;
  }

  /** Calls `listener` for every dispatch sent from now on. */
  onSend(listener: (d: Dispatch) => void): void {
    this.listeners.push(listener);
  }
}
