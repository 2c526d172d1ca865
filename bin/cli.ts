import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/** How long `--wait` follows a run when `--timeout` is not given, in seconds. */
const DEFAULT_TIMEOUT_SECONDS = 300;
/** Longest `?wait=` the API accepts, in seconds. */
const MAX_WAIT_SECONDS = 25;
/** The API answers a paused run at once: the pause between two looks at one. */
const PAUSED_POLL_MS = 1000;
const COMMANDS: ReadonlySet<string> = new Set([
  'start',
  'status',
  'signal',
  'cancel',
  'pause',
  'resume',
  'list',
  'workflows',
]);
const FINAL_STATUSES: ReadonlySet<string> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

const EXIT_OK = 0;
const EXIT_REFUSED = 1;
const EXIT_USAGE = 2;
const EXIT_TIMEOUT = 3;

/**
 * `sayiir` — a small client of the HTTP API for the local stack (or any
 * deployment: set SAYIIR_URL and SAYIIR_API_KEY).
 *
 *   sayiir start <workflow> '<json input>' [--id <instanceId>] [--wait [--timeout <seconds>]]
 *   sayiir status <instanceId> [--wait [--timeout <seconds>]]
 *   sayiir signal <instanceId> <signal> '<json payload>'
 *   sayiir cancel|pause|resume <instanceId>
 *   sayiir list <workflow> [status]
 *   sayiir workflows
 *
 * @example
 * ```sh
 * sayiir start hello '{"name":"Ada"}' --wait --timeout 60
 * ```
 */
const USAGE = `usage:
  sayiir start <workflow> '<json input>' [--id <instanceId>] [--wait [--timeout <seconds>]]
  sayiir status <instanceId> [--wait [--timeout <seconds>]]
  sayiir signal <instanceId> <signal> ['<json payload>']
  sayiir cancel|pause|resume <instanceId>
  sayiir list <workflow> [status]
  sayiir workflows
  (options first; a JSON input or payload that starts with '-' goes last, after '--')
--wait       follow the run until it finishes or waits for a signal; progress goes to stderr,
             the final view to stdout as JSON
--timeout    with --wait: give up after this many seconds (default ${DEFAULT_TIMEOUT_SECONDS})
exit codes:
  0  done; with --wait: the run COMPLETED, or it waits for a signal (named on stderr)
  1  the API answered with an error; with --wait: the run FAILED or was CANCELLED
  2  bad usage, no API key, or the API cannot be reached
  3  --wait timed out (the run goes on)
environment: SAYIIR_URL (default http://127.0.0.1:8787), SAYIIR_API_KEY (default: the local stack's key in .sayiir/)`;

/** A failure the CLI explains in one line and exits with `exitCode`. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
  ) {
    super(message);
  }
}

interface Reply {
  readonly status: number;
  readonly json: unknown;
}

/** The parts of an instance view the CLI reads. */
interface InstanceView {
  readonly instanceId: string;
  readonly status: string;
  readonly stepsDone?: number;
  readonly tasks?: readonly { readonly key: string; readonly attempt: number; readonly state: string }[];
  readonly waits?: readonly { readonly key: string; readonly kind: string; readonly signal?: string }[];
  readonly waitingFor?: readonly string[];
}

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

async function call(method: string, path: string, body?: unknown): Promise<Reply> {
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
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // A gateway error page, say: show it as it came.
    json = text;
  }
  return { status: res.status, json };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `--timeout`: a number of seconds, 0 or more. */
function timeoutSeconds(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_TIMEOUT_SECONDS;
  const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n)) throw new CliError(`--timeout: must be a number of seconds, not '${raw}'\n${USAGE}`);
  return n;
}

/** One line saying where a run is: status, steps done, tasks and waits. */
function progressLine(view: InstanceView): string {
  const steps = view.stepsDone ?? 0;
  const parts = [`${view.instanceId}: ${view.status}, ${steps} step${steps === 1 ? '' : 's'} done`];
  const tasks = (view.tasks ?? []).map((t) => `${t.key} (${t.state}${t.attempt > 1 ? `, attempt ${t.attempt}` : ''})`);
  if (tasks.length > 0) parts.push(`tasks: ${tasks.join(', ')}`);
  const waits = (view.waits ?? []).map((w) => `${w.key} (${w.kind === 'signal' ? `signal '${w.signal}'` : w.kind})`);
  if (waits.length > 0) parts.push(`waits: ${waits.join(', ')}`);
  return parts.join('; ');
}

