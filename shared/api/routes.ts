import type { AnyFlow } from '../engine/definition.ts';
import { ensureError } from '../engine/errors.ts';
import { laneGroups } from '../engine/lanes.ts';
import { signalRefusal } from '../engine/reducer.ts';
import { materialize, refValueIds } from '../engine/refs.ts';
import type { RunEvent, RunStatus, Snapshot } from '../engine/snapshot.ts';
import { FINAL_STATUSES } from '../engine/snapshot.ts';
import { ATTR, inSpan } from '../observability/tracing.ts';
import { InstanceExistsError } from '../ports/errors.ts';
import { controlRun } from '../runtime/control.ts';
import { effectiveRetention } from '../runtime/defaults.ts';
import { sendDispatches } from '../runtime/effects.ts';
import { deliveryIdOf, readRun, startInstance } from '../runtime/instances.ts';
import { deliverSignalToLanes } from '../runtime/lane-signals.ts';
import { laneCounterId } from '../runtime/lanes.ts';
import { callerSees } from './auth.ts';
import {
  actorOf,
  flowOf,
  INSTANCE_ID_RULE,
  instanceOr404,
  isInstanceId,
  type Route,
  type RouteContext,
  type RouteHandler,
  type RouteRequest,
  workflowOr404,
} from './context.ts';
import { HttpError, jsonResponse } from './errors.ts';
import {
  cursorParam,
  isJsonObject,
  limitParam,
  optionalObjectBody,
  optionalStringField,
  parseJsonBody,
  rejectUnknownFields,
  waitParam,
} from './http.ts';
import {
  getHistory,
  listDeadLetters,
  listLaneTimers,
  redriveDeadLetters,
  retryFailedTask,
  skipPendingTask,
} from './recovery-routes.ts';
import { Router } from './router.ts';
import { getRunInput, getTaskValues } from './value-routes.ts';
import {
  awaitedSignals,
  instanceView,
  MAX_VIEW_OUTPUT_VALUES,
  refValueCount,
  signalNames,
  summaryView,
  workflowView,
} from './views.ts';

/** Listing page size. */
export const DEFAULT_LIST_LIMIT = 20;
export const MAX_LIST_LIMIT = 100;

const RUN_STATUSES: readonly RunStatus[] = ['RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'];

// ---- validation ------------------------------------------------------------

interface SchemaIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Zod-like errors (`issues: [{ path, message }]`), recognised by shape so that no validator is a dependency. */
function issuesOf(error: unknown): readonly SchemaIssue[] | undefined {
  const issues = (error as { issues?: unknown } | null)?.issues;
  if (!Array.isArray(issues) || issues.length === 0) return undefined;
  const ok = issues.every((i) => isJsonObject(i) && Array.isArray(i.path) && typeof i.message === 'string');
  return ok ? (issues as SchemaIssue[]) : undefined;
}

function fieldPath(path: readonly (string | number)[]): string {
  return path.reduce<string>(
    (acc, step) => (typeof step === 'number' ? `${acc}[${step}]` : `${acc}.${String(step)}`),
    'input',
  );
}

/** The run input as the flow's schema accepts it (its parsed value), or a 400 naming the field. */
function validateInput(flow: AnyFlow, input: unknown): unknown {
  const schema = flow.options.input;
  if (!schema) return input;
  try {
    return schema.parse(input);
  } catch (e) {
    const issues = issuesOf(e);
    const message = issues
      ? issues.map((i) => `${fieldPath(i.path)}: ${i.message}`).join('; ')
      : `input: ${ensureError(e).message}`;
    throw new HttpError(400, 'invalid_input', message);
  }
}

// ---- handlers --------------------------------------------------------------

const listWorkflows: RouteHandler = async (ctx) => {
  const items = [...ctx.registry.all()]
    .filter((f) => callerSees(ctx.caller, f.name))
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((f) => workflowView(f, effectiveRetention(f.options.retention, ctx.retention)));
  return jsonResponse(200, { items });
};

