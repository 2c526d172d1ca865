import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dagText } from '../shared/client/dag-text.ts';
import {
  type InstanceSummaryView,
  type InstanceView,
  type LaneTimerView,
  RunTimeoutError,
  SayiirApiError,
  SayiirClient,
  SayiirConnectionError,
} from '../shared/client/index.ts';
import { retentionText } from '../shared/client/retention-text.ts';
import { SayiirError } from '../shared/errors.ts';

/** How long `--wait` follows a run when `--timeout` is not given, in seconds. */
const DEFAULT_TIMEOUT_SECONDS = 300;

/** Exit codes, as `--help` states them. */
const EXIT_OK = 0;
const EXIT_REFUSED = 1;
const EXIT_USAGE = 2;
const EXIT_TIMEOUT = 3;

const USAGE = `sayiir: a client of Sayiir's HTTP API (the local stack, or a deployment)

usage:
  sayiir start <workflow> ['<json input>'] [--id <instanceId>] [--wait [--timeout <s>]]
  sayiir status <instanceId> [--wait [--timeout <s>]]
  sayiir signal <instanceId> <signal> ['<json payload>'] [--key <idempotency key>]
  sayiir cancel <instanceId> [--reason <text>]
  sayiir pause|resume <instanceId>
  sayiir retry <instanceId> <taskKey>
  sayiir skip <instanceId> <taskKey> ['<json output>']
  sayiir history <instanceId> [--limit <n>] [--cursor <c>] [--after <version>] [--all]
  sayiir timers <instanceId> [--parent <map or fork key>] [--limit <n>] [--cursor <c>] [--all]
  sayiir list <workflow> [--status <STATUS>] [--limit <n>] [--cursor <c>] [--all]
  sayiir workflows
  sayiir describe <workflow>
  sayiir dlq list <pool> [--limit <n>]
  sayiir dlq redrive <pool> [--id <instanceId> --task <taskKey>]

options:
  --json       print the API's JSON answer instead of text (for scripts)
  --wait       follow the run until it finishes or waits for a signal; progress lines go to stderr
  --timeout    with --wait: give up after this many seconds (default ${DEFAULT_TIMEOUT_SECONDS})
  --all        follow every page (list, history, timers); otherwise one page and the next cursor
  --parent     timers: only those of one map or fork run in lanes
  --after      history: only what was committed after this version (an entry's or the run's)
  --help       this text
  (options first; a JSON value that starts with '-' goes last, after '--')

exit codes:
  0  done; with --wait: the run COMPLETED, or it waits for a signal (named on stderr)
  1  the API refused the request; with --wait: the run FAILED or was CANCELLED
  2  bad usage, no API key, or the API cannot be reached
  3  --wait timed out (the run goes on)

environment:
  SAYIIR_URL       the API (default http://127.0.0.1:8787)
  SAYIIR_API_KEY   the key (default: the local stack's, from .sayiir/secrets.json or SAYIIR_DATA_DIR)`;

/** A failure the CLI explains in one line and exits with `exitCode`. */
class CliError extends SayiirError {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
  ) {
    super(message);
  }
}

const OPTIONS = {
  id: { type: 'string' },
  task: { type: 'string' },
  key: { type: 'string' },
  reason: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  after: { type: 'string' },
  parent: { type: 'string' },
  timeout: { type: 'string' },
  wait: { type: 'boolean' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parse>['values'];

/** Which options each command takes (`json` and `help` go everywhere). */
const TAKES: Readonly<Record<string, readonly (keyof typeof OPTIONS)[]>> = {
  start: ['id', 'wait', 'timeout'],
  status: ['wait', 'timeout'],
  signal: ['key'],
  cancel: ['reason'],
  pause: [],
  resume: [],
  retry: [],
  skip: [],
  history: ['limit', 'cursor', 'after', 'all'],
  timers: ['parent', 'limit', 'cursor', 'all'],
  list: ['status', 'limit', 'cursor', 'all'],
  workflows: [],
  describe: [],
  'dlq list': ['limit'],
  'dlq redrive': ['id', 'task'],
};

function parse(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], allowPositionals: true, options: OPTIONS });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${USAGE}`);
  }
}

async function apiKey(): Promise<string> {
  if (process.env.SAYIIR_API_KEY) return process.env.SAYIIR_API_KEY;
  const dir = process.env.SAYIIR_DATA_DIR ?? '.sayiir';
  try {
    const values = JSON.parse(await readFile(join(dir, 'secrets.json'), 'utf8')) as Record<string, unknown>;
    const first: unknown = (values['sayiir/api-keys'] as unknown[] | undefined)?.[0];
    if (typeof first === 'string') return first;
    if (typeof (first as { key?: unknown } | undefined)?.key === 'string') return (first as { key: string }).key;
  } catch {
    // fall through
  }
  throw new CliError(
    `no API key: set SAYIIR_API_KEY, or start the local stack (npm start) so ${dir}/secrets.json exists`,
  );
}

function json(text: string | undefined, what: string): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${what} is not valid JSON: ${text}`);
  }
}