/**
 * Follows a run with `?wait=` long polls until it is final or waits for a
 * signal, printing a progress line to stderr whenever it changes.
 *
 * @throws {CliError} exit code 3 when `timeoutS` runs out first.
 */
async function follow(instanceId: string, timeoutS: number): Promise<Reply> {
  const path = `/instances/${encodeURIComponent(instanceId)}`;
  const deadline = Date.now() + timeoutS * 1000;
  let shown = '';
  for (;;) {
    const leftMs = Math.max(0, deadline - Date.now());
    // Tenths of a second: the last poll ends close to the deadline.
    const wait = Math.min(MAX_WAIT_SECONDS, Math.ceil(leftMs / 100) / 10);
    const reply = await call('GET', `${path}?wait=${wait}`);
    if (reply.status >= 300) return reply;
    const view = reply.json as InstanceView;
    const line = progressLine(view);
    if (line !== shown) console.error((shown = line));
    if (FINAL_STATUSES.has(view.status) || view.waitingFor !== undefined) return reply;
    if (Date.now() >= deadline) {
      throw new CliError(
        `timed out after ${timeoutS} s waiting for instance '${instanceId}' (it is ${view.status}; ` +
          `follow it with: sayiir status ${instanceId} --wait)`,
        EXIT_TIMEOUT,
      );
    }
    if (view.status !== 'RUNNING') await sleep(Math.min(PAUSED_POLL_MS, deadline - Date.now()));
  }
}

/** The exit code of a followed run, after saying on stderr what it waits for, if anything. */
function outcome(reply: Reply): number {
  if (reply.status >= 400) return EXIT_REFUSED;
  const view = reply.json as InstanceView;
  if (view.waitingFor !== undefined) {
    const names = view.waitingFor.map((n) => `'${n}'`).join(', ');
    console.error(`instance '${view.instanceId}' waits for signal${view.waitingFor.length === 1 ? '' : 's'} ${names}`);
    return EXIT_OK;
  }
  return view.status === 'COMPLETED' ? EXIT_OK : EXIT_REFUSED;
}

function parse(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        id: { type: 'string' },
        wait: { type: 'boolean' },
        timeout: { type: 'string' },
      },
    });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n${USAGE}`);
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, ...args] = positionals;
  if (command === undefined || !COMMANDS.has(command)) throw new CliError(USAGE);
  if (values.id !== undefined && command !== 'start') throw new CliError(`--id is for start only\n${USAGE}`);
  if (values.wait && command !== 'start' && command !== 'status') {
    throw new CliError(`--wait is for start and status only\n${USAGE}`);
  }
  if (values.timeout !== undefined && !values.wait) throw new CliError(`--timeout needs --wait\n${USAGE}`);
  const timeout = timeoutSeconds(values.timeout);

  let out: Reply;
  switch (command) {
    case 'start': {
      const [workflow, input] = args;
      if (!workflow) throw new CliError(USAGE);
      out = await call('POST', `/workflows/${encodeURIComponent(workflow)}/instances`, {
        input: parseJson(input, 'input'),
        ...(values.id === undefined ? {} : { instanceId: values.id }),
      });
      if (values.wait && out.status < 300) {
        out = await follow((out.json as { instanceId: string }).instanceId, timeout);
        console.log(JSON.stringify(out.json, null, 2));
        return outcome(out);
      }
      break;
    }
    case 'status':
      if (!args[0]) throw new CliError(USAGE);
      if (values.wait) {
        out = await follow(args[0], timeout);
        console.log(JSON.stringify(out.json, null, 2));
        return outcome(out);
      }
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
  return out.status >= 400 ? EXIT_REFUSED : EXIT_OK;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof CliError ? e.message : e);
  process.exitCode = e instanceof CliError ? e.exitCode : EXIT_USAGE;
}
