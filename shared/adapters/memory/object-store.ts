import { ObjectNotFoundError } from '../../ports/errors.ts';
import { assertObjectKey, assertObjectKeySegment, type ObjectStore } from '../../ports/object-store.ts';

/**
 * Objects in a map, for unit tests. Stores and returns copies, so neither a
 * caller that reuses its buffer nor one that edits what `get` returned can
 * change what is stored.
 *
 * @example
 * ```ts
 * const objects = new MemoryObjectStore();
 * await objects.put('i-1/out:a', '{"ok":true}');
 * ```
 */
export class MemoryObjectStore implements ObjectStore {
  private readonly objects = new Map<string, Uint8Array>();

  async put(key: string, body: Uint8Array | string): Promise<void> {
    assertObjectKey(key);
    this.objects.set(key, typeof body === 'string' ? Buffer.from(body, 'utf8') : Uint8Array.from(body));
  }

  async get(key: string): Promise<Uint8Array> {
    assertObjectKey(key);
    const bytes = this.objects.get(key);
    if (!bytes) throw new ObjectNotFoundError(key);
    return Uint8Array.from(bytes);
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    this.objects.delete(key);
  }

  async deleteFolder(segment: string): Promise<number> {
    assertObjectKeySegment(segment);
    const prefix = `${segment}/`;
    let deleted = 0;
    for (const key of [...this.objects.keys()]) {
      if (key.startsWith(prefix) && this.objects.delete(key)) deleted++;
    }
    return deleted;
  }

  /** The stored keys, sorted, for tests. */
  keys(): string[] {
    return [...this.objects.keys()].sort();
  }
}