const getWorkflow: RouteHandler = async (ctx, req) => {
  const flow = workflowOr404(ctx, req.params.get('name'));
  return jsonResponse(200, workflowView(flow, effectiveRetention(flow.options.retention, ctx.retention)));
};

function instanceIdOr400(value: unknown): string {
  if (typeof value !== 'string' || !isInstanceId(value)) throw new HttpError(400, 'invalid_request', INSTANCE_ID_RULE);
  return value;
}

const START_FIELDS = ['input', 'instanceId', 'onConflict'] as const;

const startWorkflowInstance: RouteHandler = async (ctx, req) => {
  const flow = workflowOr404(ctx, req.params.get('name'));
  const body = parseJsonBody(req.body);
  if (!isJsonObject(body)) {
    throw new HttpError(400, 'invalid_request', 'request body must be a JSON object: { "input": ... }');
  }
  rejectUnknownFields(body, START_FIELDS);
  const { instanceId: rawId, onConflict = 'fail' } = body;
  const requestedId = rawId === undefined ? undefined : instanceIdOr400(rawId);
  if (onConflict !== 'fail' && onConflict !== 'useExisting') {
    throw new HttpError(400, 'invalid_request', "onConflict: must be 'fail' or 'useExisting'");
  }
  const input = validateInput(flow, body.input ?? null);

  const existing = async (snapshot: Snapshot) => {
    if (onConflict === 'useExisting' && snapshot.workflow === flow.name) {
      return jsonResponse(200, {
        instanceId: snapshot.instanceId,
        workflow: snapshot.workflow,
        status: snapshot.status,
      });
    }
    const whose = snapshot.workflow === flow.name ? '' : ` (of workflow '${snapshot.workflow}')`;
    throw new HttpError(409, 'instance_exists', `instance '${snapshot.instanceId}' already exists${whose}`);
  };

  const instanceId = requestedId ?? ctx.newId();
  if (requestedId !== undefined) {
    // Checked first so that a retried start writes nothing at all.
    const found = await readRun(ctx.store, ctx.registry, instanceId);
    if (found) return existing(found);
  }
  // The run's root span: its first dispatches carry its context, so every task span of the run is in its trace.
  const attributes = { [ATTR.workflow]: flow.name, [ATTR.instance]: instanceId };
  return inSpan(`start ${flow.name}`, attributes, async () => {
    let started: Awaited<ReturnType<typeof startInstance>>;
    try {
      started = await startInstance(ctx.store, flow, input, {
        instanceId,
        now: ctx.clock.now(),
        ...(ctx.redispatchAfterMs === undefined ? {} : { redispatchAfterMs: ctx.redispatchAfterMs }),
        ...(ctx.retention === undefined ? {} : { retention: ctx.retention }),
        ...actorOf(ctx),
      });
    } catch (e) {
      const raced = e instanceof InstanceExistsError ? await readRun(ctx.store, ctx.registry, instanceId) : undefined;
      if (raced) return existing(raced);
      throw e;
    }
    await sendDispatches(ctx.queue, started.effects);
    return jsonResponse(201, { instanceId, workflow: flow.name, status: started.snapshot.status });
  });
};

const listInstances: RouteHandler = async (ctx, req) => {
  const flow = workflowOr404(ctx, req.params.get('name'));
  const { status, limit: limitText, cursor } = req.query;
  if (status !== undefined && !RUN_STATUSES.includes(status as RunStatus)) {
    throw new HttpError(400, 'invalid_request', `status: must be one of ${RUN_STATUSES.join(', ')}`);
  }
  const limit = limitParam(limitText, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT);
  cursorParam(cursor);
  const page = await ctx.store.list({
    workflow: flow.name,
    limit,
    ...(status === undefined ? {} : { status: status as RunStatus }),
    ...(cursor === undefined ? {} : { cursor }),
  });
  return jsonResponse(200, {
    items: page.items.map(summaryView),
    ...(page.cursor === undefined ? {} : { cursor: page.cursor }),
  });
};

