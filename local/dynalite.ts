import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { claimsTable, createTableInput, instancesTable } from '../shared/resources/tables.ts';

/** The subset of dynalite's options we use (it ships no types). */
interface DynaliteOptions {
  readonly path?: string;
  readonly createTableMs?: number;
  readonly deleteTableMs?: number;
  readonly updateTableMs?: number;
}

const requireCjs = createRequire(import.meta.url);
const dynalite = requireCjs('dynalite') as (options: DynaliteOptions) => Server;

/** Options of {@link startDynalite}. */
export interface StartDynaliteOptions {
  /** LevelDB folder: data survives a close and a restart on the same path. @default in memory */
  readonly path?: string;
  /** Physical table names. @default `{ instances: 'sayiir-instances', claims: 'sayiir-claims' }` */
  readonly tables?: { readonly instances?: string; readonly claims?: string };
}

/** A running dynalite with both tables ready. */
export interface Dynalite {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** A client pointed at it (region `us-east-1`, dummy credentials). */
  readonly client: DynamoDBClient;
  readonly tables: { readonly instances: string; readonly claims: string };
  /** Stops the server, drops open connections, and closes LevelDB (releasing its lock). */
  close(): Promise<void>;
}

/**
 * Starts dynalite in-process on a random port of 127.0.0.1 and creates the
 * tables from `shared/resources/tables.ts` (or finds them, on a persistent
 * path that already has them), waiting until they are ACTIVE.
 *
 * @example
 * ```ts
 * const db = await startDynalite({ path: join(tmpdir(), 'sayiir-db') });
 * const store = new DynamoInstanceStore({ client: db.client, tableName: db.tables.instances });
 * await db.close();
 * ```
 */
export async function startDynalite(options: StartDynaliteOptions = {}): Promise<Dynalite> {
  const server = dynalite({
    ...(options.path !== undefined ? { path: options.path } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return connectDynalite(`http://127.0.0.1:${port}`, {
    ...options,
    // dynalite's close waits for the HTTP server, then closes LevelDB; the
    // server waits for keep-alive sockets, so those are dropped right away.
    closeServer: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err?: Error) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  });
}

/**
 * A client for a dynalite server already listening at `endpoint` (in this
 * thread, or on the emulators' thread: see `emulator-thread.ts`), with both
 * tables created (or found) and ACTIVE. `close` destroys the client, then
 * calls `closeServer`.
 */
export async function connectDynalite(
  endpoint: string,
  options: Pick<StartDynaliteOptions, 'tables'> & { readonly closeServer: () => Promise<void> },
): Promise<Dynalite> {
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const tables = {
    instances: options.tables?.instances ?? 'sayiir-instances',
    claims: options.tables?.claims ?? 'sayiir-claims',
  };
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      client.destroy();
      await options.closeServer();
    })());
  try {
    await createTable(client, createTableInput(instancesTable, tables.instances));
    await createTable(client, createTableInput(claimsTable, tables.claims));
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  return { endpoint, client, tables, close };
}

async function createTable(client: DynamoDBClient, input: ConstructorParameters<typeof CreateTableCommand>[0]) {
  try {
    await client.send(new CreateTableCommand(input));
  } catch (err) {
    // A persistent path already has it.
    if (!(err instanceof Error && err.name === 'ResourceInUseException')) throw err;
  }
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(10)) {
    const out = await client.send(new DescribeTableCommand({ TableName: input.TableName }));
    if (out.Table?.TableStatus === 'ACTIVE') return;
  }
  throw new Error(`table ${input.TableName} did not become ACTIVE`);
}
