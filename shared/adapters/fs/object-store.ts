import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ObjectNotFoundError } from '../../ports/errors.ts';
import { assertObjectKey, assertObjectKeySegment, type ObjectStore } from '../../ports/object-store.ts';

/** Options of {@link FolderObjectStore}. */
export interface FolderObjectStoreOptions {
  /** The folder that holds the objects (created on first write), e.g. `.sayiir/payloads`. */
  readonly directory: string;
}

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** Whether a file system error is "no such file or directory". */
const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';

/** Whether a file system error is "directory not empty" (`EEXIST` on some systems, as POSIX allows). */
const isNotEmpty = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOTEMPTY' || code === 'EEXIST';
};

/**
 * Objects as files in a folder, for the embedded local default.
 *
 * Layout: `<directory>/objects/<sha256(first segment)>/<sha256(key)>`, and
 * `<directory>/tmp/` for writes in progress. File names are hashes, never
 * key text, so the path cannot leave the folder whatever the key (`..`, an
 * absolute path, a drive letter) and keys that a file system would confuse
 * stay apart: `A` and `a` on a case-insensitive one (macOS, Windows), `:`
 * (not valid in a Windows file name), `a/b` next to `a/b/c` (a file cannot
 * also be a directory), segments over 255 bytes. Objects of one instance
 * (same first segment) share a directory. Keys are still checked by
 * `assertObjectKey`, so every adapter refuses the same keys.
 *
 * Durability: `put` writes a temp file in `tmp/`, fsyncs it, renames it
 * over the target (atomic on one file system: a reader sees the old file or
 * the new one) and fsyncs the target's directory, so a resolved `put`
 * survives a power loss (directory fsync is skipped on Windows, which cannot
 * open a directory for it). A crash mid-`put` leaves at most a temp file,
 * which nothing reads. `delete` and `deleteFolder` do not fsync: a delete
 * lost to a crash leaves an object nobody references.
 *
 * @example
 * ```ts
 * const objects = new FolderObjectStore({ directory: '.sayiir/payloads' });
 * await objects.put('i-1/out:a', '{"ok":true}');
 * ```
 */
export class FolderObjectStore implements ObjectStore {
  private readonly root: string;
  private readonly objectsDir: string;
  private readonly tmpDir: string;
  private ready: Promise<void> | undefined;

  constructor(options: FolderObjectStoreOptions) {
    this.root = path.resolve(options.directory);
    this.objectsDir = path.join(this.root, 'objects');
    this.tmpDir = path.join(this.root, 'tmp');
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const target = this.pathOf(key);
    await this.ensureFolders();
    const dir = path.dirname(target);
    const temp = path.join(this.tmpDir, randomUUID());
    try {
      const file = await open(temp, 'wx');
      try {
        await file.writeFile(body);
        await file.sync();
      } finally {
        await file.close();
      }
      if (await mkdir(dir, { recursive: true })) await fsyncDirectory(this.objectsDir);
      await rename(temp, target);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    await fsyncDirectory(dir);
  }

  async get(key: string): Promise<Uint8Array> {
    const file = this.pathOf(key);
    try {
      // A fresh buffer per read (a Buffer is a Uint8Array): the caller's to keep.
      return await readFile(file);
    } catch (err) {
      if (isMissing(err)) throw new ObjectNotFoundError(key);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }

  /**
   * Removes the files of the folder's keys from the directory of its first
   * segment, then the directory. The object keyed `<segment>` alone (no `/`)
   * shares that directory but is not in the folder: its file is kept, and so
   * is the directory. A `put` under the folder racing with this may fail
   * (its directory removed between its `mkdir` and its `rename`) or survive
   * it; the reaper purges only runs no one writes to any more.
   *
   * No fsync: a delete lost to a crash leaves files nobody references, and
   * the reaper retries the purge until the instance's snapshot is gone.
   */
  async deleteFolder(segment: string): Promise<number> {
    assertObjectKeySegment(segment);
    const own = sha256Hex(segment);
    const dir = path.join(this.objectsDir, own);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
    let deleted = 0;
    for (const name of names) {
      if (name === own) continue;
      try {
        await unlink(path.join(dir, name));
        deleted++;
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    try {
      await rmdir(dir);
    } catch (err) {
      // Not empty: the object `<segment>` is there, or a racing `put` wrote one. Gone: a racing purge removed it.
      if (!isMissing(err) && !isNotEmpty(err)) throw err;
    }
    return deleted;
  }

  /**
   * The file of a key (see the layout above).
   *
   * @throws {InvalidObjectKeyError} the key breaks the key rule.
   */
  pathOf(key: string): string {
    assertObjectKey(key);
    const first = key.split('/', 1)[0] as string;
    const file = path.join(this.objectsDir, sha256Hex(first), sha256Hex(key));
    // Cannot fail (hex names only); kept so that a future layout change cannot escape the folder silently.
    if (path.relative(this.objectsDir, file).startsWith('..')) throw new Error(`object path escapes ${this.root}`);
    return file;
  }

  /** Creates `objects/` and `tmp/` once, and makes every directory entry this created durable. */
  private ensureFolders(): Promise<void> {
    this.ready ??= (async () => {
      const created = await mkdir(this.objectsDir, { recursive: true });
      await mkdir(this.tmpDir, { recursive: true });
      // The root holds new entries; so does each parent up to the highest directory created.
      const top = created ? path.dirname(created) : this.root;
      for (let dir = this.root; ; dir = path.dirname(dir)) {
        await fsyncDirectory(dir);
        if (dir === top || dir === path.dirname(dir)) break;
      }
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }
}

/** Makes a directory's entries (a rename, a new file) durable. */
async function fsyncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