/** Longest `?wait=` on `GET /v1/instances/{id}`, in seconds: the answer must beat API Gateway's 30 s timeout. */
export const MAX_WAIT_SECONDS = 25;
/**
 * Pause between two looks at a waited-on instance: 10 ms plus a quarter of
 * the time waited so far, at most 250 ms. So an answer comes at most about a
 * quarter late (a run done at 60 ms is seen by about 80 ms), and a full
 * 25 s wait costs about 120 reads.
 */
const WAIT_POLL_FIRST_MS = 10;
const WAIT_POLL_MAX_MS = 250;

/** Whether a client waiting on the run has something to see: it stopped running, or only a signal can move it. */
function settled(s: Snapshot): boolean {
  return s.status !== 'RUNNING' || awaitedSignals(s) !== undefined;
}

/**
 * The instance once {@link settled}, or as it is when `waitMs` (by the
 * context's clock) runs out. Polls the store with a pause that grows with
 * the time waited, each look through {@link instanceOr404}, so a deleted
 * instance is a 404.
 *
 * ```
 * look ─10ms─ look ─12ms─ look ─16ms─ look ─20ms─ … ─250ms─ … ─ deadline: look, answer
 * ```
 */
async function settledOrTimedOut(ctx: RouteContext, instanceId: string, waitMs: number): Promise<Snapshot> {
  const started = ctx.clock.now();
  const deadline = started + waitMs;
  for (;;) {
    const snapshot = await instanceOr404(ctx, instanceId);
    const now = ctx.clock.now();
    const left = deadline - now;
    if (settled(snapshot) || left <= 0) return snapshot;
    const pause = Math.min(WAIT_POLL_FIRST_MS + Math.floor((now - started) / 4), WAIT_POLL_MAX_MS);
    await ctx.clock.sleep(Math.min(pause, left));
  }
}

const getInstance: RouteHandler = async (ctx, req) => {
  const instanceId = req.params.get('id');
  const wait = waitParam(req.query.wait, MAX_WAIT_SECONDS);
  const snapshot =
    wait === undefined
      ? await instanceOr404(ctx, instanceId)
      : await settledOrTimedOut(ctx, instanceId, Math.round(wait * 1000));
  return jsonResponse(200, instanceView(snapshot, await outputOf(ctx, snapshot), await laneCounts(ctx, snapshot)));
};

/** The counters of the run's maps and forks in lanes (one consistent read each; a run has few at a time). */
async function laneCounts(ctx: RouteContext, snapshot: Snapshot): Promise<Map<string, number>> {
  const groups = laneGroups(snapshot);
  const counts = await Promise.all(groups.map((g) => ctx.store.getCounter(snapshot.instanceId, laneCounterId(g.key))));
  return new Map(groups.map((g, i) => [g.key, counts[i] ?? 0]));
}

/** A COMPLETED run's output for its view, unless it is made of more stored values than a view reads. */
async function outputOf(ctx: RouteContext, snapshot: Snapshot): Promise<Parameters<typeof instanceView>[1]> {
  if (snapshot.status !== 'COMPLETED' || !snapshot.output) return undefined;
  const values = refValueCount(snapshot.output);
  if (values > MAX_VIEW_OUTPUT_VALUES) return { omitted: { values, limit: MAX_VIEW_OUTPUT_VALUES } };
  const read = await ctx.store.getValues(snapshot.instanceId, refValueIds(snapshot.output));
  return { value: materialize(snapshot.output, read) };
}

function finished(snapshot: Snapshot): HttpError {
  return new HttpError(409, 'instance_finished', `instance '${snapshot.instanceId}' is ${snapshot.status}`);
}

