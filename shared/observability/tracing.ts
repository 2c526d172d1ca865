/**
 * Traces, on the OpenTelemetry API only: without a registered SDK (the
 * default) every call here is a no-op, so tracing costs nothing when off.
 * `otlp.ts` registers the SDK when an OTLP endpoint is configured.
 *
 * One run is one trace: the start request's span is the root; each task
 * attempt is a span whose parent is the span of the step that dispatched it
 * (carried in `Dispatch.trace`, a W3C `traceparent`, through queue messages
 * and inline chains alike).
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { Dispatch } from '../engine/snapshot.ts';
import type { TaskQueue } from '../ports/task-queue.ts';

/** The tracer of every Sayiir span. */
export const tracer = () => trace.getTracer('sayiir');

/** Span attribute names. */
export const ATTR = {
  workflow: 'sayiir.workflow',
  instance: 'sayiir.instance_id',
  task: 'sayiir.task_key',
  attempt: 'sayiir.attempt',
  pool: 'sayiir.pool',
  outcome: 'sayiir.outcome',
  inline: 'sayiir.inline',
} as const;

/** The W3C `traceparent` of a context (the active one by default), or nothing when no tracing SDK is on. */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The context a `traceparent` names, as the parent of new spans. */
export function contextOf(traceparent: string | undefined): Context {
  return traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, { traceparent });
}

/** The trace id in a `traceparent` (`00-<trace id>-<span id>-<flags>`). */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent?.split('-')[1];
}

/** The trace id of the active span, if a tracing SDK is on and a span is active. */
export function activeTraceId(): string | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && trace.isSpanContextValid(ctx) ? ctx.traceId : undefined;
}

/** The dispatches with the active context's `traceparent`, so the tasks they start are its children. */
export function withTrace(dispatches: readonly Dispatch[], ctx: Context = context.active()): readonly Dispatch[] {
  const parent = traceparentOf(ctx);
  return parent === undefined ? dispatches : dispatches.map((d) => ({ ...d, trace: parent }));
}

/** Root trace context of the runs this process has read (see `Snapshot.trace`), most recent last. */
const runTraces = new Map<string, string>();
const MAX_RUN_TRACES = 10_000;

/** Remembers a run's root trace context, for dispatches sent with no active span (reaper, signals). */
export function rememberRunTrace(instanceId: string, traceparent: string | undefined): void {
  if (traceparent === undefined || runTraces.get(instanceId) === traceparent) return;
  runTraces.delete(instanceId);
  if (runTraces.size >= MAX_RUN_TRACES) runTraces.delete(runTraces.keys().next().value as string);
  runTraces.set(instanceId, traceparent);
}

/**
 * A queue that stamps what it sends with the sending time (`sentAt`, for the
 * queue-wait metric) and the active trace context (else the run's root
 * context, when this process has read it: work the reaper or a signal
 * starts stays in the run's trace).
 *
 * @example
 * ```ts
 * const queue = tracedQueue(new SqsTaskQueue(sqs, urls.queueUrl), () => Date.now());
 * ```
 */
export function tracedQueue<Q extends TaskQueue>(queue: Q, now: () => number): Q {
  return new Proxy(queue, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return (dispatches: readonly Dispatch[]) => {
        const at = now();
        const active = trace.getActiveSpan() ? traceparentOf() : undefined;
        return target.send(
          dispatches.map((d) => {
            const parent = active ?? runTraces.get(d.instanceId);
            return { ...d, ...(parent ? { trace: parent } : {}), sentAt: at };
          }),
        );
      };
    },
  });
}

/**
 * Runs one task attempt (a worker step) in its span: child of the context
 * the dispatch carries (else of the active one), kind CONSUMER, with the
 * run's attributes; a successor the step hands back to run inline is
 * stamped with this span's context, so it becomes this span's child too.
 * The outcome attribute is set by the task observer when the step reports.
 */
export async function inTaskSpan<R extends { readonly next?: Dispatch }>(
  d: Dispatch,
  inline: boolean,
  step: () => Promise<R>,
): Promise<R> {
  const parent = d.trace === undefined ? context.active() : contextOf(d.trace);
  const attributes = {
    [ATTR.workflow]: d.workflow,
    [ATTR.instance]: d.instanceId,
    [ATTR.task]: d.key,
    [ATTR.attempt]: d.attempt,
    [ATTR.pool]: d.pool,
    [ATTR.inline]: inline,
  };
  return tracer().startActiveSpan(
    `task ${d.workflow}.${d.qid}`,
    { kind: SpanKind.CONSUMER, attributes },
    parent,
    async (span: Span) => {
      try {
        const r = await step();
        const next = r.next && withTrace([r.next])[0];
        return next ? { ...r, next } : r;
      } catch (e) {
        span.recordException(e as Error);
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw e;
      } finally {
        span.end();
      }
    },
  );
}

/**
 * Runs `fn` in a new span (child of the active context), ended when it settles.
 *
 * @example
 * ```ts
 * const started = await inSpan('start orders', { [ATTR.workflow]: 'orders' }, (span) => startInstance(...));
 * ```
 */
export function inSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean>,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(name, { kind: SpanKind.SERVER, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      span.recordException(e as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw e;
    } finally {
      span.end();
    }
  });
}
