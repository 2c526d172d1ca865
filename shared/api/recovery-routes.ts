import { decodeLaneTimerCursor, encodeLaneTimerCursor } from '../adapters/cursor.ts';
import { DEFAULT_POOL, poolsOf } from '../engine/describe.ts';
import { TerminalError, truncateText } from '../engine/errors.ts';
import { materialize, refValueIds } from '../engine/refs.ts';
import type { Reduction } from '../engine/snapshot.ts';
import {
  type DeadLetter,
  type DeadLetterStore,
  deadLetterId,
  poolOf,
  type TaskDeadLetter,
} from '../ports/dead-letter-store.ts';
import { failedAttemptsOf, letterState } from '../runtime/dead-letters.ts';
import { sendDispatches } from '../runtime/effects.ts';
import { applyEvent, readRun, retryTask, TaskStateError } from '../runtime/instances.ts';
import { skipAndCount } from '../runtime/lanes.ts';
import { actorOf, flowOf, instanceOr404, type RouteContext, type RouteHandler } from './context.ts';
import { HttpError, jsonResponse } from './errors.ts';
import {
  afterParam,
  cursorParam,
  isJsonObject,
  limitParam,
  optionalObjectBody,
  optionalStringField,
  parseJsonBody,
  rejectUnknownFields,
} from './http.ts';
import { errorView, historyEntryView, iso, laneTimerView } from './views.ts';

/**
 * Recovery and inspection routes: execution history, manual retry and skip
 * of a task, and the dead letters (list and redrive, from the dead-letter store).
 */

export const getHistory: RouteHandler = async (ctx, req) => {
  const snapshot = await instanceOr404(ctx, req.params.get('id'));
  const limit = limitParam(req.query.limit, 100, 1000);
  const cursor = cursorParam(req.query.cursor);
  const after = afterParam(req.query.after);
  if (cursor !== undefined && after !== undefined) {
    throw new HttpError(
      400,
      'invalid_request',
      'after: not with a cursor (a cursor already says where the page starts)',
    );
  }
  const page = await ctx.store.readHistory(snapshot.instanceId, {
    limit,
    ...(cursor ? { cursor } : {}),
    ...(after === undefined ? {} : { afterSeq: after }),
  });
  return jsonResponse(200, {
    items: page.entries.map(historyEntryView),
    ...(page.cursor ? { cursor: page.cursor } : {}),
  });
};

/**
 * The lane timers of a run (see `LaneTimerView`): what its map items and
 * fork branches that run in lanes wait on, or waited on, outside the
 * journal (delays, retries' backoffs), by id, a page at a time; with
 * `?parent=`, those of one map or fork. A page scans `limit` timers: with
 * `parent`, it may hold fewer, and a `cursor` says there may be more.
 */
export const listLaneTimers: RouteHandler = async (ctx, req) => {
  const snapshot = await instanceOr404(ctx, req.params.get('id'));
  const limit = limitParam(req.query.limit, 50, 100);
  const parent = req.query.parent;
  if (parent === '') throw new HttpError(400, 'invalid_request', 'parent: must not be empty');
  const cursor = cursorParam(req.query.cursor);
  const after = cursor === undefined ? undefined : decodeLaneTimerCursor(snapshot.instanceId, parent, cursor);
  // A map's children's keys start with its key and `[`; a fork's branches share no prefix.
  const prefix = parent !== undefined && Object.hasOwn(snapshot.maps, parent) ? `${parent}[` : '';
  const scanned = await ctx.store.listTimers(snapshot.instanceId, prefix, {
    limit,
    ...(after === undefined ? {} : { after }),
  });
  const last = scanned.at(-1);
  return jsonResponse(200, {
    items: scanned
      .filter((t) => parent === undefined || t.parent === parent)
      .map((t) => laneTimerView(flowOf(ctx, snapshot), t)),
    ...(scanned.length === limit && last
      ? { cursor: encodeLaneTimerCursor(snapshot.instanceId, parent, last.id) }
      : {}),
  });
};

/** Sends what a retry or skip dispatched, and answers with the run as that checkpoint left it. */
async function answer(ctx: RouteContext, r: Reduction) {
  await sendDispatches(ctx.queue, r.effects);
  const { instanceId, workflow, status } = r.snapshot;
  return jsonResponse(200, { instanceId, workflow, status });
}

export const retryFailedTask: RouteHandler = async (ctx, req) => {
  const snapshot = await instanceOr404(ctx, req.params.get('id'));
  const flow = flowOf(ctx, snapshot);
  const r = await retryTask(ctx.store, flow, snapshot.instanceId, req.params.get('key'), {
    now: () => ctx.clock.now(),
    watch: true,
    ...actorOf(ctx),
  });
  return answer(ctx, r);
};

