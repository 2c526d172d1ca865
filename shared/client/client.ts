import type { HistoryEntryView, InstanceSummaryView, InstanceView, LaneTimerView, WorkflowView } from '../api/views.ts';
import type { Flow } from '../engine/definition.ts';
import type { RunError, RunStatus } from '../engine/snapshot.ts';
import { type ApiErrorCode, SayiirError } from '../errors.ts';

/**
 * A typed client of Sayiir's HTTP API: start runs, wait for their results,
 * signal and control them, read their history, list runs and dead letters.
 * It needs only `fetch` (Node 20 and later, browsers); it imports no engine
 * code, so a service that calls the engine does not bundle it.
 *
 * @example
 * ```ts
 * import { SayiirClient } from 'sayiir-aws/client';
 * import { fulfil } from './workflows/order.ts';
 *
 * const sayiir = new SayiirClient({ url: process.env.SAYIIR_URL!, apiKey: process.env.SAYIIR_API_KEY! });
 * const run = await sayiir.start(fulfil, order, { instanceId: order.orderId, onConflict: 'useExisting' });
 * await run.signal('manager-approval', { ok: true });
 * const done = await run.result({ timeoutMs: 60_000 }); // typed by the flow's output
 * ```
 */

/** Options of {@link SayiirClient}. */
export interface SayiirClientOptions {
  /** The API's base URL, without `/v1` (e.g. the stack's `ApiUrl` output, or `http://127.0.0.1:8787`). */
  readonly url: string;
  /** The `x-api-key` to send. */
  readonly apiKey: string;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** Options of {@link SayiirClient.start}. */
export interface StartOptions {
  /** Your own id for the run (1-128 of `A-Z a-z 0-9 _ . : -`): starting the same id twice starts one run. @default a UUID */
  readonly instanceId?: string;
  /** What a start with a taken id does: `fail` (a {@link SayiirApiError} `instance_exists`) or `useExisting` (a handle on it). @default 'fail' */
  readonly onConflict?: 'fail' | 'useExisting';
}

/** Options of {@link RunHandle.result} and {@link RunHandle.wait}. */
export interface WaitOptions {
  /** Give up after this long (a {@link RunTimeoutError}; the run goes on). @default 300_000 */
  readonly timeoutMs?: number;
  /** Called with each view that differs from the last one seen (status, steps, tasks, waits). */
  readonly onProgress?: (view: InstanceView) => void;
}

/** Longest `?wait=` the API takes, in seconds. */
const MAX_WAIT_SECONDS = 25;
/** The API answers a paused run at once: the pause between two looks at one. */
const PAUSED_POLL_MS = 1_000;
const FINAL: ReadonlySet<RunStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** The API refused a request: its status and the API's error code (see the README's "Answers"). */
export class SayiirApiError extends SayiirError {
  override readonly name = 'SayiirApiError';
  constructor(
    /** The HTTP status, 400 to 599. */
    readonly status: number,
    /** The API's code (`instance_not_found`, `forbidden`, …); `http_error` when the answer was not the API's. */
    override readonly code: ApiErrorCode | 'http_error',
    message: string,
  ) {
    super(message);
  }
}

/** The API could not be reached at all (connection refused, DNS, TLS). */
export class SayiirConnectionError extends SayiirError {
  override readonly name = 'SayiirConnectionError';
  constructor(
    readonly url: string,
    options?: { readonly cause?: unknown },
  ) {
    super(`cannot reach ${url}: ${(options?.cause as Error | undefined)?.message ?? 'connection failed'}`, options);
  }
}

/** A run awaited with {@link RunHandle.result} ended FAILED or CANCELLED. */
export class RunFailedError extends SayiirError {
  override readonly name = 'RunFailedError';
  constructor(
    readonly instanceId: string,
    readonly status: 'FAILED' | 'CANCELLED',
    /** Why, as the API says it. */
    readonly error: RunError | undefined,
  ) {
    super(`run '${instanceId}' is ${status}${error ? `: ${error.name}: ${error.message}` : ''}`);
  }
}

/** A wait ran out of time; the run goes on. */
export class RunTimeoutError extends SayiirError {
  override readonly name = 'RunTimeoutError';
  constructor(
    readonly instanceId: string,
    /** The run as last seen. */
    readonly view: InstanceView,
  ) {
    super(`timed out waiting for run '${instanceId}' (it is ${view.status})`);
  }
}

/**
 * A client of one Sayiir API.
 *
 * @example
 * ```ts
 * const sayiir = new SayiirClient({ url: 'http://127.0.0.1:8787', apiKey });
 * for await (const run of sayiir.list('fulfil', { status: 'FAILED' })) console.log(run.instanceId);
 * ```
 */