function positiveInt(raw: string | undefined, what: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(raw)) throw new CliError(`${what}: must be a positive integer, not '${raw}'`);
  return Number(raw);
}

function timeoutSeconds(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_TIMEOUT_SECONDS;
  const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n)) throw new CliError(`--timeout: must be a number of seconds, not '${raw}'\n\n${USAGE}`);
  return n;
}

/** One line saying where a run is: status, steps done, tasks and waits. */
function progressLine(view: InstanceView): string {
  const steps = view.stepsDone ?? 0;
  const parts = [`${view.instanceId}: ${view.status}, ${steps} step${steps === 1 ? '' : 's'} done`];
  const tasks = view.tasks.map((t) => `${t.key} (${t.state}${t.attempt > 1 ? `, attempt ${t.attempt}` : ''})`);
  if (tasks.length > 0) parts.push(`tasks: ${tasks.join(', ')}`);
  const waits = view.waits.map((w) => `${w.key} (${w.kind === 'signal' ? `signal '${w.signal}'` : w.kind})`);
  if (waits.length > 0) parts.push(`waits: ${waits.join(', ')}`);
  const parallel = (view.parallel ?? []).map(
    (p) => `${p.key} ${p.done}/${p.count} ${p.kind === 'map' ? 'items' : 'branches'} done`,
  );
  if (parallel.length > 0) parts.push(parallel.join(', '));
  return parts.join('; ');
}

/** An instance view as text: the progress line, then its output or error. */
function viewText(view: InstanceView): string {
  const lines = [progressLine(view)];
  if (view.waitingFor)
    lines.push(`waits for signal${view.waitingFor.length === 1 ? '' : 's'}: ${view.waitingFor.join(', ')}`);
  if (view.output !== undefined) lines.push(`output: ${JSON.stringify(view.output, null, 2)}`);
  if (view.outputOmitted) lines.push(`output: ${view.outputOmitted.values} values, too many to show here`);
  if (view.error) lines.push(`error: ${view.error.name}: ${view.error.message}`);
  if (view.purgeAt) lines.push(`kept until: ${view.purgeAt}`);
  return lines.join('\n');
}

function summaryText(items: readonly InstanceSummaryView[]): string {
  return items.map((r) => `${r.instanceId.padEnd(38)} ${r.status.padEnd(10)} ${r.createdAt}`).join('\n');
}

/** What a command prints: the API's JSON (with --json) or text. */
interface Output {
  readonly json: unknown;
  readonly text: string;
  readonly code?: number;
}

/** The exit code of a followed run, after saying on stderr what it waits for, if anything. */
function followed(view: InstanceView): Output {
  if (view.waitingFor !== undefined) {
    const names = view.waitingFor.map((n) => `'${n}'`).join(', ');
    console.error(`instance '${view.instanceId}' waits for signal${view.waitingFor.length === 1 ? '' : 's'} ${names}`);
  }
  const code = view.waitingFor !== undefined || view.status === 'COMPLETED' ? EXIT_OK : EXIT_REFUSED;
  return { json: view, text: viewText(view), code };
}

async function follow(sayiir: SayiirClient, instanceId: string, timeoutS: number): Promise<Output> {
  try {
    const view = await sayiir
      .getHandle(instanceId)
      .wait({ timeoutMs: timeoutS * 1000, onProgress: (v) => console.error(progressLine(v)) });
    return followed(view);
  } catch (e) {
    if (!(e instanceof RunTimeoutError)) throw e;
    throw new CliError(
      `timed out after ${timeoutS} s waiting for instance '${instanceId}' (it is ${e.view.status}; ` +
        `follow it with: sayiir status ${instanceId} --wait)`,
      EXIT_TIMEOUT,
    );
  }
}

