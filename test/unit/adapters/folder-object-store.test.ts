import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderObjectStore } from '../../../shared/adapters/fs/object-store.ts';
import { InvalidObjectKeyError } from '../../../shared/ports/errors.ts';
import { INVALID_KEYS, VALID_KEYS } from '../../support/object-store-contract.ts';

/** What the folder adapter adds to the contract: where files go, and what a put leaves behind. */
describe('FolderObjectStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sayiir-folder-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('maps every key to a hashed file under <folder>/objects, never to key text', () => {
    const store = new FolderObjectStore({ directory: dir });
    const objects = path.join(dir, 'objects');
    for (const key of VALID_KEYS) {
      const file = store.pathOf(key);
      const relative = path.relative(objects, file);
      expect(relative.split(path.sep), key).toHaveLength(2);
      for (const part of relative.split(path.sep)) expect(part, key).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('refuses to map an invalid key to any path', () => {
    const store = new FolderObjectStore({ directory: dir });
    for (const [label, key] of INVALID_KEYS) expect(() => store.pathOf(key), label).toThrow(InvalidObjectKeyError);
  });

  it('puts the objects of one instance (first segment) in one directory', () => {
    const store = new FolderObjectStore({ directory: dir });
    const dirOf = (key: string) => path.dirname(store.pathOf(key));
    expect(dirOf('i-1/out:a')).toBe(dirOf('i-1/out:b/c'));
    expect(dirOf('i-1/out:a')).not.toBe(dirOf('i-2/out:a'));
    expect(store.pathOf('i-1/out:a')).not.toBe(store.pathOf('i-1/out:b'));
  });

  it('keeps objects across instances of the store on the same folder (a restart)', async () => {
    await new FolderObjectStore({ directory: dir }).put('i-1/out:a', 'durable');
    const reopened = new FolderObjectStore({ directory: dir });
    expect(Buffer.from(await reopened.get('i-1/out:a')).toString('utf8')).toBe('durable');
  });

  it('leaves no temp file behind after puts, overwrites included', async () => {
    const store = new FolderObjectStore({ directory: dir });
    await store.put('i-1/out:a', 'one');
    await store.put('i-1/out:a', 'two');
    await store.put('i-2/out:a', 'three');
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect(await readdir(path.join(dir, 'objects'))).toHaveLength(2);
  });

  it('cleans its temp file up when the final rename fails, and reports the failure', async () => {
    const store = new FolderObjectStore({ directory: dir });
    // A non-empty directory where the object's file should go: rename cannot replace it.
    const target = store.pathOf('i-1/out:blocked');
    await mkdir(target, { recursive: true });
    await writeFile(path.join(target, 'occupant'), 'x');
    await expect(store.put('i-1/out:blocked', 'value')).rejects.toMatchObject({
      code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST|EPERM)$/),
    });
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('creates the folder on the first put, nested folders included', async () => {
    const nested = path.join(dir, 'a', 'b', 'payloads');
    const store = new FolderObjectStore({ directory: nested });
    await store.put('i-1/out:a', 'x');
    expect((await readdir(nested)).sort()).toEqual(['objects', 'tmp']);
  });
});