export class SayiirClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: SayiirClientOptions) {
    this.base = `${options.url.replace(/\/+$/, '')}/v1`;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /**
   * Starts a run of `flow` (a flow, typed by its input and output, or a
   * workflow's name) and returns a handle on it.
   *
   * @throws {SayiirApiError} e.g. 400 `invalid_input` naming the field, 404 `workflow_not_found`, 409 `instance_exists`.
   */
  async start<I, O>(flow: Flow<I, O>, input: I, options?: StartOptions): Promise<RunHandle<O>>;
  async start<O = unknown>(workflow: string, input: unknown, options?: StartOptions): Promise<RunHandle<O>>;
  async start(flow: Flow<unknown, unknown> | string, input: unknown, options: StartOptions = {}) {
    const name = typeof flow === 'string' ? flow : flow.name;
    const started = await this.request<{ instanceId: string }>('POST', `/workflows/${seg(name)}/instances`, {
      input: input === undefined ? null : input,
      ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
      ...(options.onConflict === undefined ? {} : { onConflict: options.onConflict }),
    });
    return new RunHandle(this, started.instanceId);
  }

  /** A handle on a run by its id (nothing is read until you ask). */
  getHandle<O = unknown>(instanceId: string): RunHandle<O> {
    return new RunHandle<O>(this, instanceId);
  }

  /** The registered workflows with their DAGs. */
  async workflows(): Promise<readonly WorkflowView[]> {
    return (await this.request<{ items: WorkflowView[] }>('GET', '/workflows')).items;
  }

  /** One workflow with its DAG. */
  describe(workflow: string): Promise<WorkflowView> {
    return this.request('GET', `/workflows/${seg(workflow)}`);
  }

  /**
   * Runs of a workflow, newest first, page after page as you iterate.
   *
   * @example
   * ```ts
   * for await (const run of sayiir.list('fulfil', { status: 'RUNNING', pageSize: 100 })) …
   * ```
   */
  list(
    workflow: string,
    options: { readonly status?: RunStatus; readonly pageSize?: number } = {},
  ): AsyncIterable<InstanceSummaryView> {
    const query = {
      ...(options.status ? { status: options.status } : {}),
      ...(options.pageSize ? { limit: String(options.pageSize) } : {}),
    };
    return this.pages<InstanceSummaryView>(`/workflows/${seg(workflow)}/instances`, query);
  }

  /** One page of a list route, for callers that keep the cursor themselves (the CLI). */
  page<T>(path: string, query: Readonly<Record<string, string>> = {}): Promise<{ items: T[]; cursor?: string }> {
    return this.request('GET', `${path}${queryString(query)}`);
  }

  /** Every item of a paged route, fetching the next page as the caller iterates. */
  async *pages<T>(
    path: string,
    query: Readonly<Record<string, string>> = {},
    /** Parameters of the first page only (where it starts); the cursor says it for the next ones. */
    start: Readonly<Record<string, string>> = {},
  ): AsyncIterable<T> {
    let cursor: string | undefined;
    do {
      const page = await this.page<T>(path, { ...query, ...(cursor ? { cursor } : start) });
      yield* page.items;
      cursor = page.cursor;
    } while (cursor);
  }

