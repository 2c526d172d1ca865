import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * The AWS emulators' servers (dynalite, fauxqs) on a thread of their own.
 *
 * Over the wire, a step spends about as much CPU in the emulators as in the
 * AWS SDK and the engine that call them. In one thread they take turns on
 * one core; on a thread of their own they run beside the engine, as
 * DynamoDB and SQS run beside a Lambda. Only the servers move: clients,
 * tables, queues and buckets are made by the caller, over the wire, exactly
 * as for servers started in-process (`startDynalite`, `startFauxqs`).
 *
 * The thread's code is plain JavaScript evaluated from a string, so it needs
 * no TypeScript loader and no file beside the compiled module; it loads the
 * two packages from where this module resolves them. It binds 127.0.0.1
 * only, and dies with the process.
 */

/** The endpoints of the servers a thread started. */
export interface EmulatorThread {
  /** dynalite's `http://127.0.0.1:<port>` */
  readonly dynamo: string;
  /** fauxqs's (SQS and S3) `http://127.0.0.1:<port>` */
  readonly fauxqs: string;
  /** Closes both servers (dynalite's LevelDB included, releasing its lock) and ends the thread. */
  close(): Promise<void>;
}

/** Options of {@link startEmulatorThread}. */
export interface EmulatorThreadOptions {
  /** dynalite's LevelDB folder. @default in memory */
  readonly dynamoPath?: string;
  /** The host fauxqs names in its queue URLs (see `UNRESOLVABLE_QUEUE_HOST`). */
  readonly queueHost: string;
}

// Runs on the thread: starts both servers, posts their ports, closes them when told.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createRequire } = require('node:module');
const req = createRequire(workerData.base);
const listen = (server) => new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve(server.address().port));
});
(async () => {
  const dynalite = req('dynalite')({
    ...(workerData.dynamoPath !== undefined ? { path: workerData.dynamoPath } : {}),
    createTableMs: 0, deleteTableMs: 0, updateTableMs: 0,
  });
  const dynamoPort = await listen(dynalite);
  const { buildApp } = await import(workerData.fauxqs);
  const app = buildApp({ logger: false, host: workerData.queueHost });
  const fauxqs = await app.listen({ port: 0, host: '127.0.0.1' });
  parentPort.on('message', async (m) => {
    if (m !== 'close') return;
    await app.close().catch(() => undefined);
    await new Promise((resolve) => { dynalite.close(() => resolve()); dynalite.closeAllConnections(); });
    parentPort.postMessage({ closed: true });
  });
  parentPort.postMessage({ dynamo: 'http://127.0.0.1:' + dynamoPort, fauxqs });
})().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));
`;

/**
 * The file URL of an ESM-only package's main entry, as seen from `base`
 * (`require.resolve` refuses a package that exports no `require` entry).
 */
function esmEntry(name: string, base: string): string {
  const dir = createRequire(base)
    .resolve.paths(name)
    ?.map((p) => join(p, name))
    .find((d) => existsSync(join(d, 'package.json')));
  if (!dir) throw new Error(`package '${name}' is not installed`);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const entry = pkg.exports?.['.']?.import?.default ?? pkg.exports?.['.']?.default ?? pkg.main;
  if (typeof entry !== 'string') throw new Error(`package '${name}' names no ESM entry`);
  return pathToFileURL(join(dir, entry)).href;
}

/** Starts dynalite and fauxqs on a thread of their own; resolves once both listen. */
export async function startEmulatorThread(options: EmulatorThreadOptions): Promise<EmulatorThread> {
  const base = import.meta.url;
  const fauxqs = esmEntry('fauxqs', base);
  const worker = new Worker(THREAD_SOURCE, {
    eval: true,
    workerData: { base, fauxqs, queueHost: options.queueHost, dynamoPath: options.dynamoPath },
  });
  const started = await new Promise<{ dynamo: string; fauxqs: string }>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    worker.once('error', onError);
    worker.once('message', (m: { dynamo: string; fauxqs: string } | { error: string }) => {
      worker.off('error', onError);
      if ('error' in m) reject(new Error(`the emulator thread did not start: ${m.error}`));
      else resolve(m);
    });
  }).catch(async (err) => {
    await worker.terminate();
    throw err;
  });
  // The thread never keeps the process alive on its own.
  worker.unref();
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= new Promise<void>((resolve) => {
      const done = () => void worker.terminate().then(() => resolve());
      worker.once('message', done);
      worker.once('error', done);
      worker.postMessage('close');
    }));
  return { ...started, close };
}
