import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SayiirError } from '../../errors.ts';

/** Another live process holds the data folder. Nothing was opened. */
export class DataDirLockedError extends SayiirError {
  override readonly name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `data folder '${dataDir}' is in use by process ${pid}${pid === process.pid ? ' (this process)' : ''}: ` +
        'stop it first, or start this one with another data folder',
    );
  }
}

/** A held lock on a data folder. */
export interface DataDirLock {
  /** The lock file (`<dataDir>/sayiir.lock`). */
  readonly path: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/** The lock file's name inside a data folder. */
export const LOCK_FILE = 'sayiir.lock';

/** Whether a process with that pid is alive (EPERM: alive, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Takes the data folder for this process: creates `<dataDir>/sayiir.lock`
 * holding the pid, exclusively. A lock file left by a process that is gone
 * (killed, crashed) is taken over; one held by a live process, this one
 * included, is refused: two processes on one folder would each run their own
 * queue and reaper over one database, and the second would see neither the
 * first's in-flight work nor its claims' owner.
 *
 * @throws {DataDirLockedError} naming the pid that holds the folder.
 * @example
 * ```ts
 * const lock = lockDataDir('.sayiir');
 * try { … } finally { lock.release(); }
 * ```
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err;
      const pid = readPid(path);
      if (pid !== undefined && (pid === process.pid || alive(pid))) throw new DataDirLockedError(dataDir, pid);
      // Stale: its process is gone (or died between creating the file and writing its pid).
      rmSync(path, { force: true });
    }
  }
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      if (readPid(path) === process.pid) rmSync(path, { force: true });
    },
  };
}