export const skipPendingTask: RouteHandler = async (ctx, req) => {
  const snapshot = await instanceOr404(ctx, req.params.get('id'));
  const flow = flowOf(ctx, snapshot);
  const body = parseJsonBody(req.body);
  if (!isJsonObject(body) || !Object.hasOwn(body, 'output')) {
    throw new HttpError(400, 'invalid_request', 'request body must be a JSON object: { "output": ... }');
  }
  rejectUnknownFields(body, ['output']);
  const r = await skipAndCount(ctx.store, flow, snapshot.instanceId, req.params.get('key'), body.output, {
    now: () => ctx.clock.now(),
    watch: true,
    ...actorOf(ctx),
  }).catch(refusedOutputAs400);
  return answer(ctx, r);
};

/**
 * The engine refuses an output its step cannot take (a route key that is not
 * a string, map items that are not an array) with a {@link TerminalError}, as
 * it refuses a task's. In a skip that output is the client's: a 400. Mapped
 * here rather than on the class, where it would make every TerminalError (a
 * task's "do not retry", a damaged offloaded payload) a client error.
 */
function refusedOutputAs400(error: unknown): never {
  if (error instanceof TerminalError) throw new HttpError(400, 'invalid_output', error.message);
  throw error;
}

/**
 * The dead-letter store and a pool some registered workflow uses, or a
 * 404; a 403 for a key scoped to workflows, since a pool's dead letters
 * span workflows.
 */
function deadLettersOr404(ctx: RouteContext, pool: string): DeadLetterStore {
  if (!ctx.deadLetters) throw new HttpError(404, 'route_not_found', 'dead letters are not configured here');
  if (ctx.caller.workflows !== undefined) {
    throw new HttpError(
      403,
      'forbidden',
      `key '${ctx.caller.name}' is scoped to workflows; dead letters span a pool's workflows and need a key without a scope`,
    );
  }
  const pools = new Set([DEFAULT_POOL, ...[...ctx.registry.all()].flatMap(poolsOf)]);
  if (!pools.has(pool)) {
    throw new HttpError(404, 'pool_not_found', `no workflow runs tasks in pool '${pool.slice(0, 100)}'`);
  }
  return ctx.deadLetters;
}

/** Dead letters a redrive takes per request: a request never runs more retries than this. */
export const REDRIVE_PAGE = 25;

/** What an operator needs to judge a dead letter: whether it is still open, the reason, the attempts, the input. */
async function letterView(ctx: RouteContext, letter: DeadLetter) {
  const base = { id: deadLetterId(letter), origin: letter.origin, pool: poolOf(letter), at: iso(letter.at) };
  const reason = truncateText(letter.reason);
  if (letter.origin === 'malformed') {
    return { ...base, state: 'open', reason, messageId: letter.messageId, body: letter.body };
  }
  const { dispatch } = letter;
  const state = letterState(letter, await readRun(ctx.store, ctx.registry, dispatch.instanceId));
  let input: unknown = null;
  try {
    const values = await ctx.store.getValues(dispatch.instanceId, refValueIds(dispatch.input));
    input = materialize(dispatch.input, values);
  } catch {
    input = null; // the instance's data is gone (retention): the record still says what failed
  }
  // Kept with the record since it was made; older records read the run's history.
  const failed = letter.attemptHistory ?? (await failedAttemptsOf(ctx.store, dispatch.instanceId, dispatch.key));
  const attempts = failed.map((e) => ({
    attempt: e.attempt,
    at: iso(e.at),
    worker: e.worker,
    error: e.error && errorView(e.error),
  }));
  return {
    ...base,
    state: state.state,
    ...(state.state === 'resolved' ? { resolution: state.why } : {}),
    instanceId: dispatch.instanceId,
    workflow: dispatch.workflow,
    taskKey: dispatch.key,
    attempt: dispatch.attempt,
    attempts: letter.attempts,
    reason,
    input,
    attemptHistory: attempts,
  };
}

/** A page of a pool's dead letters, newest first, from the store: reading changes nothing. */
export const listDeadLetters: RouteHandler = async (ctx, req) => {
  const pool = req.params.get('pool');
  const store = deadLettersOr404(ctx, pool);
  const limit = limitParam(req.query.limit, 25, 50);
  const cursor = cursorParam(req.query.cursor);
  const page = await store.list(pool, { limit, ...(cursor ? { cursor } : {}) });
  // Each view reads its run, input and attempt history: the page's letters are read together.
  const items = await Promise.all(page.letters.map((letter) => letterView(ctx, letter)));
  return jsonResponse(200, { items, ...(page.cursor ? { cursor: page.cursor } : {}) });
};