/** One page of a paged route, or all of them with `--all`; text shows the next cursor. */
async function paged<T>(
  sayiir: SayiirClient,
  path: string,
  query: Record<string, string>,
  all: boolean,
  /** Parameters of the first page only (where it starts: a cursor, or the history's `after`). */
  start: Record<string, string>,
  text: (items: readonly T[]) => string,
): Promise<Output> {
  if (all) {
    const items: T[] = [];
    for await (const item of sayiir.pages<T>(path, query, start)) items.push(item);
    return { json: { items }, text: text(items) };
  }
  const page = await sayiir.page<T>(path, { ...query, ...start });
  const more = page.cursor ? `\nnext page: --cursor ${page.cursor}  (every page: --all)` : '';
  return { json: page, text: `${text(page.items)}${more}` };
}

const seg = encodeURIComponent;

/** One line per lane timer: the child, what it waits on, until when, and whether it is over. */
function laneTimerText(t: LaneTimerView): string {
  const what = t.retry
    ? `retry ${t.retry.task} attempt ${t.retry.attempt}`
    : t.look
      ? `look ${t.look.n} at fork ${t.look.fork}`
      : t.signal
        ? `signal '${t.signal.name}' at ${t.id}`
        : `delay ${t.id}`;
  const state = t.firedAt === undefined ? 'waiting' : `done ${t.firedAt}`;
  const failure = t.retry ? `after ${t.retry.error.name}: ${t.retry.error.message}` : '';
  const due = t.dueAt === undefined ? 'no timeout' : `due ${t.dueAt}`;
  return [`${t.parent}#${t.child}`.padEnd(16), what, due, state, failure].filter(Boolean).join('  ');
}