const sendSignal: RouteHandler = async (ctx, req) => {
  const snapshot = await instanceOr404(ctx, req.params.get('id'));
  const flow = flowOf(ctx, snapshot);
  const name = req.params.get('signal');
  if (!signalNames(flow).has(name)) {
    // Nothing would ever consume it: it would sit in the buffer forever.
    throw new HttpError(404, 'signal_not_found', `workflow '${flow.name}' waits for no signal '${name}'`);
  }
  const payload = parseJsonBody(req.body) ?? null;
  const key = idempotencyKeyOf(req);
  const deliveryId = key === undefined ? undefined : deliveryIdOf(key);
  const answer = { instanceId: snapshot.instanceId, signal: name, status: snapshot.status };
  const refused = signalRefusal(flow, snapshot, name, deliveryId);
  if (refused === 'duplicate') return jsonResponse(202, answer);
  if (refused === 'finished') throw finished(snapshot);
  const now = () => ctx.clock.now();
  const r = await deliverSignalToLanes(ctx.store, flow, snapshot.instanceId, name, payload, {
    now,
    watch: true,
    ...actorOf(ctx),
    ...(deliveryId === undefined ? {} : { deliveryId }),
  });
  if (!r.changed) {
    // A retried delivery gets the answer of the first one; otherwise it finished between our read and the delivery.
    if (signalRefusal(flow, r.snapshot, name, deliveryId) === 'duplicate') return jsonResponse(202, answer);
    throw finished(r.snapshot);
  }
  await sendDispatches(ctx.queue, r.effects);
  if (r.dispatches.length > 0) await ctx.queue.send(r.dispatches);
  return jsonResponse(202, { ...answer, status: r.run.snapshot.status });
};

/** Longest `Idempotency-Key` header accepted on a signal. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 256;

/** The `Idempotency-Key` header of a request, or a 400 when it is blank or too long. */
function idempotencyKeyOf(req: RouteRequest): string | undefined {
  const key = req.header('idempotency-key');
  if (key === undefined) return undefined;
  if (key.trim() === '' || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new HttpError(
      400,
      'invalid_request',
      `Idempotency-Key: must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters, not blank`,
    );
  }
  return key;
}

type Transition = 'cancel' | 'pause' | 'resume';

/** Why a transition is impossible from `s`, or `undefined` when it is possible. */
function refusal(kind: Transition, s: Snapshot): HttpError | undefined {
  if (kind === 'cancel') return FINAL_STATUSES.has(s.status) ? finished(s) : undefined;
  const from: RunStatus = kind === 'pause' ? 'RUNNING' : 'PAUSED';
  if (s.status === from) return undefined;
  return new HttpError(
    409,
    'invalid_transition',
    `cannot ${kind} instance '${s.instanceId}': it is ${s.status}, not ${from}`,
  );
}

/** Longest cancel reason kept (it is stored with the run and shown in its history). */
export const MAX_REASON_LENGTH = 1_000;

/** The event of a transition, from its optional body: `{ "reason"? }` for cancel, nothing for pause and resume. */
function transitionEvent(kind: Transition, text: string | undefined): RunEvent {
  if (kind !== 'cancel') {
    optionalObjectBody(text, []);
    return { type: kind };
  }
  const reason = optionalStringField(optionalObjectBody(text, ['reason']), 'reason', MAX_REASON_LENGTH);
  return reason === undefined ? { type: 'cancel' } : { type: 'cancel', reason };
}

function transition(kind: Transition): RouteHandler {
  return async (ctx, req) => {
    const event = transitionEvent(kind, req.body);
    const snapshot = await instanceOr404(ctx, req.params.get('id'));
    const flow = flowOf(ctx, snapshot);
    const refused = refusal(kind, snapshot);
    if (refused) throw refused;
    const r = await controlRun(
      { store: ctx.store, queue: ctx.queue, claims: ctx.claims, now: () => ctx.clock.now(), ...actorOf(ctx) },
      flow,
      snapshot.instanceId,
      event,
    );
    // Someone else moved it first (between our read and the commit).
    if (!r.changed) throw refusal(kind, r.snapshot) ?? finished(r.snapshot);
    return jsonResponse(200, {
      instanceId: snapshot.instanceId,
      workflow: snapshot.workflow,
      status: r.snapshot.status,
    });
  };
}