  /**
   * One request to the API, `path` under `/v1`. Any answer of 400 or more
   * is thrown as a {@link SayiirApiError}.
   */
  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const url = `${this.base}${path}`;
    let res: Response;
    try {
      res = await this.fetch(url, {
        method,
        headers: {
          'x-api-key': this.options.apiKey,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (e) {
      throw new SayiirConnectionError(this.options.url, { cause: e });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status >= 400) {
      const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      if (error?.code && error.message) {
        throw new SayiirApiError(res.status, error.code as ApiErrorCode, error.message);
      }
      throw new SayiirApiError(res.status, 'http_error', `HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    return json as T;
  }
}

/**
 * One run: read it, wait for it, signal and control it. `O` is the flow's
 * output type when the handle came from a typed {@link SayiirClient.start}.
 */
export class RunHandle<O> {
  constructor(
    private readonly client: SayiirClient,
    readonly instanceId: string,
  ) {}

  private get path(): string {
    return `/instances/${seg(this.instanceId)}`;
  }

  /** The run as it is now. */
  status(): Promise<InstanceView> {
    return this.client.request('GET', this.path);
  }

  /**
   * Follows the run with `?wait=` long polls until it is final or can go no
   * further without a signal (`view.waitingFor`), and returns that view.
   *
   * @throws {RunTimeoutError} `timeoutMs` ran out first (the run goes on).
   */
  async wait(options: WaitOptions = {}): Promise<InstanceView> {
    return this.follow(options, (v) => FINAL.has(v.status) || v.waitingFor !== undefined);
  }

  /**
   * The run's output once it COMPLETED, waiting for it (a run that waits
   * for a signal is waited on too, until `timeoutMs`).
   *
   * @throws {RunFailedError} it ended FAILED or CANCELLED.
   * @throws {RunTimeoutError} `timeoutMs` ran out first (the run goes on).
   */
  async result(options: WaitOptions = {}): Promise<O> {
    const view = await this.follow(options, (v) => FINAL.has(v.status));
    if (view.status !== 'COMPLETED') {
      throw new RunFailedError(this.instanceId, view.status as 'FAILED' | 'CANCELLED', view.error);
    }
    return view.output as O;
  }

  /**
   * Sends a signal. With an `idempotencyKey`, a send retried with the same
   * key is delivered once.
   */
  async signal(name: string, payload?: unknown, options: { readonly idempotencyKey?: string } = {}): Promise<void> {
    const headers = options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : undefined;
    await this.client.request('POST', `${this.path}/signals/${seg(name)}`, payload ?? null, headers);
  }

  async cancel(reason?: string): Promise<RunStatus> {
    return (await this.client.request<{ status: RunStatus }>('POST', `${this.path}/cancel`, reason ? { reason } : {}))
      .status;
  }

  async pause(): Promise<RunStatus> {
    return (await this.client.request<{ status: RunStatus }>('POST', `${this.path}/pause`, {})).status;
  }

  async resume(): Promise<RunStatus> {
    return (await this.client.request<{ status: RunStatus }>('POST', `${this.path}/resume`, {})).status;
  }

  /** Retries the task the run failed on, with a fresh attempt budget. */
  async retry(taskKey: string): Promise<RunStatus> {
    return (await this.client.request<{ status: RunStatus }>('POST', `${this.path}/tasks/${seg(taskKey)}/retry`, {}))
      .status;
  }

  /** Completes a pending or failed task with `output` instead of running it (needs an `admin` key). */
  async skip(taskKey: string, output: unknown): Promise<RunStatus> {
    const path = `${this.path}/tasks/${seg(taskKey)}/skip`;
    return (await this.client.request<{ status: RunStatus }>('POST', path, { output: output ?? null })).status;
  }

  /**
   * The run's history, oldest first, page after page as you iterate; with
   * `after`, only what was committed after that version (a view's
   * `version`, or the last entry's), to follow a run without reading it all again.
   */
  history(options: { readonly pageSize?: number; readonly after?: number } = {}): AsyncIterable<HistoryEntryView> {
    return this.client.pages(
      `${this.path}/history`,
      options.pageSize ? { limit: String(options.pageSize) } : {},
      options.after === undefined ? {} : { after: String(options.after) },
    );
  }

  /**
   * What the run's map items and fork branches running in lanes wait on, or
   * waited on, outside its journal (delays, retries' backoffs, see
   * `LaneTimerView`), by id, page after page as you iterate; with `parent`,
   * those of one map or fork.
   */
  laneTimers(options: { readonly parent?: string; readonly pageSize?: number } = {}): AsyncIterable<LaneTimerView> {
    return this.client.pages(`${this.path}/lane-timers`, {
      ...(options.parent === undefined ? {} : { parent: options.parent }),
      ...(options.pageSize ? { limit: String(options.pageSize) } : {}),
    });
  }

  private async follow(options: WaitOptions, done: (v: InstanceView) => boolean): Promise<InstanceView> {
    const timeoutMs = options.timeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    let shown = '';
    for (;;) {
      const left = Math.max(0, deadline - Date.now());
      // Tenths of a second: the last look ends close to the deadline.
      const wait = Math.min(MAX_WAIT_SECONDS, Math.ceil(left / 100) / 10);
      const view = await this.client.request<InstanceView>('GET', `${this.path}?wait=${wait}`);
      const seen = progressKey(view);
      if (seen !== shown) {
        shown = seen;
        options.onProgress?.(view);
      }
      if (done(view)) return view;
      if (Date.now() >= deadline) throw new RunTimeoutError(this.instanceId, view);
      // The API answers at once for a run that is not RUNNING (paused) or only waits for a signal.
      if (view.status !== 'RUNNING' || view.waitingFor !== undefined) {
        await new Promise((r) => setTimeout(r, Math.min(PAUSED_POLL_MS, Math.max(0, deadline - Date.now()))));
      }
    }
  }
}

/** What makes two views of a run different to someone following it. */
function progressKey(v: InstanceView): string {
  return JSON.stringify([v.status, v.stepsDone, v.tasks, v.waits, v.waitingFor, v.parallel]);
}

const seg = (s: string): string => encodeURIComponent(s);

function queryString(query: Readonly<Record<string, string>>): string {
  const q = new URLSearchParams(query).toString();
  return q ? `?${q}` : '';
}
