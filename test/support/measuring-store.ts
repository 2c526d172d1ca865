import { MemoryInstanceStore } from '../../shared/adapters/memory/instance-store.ts';

/**
 * A memory instance store that measures what it is given: the largest
 * compacted snapshot, the largest journal entry without its payload (events
 * and history lines only), and the number of entries.
 */
export class MeasuringStore extends MemoryInstanceStore {
  largestSnapshot = 0;
  largestEntry = 0;
  entries = 0;

  override async compact(snapshot: Parameters<MemoryInstanceStore['compact']>[0]): Promise<boolean> {
    this.largestSnapshot = Math.max(this.largestSnapshot, JSON.stringify(snapshot).length);
    return super.compact(snapshot);
  }

  override async append(...args: Parameters<MemoryInstanceStore['append']>): Promise<void> {
    const { value: _payload, ...control } = args[1];
    this.largestEntry = Math.max(this.largestEntry, JSON.stringify(control).length);
    this.entries++;
    return super.append(...args);
  }
}