interface Skipped {
  readonly id: string;
  readonly instanceId?: string;
  readonly taskKey?: string;
  readonly reason: string;
}

/**
 * Redrives dead letters: those of one instance (`{ instanceId, taskKey? }`),
 * or, without a body, one page of the pool's letters, newest first, at most
 * {@link REDRIVE_PAGE} per request (`?cursor=` takes the next page).
 *
 * Per letter: an open `engine` letter's task is retried with a fresh attempt
 * budget (its run is RUNNING again); an open `redrive` letter's dispatch is
 * sent again; then the letter is removed. A resolved letter (its run moved
 * on) is removed and reported as skipped; a malformed one is kept (there is
 * nothing to redrive) and reported as skipped. The answer says what was
 * redriven, what was skipped, and whether more letters remain: the `cursor`
 * of the next page, or, for one instance's letters, how many are `remaining`
 * (the next request takes them).
 */
export const redriveDeadLetters: RouteHandler = async (ctx, req) => {
  const body = optionalObjectBody(req.body, ['instanceId', 'taskKey']);
  const wantInstance = optionalStringField(body, 'instanceId', 128);
  const wantKey = optionalStringField(body, 'taskKey', 1_000);
  const pool = req.params.get('pool');
  const store = deadLettersOr404(ctx, pool);
  if (wantKey !== undefined && wantInstance === undefined) {
    throw new HttpError(400, 'invalid_request', 'taskKey: needs instanceId');
  }
  let letters: readonly DeadLetter[];
  let cursor: string | undefined;
  let remaining = 0;
  if (wantInstance !== undefined) {
    const mine = (await store.ofInstance(wantInstance)).filter(
      (l) => l.dispatch.pool === pool && (wantKey === undefined || l.dispatch.key === wantKey),
    );
    if (mine.length === 0) throw new HttpError(404, 'dead_letter_not_found', 'no dead letter matches');
    letters = mine.slice(0, REDRIVE_PAGE);
    remaining = mine.length - letters.length;
  } else {
    const from = cursorParam(req.query.cursor);
    const page = await store.list(pool, { limit: REDRIVE_PAGE, ...(from ? { cursor: from } : {}) });
    letters = page.letters;
    cursor = page.cursor;
  }
  const redriven: { id: string; instanceId: string; taskKey: string }[] = [];
  const skipped: Skipped[] = [];
  for (const letter of letters) {
    const id = deadLetterId(letter);
    if (letter.origin === 'malformed') {
      skipped.push({ id, reason: 'not a dispatch: nothing to redrive (kept for inspection)' });
      continue;
    }
    const d = letter.dispatch;
    const outcome = await redriveOne(ctx, letter);
    if (outcome === 'redriven') redriven.push({ id, instanceId: d.instanceId, taskKey: d.key });
    else skipped.push({ id, instanceId: d.instanceId, taskKey: d.key, reason: outcome.skipped });
    await store.delete(letter);
  }
  return jsonResponse(200, {
    redriven,
    skipped,
    ...(cursor ? { cursor } : {}),
    ...(remaining > 0 ? { remaining } : {}),
  });
};

/** Redrives one task letter if it is open; otherwise says why not. The caller removes the letter either way. */
async function redriveOne(ctx: RouteContext, letter: TaskDeadLetter): Promise<'redriven' | { skipped: string }> {
  const d = letter.dispatch;
  const snapshot = await readRun(ctx.store, ctx.registry, d.instanceId);
  const state = letterState(letter, snapshot);
  if (state.state === 'resolved') return { skipped: state.why };
  if (!snapshot || !ctx.registry.has(snapshot.workflow)) return { skipped: 'its workflow is not registered here' };
  const flow = flowOf(ctx, snapshot);
  const options = { now: () => ctx.clock.now(), watch: true, ...actorOf(ctx) };
  try {
    const r =
      letter.origin === 'engine'
        ? await retryTask(ctx.store, flow, d.instanceId, d.key, options)
        : await applyEvent(
            ctx.store,
            flow,
            d.instanceId,
            { type: 'redispatch', key: d.key, attempt: d.attempt, reason: 'redrive' },
            options,
          );
    await sendDispatches(ctx.queue, r.effects);
    return 'redriven';
  } catch (e) {
    // The run moved on between the read and the commit (a concurrent retry or redrive).
    if (e instanceof TaskStateError) return { skipped: e.message };
    throw e;
  }
}