/**
 * The API's routes, each with the least role that may call it (see `Role`).
 *
 * | method | path                                   | role    | answer |
 * |--------|----------------------------------------|---------|--------|
 * | GET    | /v1/workflows                          | read    | 200 `{ items: WorkflowView[] }` |
 * | GET    | /v1/workflows/{name}                   | read    | 200 `WorkflowView` |
 * | POST   | /v1/workflows/{name}/instances         | operate | 201 (200 with `useExisting`) `{ instanceId, workflow, status }` |
 * | GET    | /v1/workflows/{name}/instances         | read    | 200 `{ items, cursor? }` (`?status=&limit=&cursor=`) |
 * | GET    | /v1/instances/{id}                     | read    | 200 `InstanceView` (`?wait=` 0-25 s: once settled, or at the deadline) |
 * | POST   | /v1/instances/{id}/signals/{signal}    | operate | 202 `{ instanceId, signal, status }` |
 * | POST   | /v1/instances/{id}/cancel              | operate | 200 `{ instanceId, workflow, status }` |
 * | POST   | /v1/instances/{id}/pause               | operate | 200 `{ instanceId, workflow, status }` |
 * | POST   | /v1/instances/{id}/resume              | operate | 200 `{ instanceId, workflow, status }` |
 * | GET    | /v1/instances/{id}/history             | read    | 200 `{ items: HistoryEntry[], cursor? }` |
 * | GET    | /v1/instances/{id}/lane-timers         | read    | 200 `{ items: LaneTimerView[], cursor? }` (`?parent=`, `?limit=` 1-100, `?cursor=`) |
 * | GET    | /v1/instances/{id}/input               | read    | 200 `{ instanceId, input }` |
 * | GET    | /v1/instances/{id}/tasks/{key}         | read    | 200 `{ instanceId, taskKey, state?, attempt?, input?, output? }` |
 * | POST   | /v1/instances/{id}/tasks/{key}/retry   | operate | 200 `{ instanceId, workflow, status }` |
 * | POST   | /v1/instances/{id}/tasks/{key}/skip    | admin   | 200 `{ instanceId, workflow, status }` (body `{ output }`) |
 * | GET    | /v1/dlq/{pool}                         | read    | 200 `{ items: DeadLetterView[], cursor? }` (`?limit=` 1-50, `?cursor=`) |
 * | POST   | /v1/dlq/{pool}/redrive                 | operate | 200 `{ redriven, skipped, cursor?, remaining? }` (body `{ instanceId, taskKey? }`, or none: a page of 25, `?cursor=`) |
 *
 * @example
 * ```ts
 * const m = apiRouter().match('GET', '/v1/workflows');
 * ```
 */
export function apiRouter(): Router<Route> {
  const read = (handler: RouteHandler): Route => ({ handler, role: 'read' });
  const operate = (handler: RouteHandler): Route => ({ handler, role: 'operate' });
  const admin = (handler: RouteHandler): Route => ({ handler, role: 'admin' });
  return new Router<Route>()
    .add('GET', '/v1/workflows', read(listWorkflows))
    .add('GET', '/v1/workflows/{name}', read(getWorkflow))
    .add('POST', '/v1/workflows/{name}/instances', operate(startWorkflowInstance))
    .add('GET', '/v1/workflows/{name}/instances', read(listInstances))
    .add('GET', '/v1/instances/{id}', read(getInstance))
    .add('POST', '/v1/instances/{id}/signals/{signal}', operate(sendSignal))
    .add('POST', '/v1/instances/{id}/cancel', operate(transition('cancel')))
    .add('POST', '/v1/instances/{id}/pause', operate(transition('pause')))
    .add('POST', '/v1/instances/{id}/resume', operate(transition('resume')))
    .add('GET', '/v1/instances/{id}/history', read(getHistory))
    .add('GET', '/v1/instances/{id}/lane-timers', read(listLaneTimers))
    .add('GET', '/v1/instances/{id}/input', read(getRunInput))
    .add('GET', '/v1/instances/{id}/tasks/{key}', read(getTaskValues))
    .add('POST', '/v1/instances/{id}/tasks/{key}/retry', operate(retryFailedTask))
    .add('POST', '/v1/instances/{id}/tasks/{key}/skip', admin(skipPendingTask))
    .add('GET', '/v1/dlq/{pool}', read(listDeadLetters))
    .add('POST', '/v1/dlq/{pool}/redrive', operate(redriveDeadLetters));
}
