import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * `sayiir` — a small client of the HTTP API for the local stack (or any
 * deployment: set SAYIIR_URL and SAYIIR_API_KEY).
 *
 *   sayiir start <workflow> '<json input>' [--id <instanceId>] [--wait]
 *   sayiir status <instanceId>
 *   sayiir signal <instanceId> <signal> '<json payload>'
 *   sayiir cancel|pause|resume <instanceId>
 *   sayiir list <workflow> [status]
 *   sayiir workflows
 */
const USAGE = `usage:
  sayiir start <workflow> '<json input>' [--id <instanceId>] [--wait]
  sayiir status <instanceId>
  sayiir signal <instanceId> <signal> ['<json payload>']
  sayiir cancel|pause|resume <instanceId>
  sayiir list <workflow> [status]
  sayiir workflows
environment: SAYIIR_URL (default http://127.0.0.1:8787), SAYIIR_API_KEY (default: the local stack's key in .sayiir/)`;

class CliError extends Error {}

async function apiKey(): Promise<string> {
  if (process.env.SAYIIR_API_KEY) return process.env.SAYIIR_API_KEY;
  const dir = process.env.SAYIIR_DATA_DIR ?? '.sayiir';
  try {
    const values = JSON.parse(await readFile(join(dir, 'secrets.json'), 'utf8')) as Record<string, unknown>;
    const keys = values['sayiir/api-keys'];
    if (Array.isArray(keys) && typeof keys[0] === 'string') return keys[0];
  } catch {
    // fall through
  }
  throw new CliError(
    `no API key: set SAYIIR_API_KEY, or start the local stack (npm start) so ${dir}/secrets.json exists`,
  );
}

function parseJson(text: string | undefined, what: string): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${what} is not valid JSON: ${text}`);
  }
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const base = process.env.SAYIIR_URL ?? 'http://127.0.0.1:8787';
  let res: Response;
  try {
    res = await fetch(`${base}/v1${path}`, {
      method,
      headers: { 'x-api-key': await apiKey(), 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (e) {
    throw new CliError(`cannot reach ${base}: ${(e as Error).message} (is the local stack running? npm start)`);
  }
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const flags = new Map<string, string | true>();
  const args: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    if (a === '--wait') flags.set('wait', true);
    else if (a === '--id') flags.set('id', rest[++i] ?? '');
    else args.push(a);
  }
  let out: { status: number; json: unknown };
  switch (command) {
    case 'start': {
      const [workflow, input] = args;
      if (!workflow) throw new CliError(USAGE);
      const id = flags.get('id');
      out = await call('POST', `/workflows/${encodeURIComponent(workflow)}/instances`, {
        input: parseJson(input, 'input'),
        ...(typeof id === 'string' ? { instanceId: id } : {}),
      });
      if (flags.get('wait') && out.status < 300) {
        const instanceId = (out.json as { instanceId: string }).instanceId;
        for (;;) {
          out = await call('GET', `/instances/${encodeURIComponent(instanceId)}`);
          const status = (out.json as { status?: string }).status;
          if (status !== 'RUNNING' || out.status >= 300) break;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      break;
    }
    case 'status':
      if (!args[0]) throw new CliError(USAGE);
      out = await call('GET', `/instances/${encodeURIComponent(args[0])}`);
      break;
    case 'signal':
      if (!args[0] || !args[1]) throw new CliError(USAGE);
      out = await call(
        'POST',
        `/instances/${encodeURIComponent(args[0])}/signals/${encodeURIComponent(args[1])}`,
        parseJson(args[2], 'payload'),
      );
      break;
    case 'cancel':
    case 'pause':
    case 'resume':
      if (!args[0]) throw new CliError(USAGE);
      out = await call('POST', `/instances/${encodeURIComponent(args[0])}/${command}`);
      break;
    case 'list':
      if (!args[0]) throw new CliError(USAGE);
      out = await call(
        'GET',
        `/workflows/${encodeURIComponent(args[0])}/instances${args[1] ? `?status=${args[1]}` : ''}`,
      );
      break;
    case 'workflows':
      out = await call('GET', '/workflows');
      break;
    default:
      throw new CliError(USAGE);
  }
  console.log(JSON.stringify(out.json, null, 2));
  return out.status >= 400 ? 1 : 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof CliError ? e.message : e);
  process.exitCode = 2;
}
