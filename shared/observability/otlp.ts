/**
 * Opt-in trace export. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then the OpenTelemetry SDK
 * and its OTLP/HTTP exporter are imported (never before, so a process that
 * does not trace neither loads nor parses them) and registered globally,
 * with the W3C trace-context propagator that `Dispatch.trace` relies on.
 *
 * The SDK's modules are imported by computed names: a bundler leaves them
 * out of the Lambda bundle, and the construct adds them to the function's
 * package only when tracing is configured.
 */
import { context, propagation, trace } from '@opentelemetry/api';

/** Modules the SDK is loaded from. */
export const OTEL_SDK_MODULES = [
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/context-async-hooks',
  '@opentelemetry/core',
] as const;

/** A started exporter: flush it before a Lambda invocation returns (the sandbox may freeze). */
export interface TracingHandle {
  flush(): Promise<void>;
}

/** Whether the environment asks for trace export. */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

let started: Promise<TracingHandle | undefined> | undefined;

/**
 * Starts trace export when configured (once per process); resolves to
 * `undefined` when tracing is off. The exporter reads its own `OTEL_*`
 * variables (endpoint, headers, service name).
 *
 * @example
 * ```ts
 * const tracing = await startTracingFromEnv();
 * // … handle the invocation …
 * await tracing?.flush();
 * ```
 */
export function startTracingFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<TracingHandle | undefined> {
  if (!tracingConfigured(env)) return Promise.resolve(undefined);
  started ??= load();
  return started;
}

const importByName = (name: string): Promise<Record<string, unknown>> => import(name);

async function load(): Promise<TracingHandle> {
  const [base, otlp, hooks, core] = await Promise.all(OTEL_SDK_MODULES.map(importByName));
  const sdk = base as unknown as typeof import('@opentelemetry/sdk-trace-base');
  const { OTLPTraceExporter } = otlp as unknown as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { AsyncLocalStorageContextManager } = hooks as unknown as typeof import('@opentelemetry/context-async-hooks');
  const { W3CTraceContextPropagator } = core as unknown as typeof import('@opentelemetry/core');
  const provider = new sdk.BasicTracerProvider({
    spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter())],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return { flush: () => provider.forceFlush() };
}