async function run(command: string, args: readonly string[], v: Values, sayiir: SayiirClient): Promise<Output> {
  const need = (n: number) => {
    if (args.length < n || args.slice(0, n).some((a) => !a))
      throw new CliError(`${command}: missing arguments\n\n${USAGE}`);
  };
  const limit = positiveInt(v.limit, '--limit');
  switch (command) {
    case 'start': {
      need(1);
      const [workflow, input] = args as [string, string | undefined];
      const handle = await sayiir.start(workflow, json(input, 'input'), v.id === undefined ? {} : { instanceId: v.id });
      if (v.wait) return follow(sayiir, handle.instanceId, timeoutSeconds(v.timeout));
      const view = { instanceId: handle.instanceId, workflow };
      return { json: view, text: `started ${workflow} ${handle.instanceId}` };
    }
    case 'status': {
      need(1);
      if (v.wait) return follow(sayiir, args[0] as string, timeoutSeconds(v.timeout));
      const view = await sayiir.getHandle(args[0] as string).status();
      return { json: view, text: viewText(view) };
    }
    case 'signal': {
      need(2);
      const [id, name, payload] = args as [string, string, string | undefined];
      await sayiir.getHandle(id).signal(name, json(payload, 'payload'), v.key ? { idempotencyKey: v.key } : {});
      return { json: { instanceId: id, signal: name }, text: `sent signal '${name}' to ${id}` };
    }
    case 'cancel':
    case 'pause':
    case 'resume': {
      need(1);
      const h = sayiir.getHandle(args[0] as string);
      const s =
        command === 'cancel' ? await h.cancel(v.reason) : command === 'pause' ? await h.pause() : await h.resume();
      return { json: { instanceId: h.instanceId, status: s }, text: `${h.instanceId}: ${s}` };
    }
    case 'retry':
    case 'skip': {
      need(2);
      const [id, key, output] = args as [string, string, string | undefined];
      const h = sayiir.getHandle(id);
      const s = command === 'retry' ? await h.retry(key) : await h.skip(key, json(output, 'output'));
      return {
        json: { instanceId: id, status: s },
        text: `${id}: ${command === 'retry' ? 'retrying' : 'skipped'} ${key}, ${s}`,
      };
    }
    case 'history': {
      need(1);
      type Entry = {
        at: string;
        type: string;
        key?: string;
        attempt?: number;
        actor?: string;
        detail?: string;
        error?: { message: string };
      };
      const query: Record<string, string> = limit ? { limit: String(limit) } : {};
      // Where the first page starts; the API refuses a bad version with a message naming `after`.
      const start: Record<string, string> = {
        ...(v.cursor === undefined ? {} : { cursor: v.cursor }),
        ...(v.after === undefined ? {} : { after: v.after }),
      };
      return paged<Entry>(
        sayiir,
        `/instances/${seg(args[0] as string)}/history`,
        query,
        v.all === true,
        start,
        (items) =>
          items
            .map((e) =>
              [
                e.at,
                e.type.padEnd(18),
                e.key ?? '',
                e.attempt ? `#${e.attempt}` : '',
                e.actor ? `by ${e.actor}` : '',
                e.detail ?? '',
                e.error ? `${e.error.message}` : '',
              ]
                .filter(Boolean)
                .join('  '),
            )
            .join('\n'),
      );
    }
    case 'timers': {
      need(1);
      const query: Record<string, string> = {
        ...(v.parent === undefined ? {} : { parent: v.parent }),
        ...(limit ? { limit: String(limit) } : {}),
      };
      const start: Record<string, string> = v.cursor ? { cursor: v.cursor } : {};
      return paged<LaneTimerView>(
        sayiir,
        `/instances/${seg(args[0] as string)}/lane-timers`,
        query,
        v.all === true,
        start,
        (items) => items.map(laneTimerText).join('\n'),
      );
    }
    case 'list': {
      need(1);
      const query = {
        ...(v.status ? { status: v.status } : {}),
        ...(limit ? { limit: String(limit) } : {}),
      };
      const start: Record<string, string> = v.cursor ? { cursor: v.cursor } : {};
      return paged(sayiir, `/workflows/${seg(args[0] as string)}/instances`, query, v.all === true, start, summaryText);
    }
    case 'workflows': {
      const items = await sayiir.workflows();
      return {
        json: { items },
        text: items.map((w) => `${w.name.padEnd(24)} ${w.description ?? ''}`.trimEnd()).join('\n'),
      };
    }
    case 'describe': {
      need(1);
      const w = await sayiir.describe(args[0] as string);
      const signals = w.signals.length > 0 ? `\nsignals: ${w.signals.join(', ')}` : '';
      return { json: w, text: `${dagText(w.dag)}${signals}\nfinished runs kept: ${retentionText(w.retention)}` };
    }
    case 'dlq list': {
      need(1);
      const query: Record<string, string> = limit ? { limit: String(limit) } : {};
      const page = await sayiir.page<Record<string, unknown>>(`/dlq/${seg(args[0] as string)}`, query);
      const text = page.items
        .map((l) =>
          [l.instanceId, l.taskKey, l.attempts ? `${l.attempts} attempts` : '', l.reason].filter(Boolean).join('  '),
        )
        .join('\n');
      return { json: page, text: text || 'no dead letters' };
    }
    case 'dlq redrive': {
      need(1);
      if ((v.id === undefined) !== (v.task === undefined))
        throw new CliError('dlq redrive: give both --id and --task, or neither');
      const body = v.id === undefined ? {} : { instanceId: v.id, taskKey: v.task };
      const r = await sayiir.request<{ redriven: unknown[]; skipped: unknown[] }>(
        'POST',
        `/dlq/${seg(args[0] as string)}/redrive`,
        body,
      );
      return { json: r, text: `redriven ${r.redriven.length}, skipped ${r.skipped.length}` };
    }
    default:
      throw new CliError(USAGE);
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    console.log(USAGE);
    return EXIT_OK;
  }
  const [first, ...rest] = positionals;
  const command = first === 'dlq' ? `dlq ${rest.shift() ?? ''}` : first;
  if (command === undefined || !Object.hasOwn(TAKES, command)) throw new CliError(USAGE);
  const allowed = new Set<string>([...(TAKES[command] ?? []), 'json', 'help']);
  const stray = Object.keys(values).find((o) => !allowed.has(o));
  if (stray) throw new CliError(`--${stray} is not an option of ${command}\n\n${USAGE}`);
  if (values.timeout !== undefined && !values.wait) throw new CliError(`--timeout needs --wait\n\n${USAGE}`);
  timeoutSeconds(values.timeout);
  const url = process.env.SAYIIR_URL ?? 'http://127.0.0.1:8787';
  const sayiir = new SayiirClient({ url, apiKey: await apiKey() });
  let out: Output;
  try {
    out = await run(command, rest, values, sayiir);
  } catch (e) {
    if (e instanceof SayiirConnectionError) {
      throw new CliError(`${e.message} (is the local stack running? npm start)`);
    }
    if (e instanceof SayiirApiError) {
      if (values.json) console.log(JSON.stringify({ error: { code: e.code, message: e.message } }, null, 2));
      console.error(`${e.code}: ${e.message}`);
      return EXIT_REFUSED;
    }
    throw e;
  }
  console.log(values.json ? JSON.stringify(out.json, null, 2) : out.text);
  return out.code ?? EXIT_OK;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof CliError ? e.message : e);
  process.exitCode = e instanceof CliError ? e.exitCode : EXIT_USAGE;
}
