import { DEFAULT_POOL, poolsOf } from '../engine/describe.ts';
import { truncateText } from '../engine/errors.ts';
import { materialize, refValueIds } from '../engine/refs.ts';
import type { Reduction } from '../engine/snapshot.ts';
import type { ReceivedDeadLetter } from '../ports/dead-letters.ts';
import { sendDispatches } from '../runtime/effects.ts';
import { applyEvent, readRun, retryTask, TaskStateError } from '../runtime/instances.ts';
import { skipAndCount } from '../runtime/lanes.ts';
import { HttpError, jsonResponse } from './errors.ts';
import {
  cursorParam,
  isJsonObject,
  limitParam,
  optionalObjectBody,
  optionalStringField,
  parseJsonBody,
  rejectUnknownFields,
} from './http.ts';
import { actorOf, flowOf, instanceOr404, type RouteContext, type RouteHandler } from './routes.ts';
import { errorView, historyEntryView, iso } from './views.ts';

/**
 * Recovery and inspection routes: execution history, manual retry and skip
 * of a task, and the dead-letter queues (list and redrive).
 */

/** `iso`, passing an absent time through. */
const isoOrUndefined = (ms: number | undefined) => (ms === undefined ? undefined : iso(ms));

export const getHistory: RouteHandler = async (ctx, req) => {
  const snapshot = await instanceOr404(ctx, req.params.get('id'));
  const limit = limitParam(req.query.limit, 100, 1000);
  const cursor = cursorParam(req.query.cursor);
  const page = await ctx.store.readHistory(snapshot.instanceId, { limit, ...(cursor ? { cursor } : {}) });
  return jsonResponse(200, {
    items: page.entries.map(historyEntryView),
    ...(page.cursor ? { cursor: page.cursor } : {}),
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
  });
  return answer(ctx, r);
};

/**
 * The dead-letter queues and a pool some registered workflow uses, or a
 * 404; a 403 for a key scoped to workflows, since a pool's dead letters
 * span workflows.
 */
function deadLettersOr404(ctx: RouteContext, pool: string) {
  if (!ctx.deadLetters) throw new HttpError(404, 'route_not_found', 'dead-letter queues are not configured here');
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

/** What an operator needs to judge a dead letter: the reason, the attempts, the input. */
async function letterView(ctx: RouteContext, letter: ReceivedDeadLetter) {
  const base = { messageId: letter.messageId, origin: letter.origin, receiveCount: letter.receiveCount };
  if (letter.origin === 'malformed') return { ...base, body: letter.body, error: letter.error.message };
  const { dispatch } = letter.record;
  let input: unknown = null;
  try {
    const values = await ctx.store.getValues(dispatch.instanceId, refValueIds(dispatch.input));
    input = materialize(dispatch.input, values);
  } catch {
    input = null; // the instance's data is gone (retention): the record still says what failed
  }
  const history = await ctx.store.readHistory(dispatch.instanceId, { limit: 1000 });
  const attempts = history.entries
    .filter((e) => e.key === dispatch.key && e.type === 'task-failed')
    .map((e) => ({ attempt: e.attempt, at: iso(e.at), worker: e.worker, error: e.error && errorView(e.error) }));
  return {
    ...base,
    instanceId: dispatch.instanceId,
    workflow: dispatch.workflow,
    taskKey: dispatch.key,
    pool: dispatch.pool,
    attempts: letter.record.attempts,
    reason: truncateText(letter.record.reason),
    failedAt: isoOrUndefined(letter.record.failedAt),
    input,
    attemptHistory: attempts,
  };
}

export const listDeadLetters: RouteHandler = async (ctx, req) => {
  const pool = req.params.get('pool');
  const dlq = deadLettersOr404(ctx, pool);
  const limit = limitParam(req.query.limit, 50, 100);
  // Reading holds entries: hold briefly, then let them go at once.
  const letters = await dlq.list(pool, { limit, holdSeconds: 10 });
  try {
    return jsonResponse(200, { items: await Promise.all(letters.map((l) => letterView(ctx, l))) });
  } finally {
    await dlq.release(pool, letters);
  }
};

/**
 * Redrives dead letters, one (by `instanceId` and `taskKey`) or all: a task
 * whose retries ran out is retried with a fresh attempt budget (its run is
 * RUNNING again); a dispatch the queue gave up on is dispatched again. Each
 * redriven entry leaves the DLQ; a stale one (its run was retried or ended
 * since) is removed too and reported as skipped.
 */
export const redriveDeadLetters: RouteHandler = async (ctx, req) => {
  const body = optionalObjectBody(req.body, ['instanceId', 'taskKey']);
  const wantInstance = optionalStringField(body, 'instanceId', 128);
  const wantKey = optionalStringField(body, 'taskKey', 1_000);
  const pool = req.params.get('pool');
  const dlq = deadLettersOr404(ctx, pool);
  const letters = await dlq.list(pool, { limit: 1000, holdSeconds: 60 });
  const redriven: { instanceId: string; taskKey: string }[] = [];
  const skipped: { instanceId?: string; taskKey?: string; messageId: string; reason: string }[] = [];
  const done: ReceivedDeadLetter[] = [];
  const untouched: ReceivedDeadLetter[] = [];
  try {
    for (const letter of letters) {
      if (letter.origin === 'malformed') {
        untouched.push(letter);
        continue;
      }
      const d = letter.record.dispatch;
      if ((wantInstance && d.instanceId !== wantInstance) || (wantKey && d.key !== wantKey)) {
        untouched.push(letter);
        continue;
      }
      const snapshot = await readRun(ctx.store, ctx.registry, d.instanceId);
      if (!snapshot || !ctx.registry.has(snapshot.workflow)) {
        skipped.push({
          instanceId: d.instanceId,
          taskKey: d.key,
          messageId: letter.messageId,
          reason: 'instance gone',
        });
        done.push(letter);
        continue;
      }
      const flow = flowOf(ctx, snapshot);
      try {
        const r =
          letter.origin === 'engine'
            ? await retryTask(ctx.store, flow, d.instanceId, d.key, {
                now: () => ctx.clock.now(),
                watch: true,
                ...actorOf(ctx),
              })
            : await applyEvent(
                ctx.store,
                flow,
                d.instanceId,
                { type: 'redispatch', key: d.key, attempt: d.attempt, reason: 'redrive' },
                { now: () => ctx.clock.now(), watch: true, ...actorOf(ctx) },
              );
        await sendDispatches(ctx.queue, r.effects);
        redriven.push({ instanceId: d.instanceId, taskKey: d.key });
      } catch (e) {
        if (!(e instanceof TaskStateError)) throw e;
        skipped.push({ instanceId: d.instanceId, taskKey: d.key, messageId: letter.messageId, reason: e.message });
      }
      done.push(letter);
    }
  } finally {
    if (done.length > 0) await dlq.delete(pool, done);
    if (untouched.length > 0) await dlq.release(pool, untouched);
  }
  if ((wantInstance || wantKey) && redriven.length === 0 && skipped.length === 0) {
    throw new HttpError(404, 'dead_letter_not_found', 'no dead letter matches');
  }
  return jsonResponse(200, { redriven, skipped });
};
