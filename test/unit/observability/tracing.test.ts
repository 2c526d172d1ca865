import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, propagation, trace } from '@opentelemetry/api';
import { afterAll, describe, expect, it } from 'vitest';
import { dispatchAttributes, encodeDispatch, parseDispatchRecord } from '../../../shared/adapters/sqs/message.ts';
import type { Dispatch } from '../../../shared/engine/snapshot.ts';
import { startTracingFromEnv, tracingConfigured } from '../../../shared/observability/otlp.ts';
import { inSpan, tracedQueue, withTrace } from '../../../shared/observability/tracing.ts';

const d: Dispatch = {
  instanceId: 'i-1',
  workflow: 'w',
  key: 'a',
  qid: 'a',
  input: { v: 'x' },
  attempt: 1,
  gen: 1,
  priority: 'normal',
  pool: 'default',
};
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('trace context on the wire', () => {
  it('travels as an SQS message attribute, not in the body, and comes back with the sending time', () => {
    const traced = { ...d, trace: TRACEPARENT };
    expect(encodeDispatch(traced)).not.toContain(TRACEPARENT);
    const attributes = dispatchAttributes(traced);
    expect(attributes).toEqual({ traceparent: { DataType: 'String', StringValue: TRACEPARENT } });
    expect(dispatchAttributes(d)).toBeUndefined();
    const back = parseDispatchRecord({
      body: encodeDispatch(traced),
      attributes: { SentTimestamp: '1700000000123' },
      messageAttributes: { traceparent: { stringValue: TRACEPARENT } },
    });
    expect(back).toEqual({ ...d, trace: TRACEPARENT, sentAt: 1_700_000_000_123 });
    // A record without them (sent before tracing existed) is the plain dispatch.
    expect(parseDispatchRecord({ body: encodeDispatch(d) })).toEqual(d);
  });
});

describe('tracing off (no SDK registered: the default)', () => {
  it('stamps no trace context and keeps the dispatches as they are', async () => {
    expect(withTrace([d])[0]).toBe(d);
    const sent: Dispatch[][] = [];
    const queue = tracedQueue({ send: async (x) => void sent.push([...x]), waiting: async () => 0 }, () => 42);
    await inSpan('start w', {}, () => queue.send([d]));
    expect(sent).toEqual([[{ ...d, sentAt: 42 }]]);
  });

  it('is configured only by an OTLP endpoint, and OTEL_SDK_DISABLED wins', () => {
    expect(tracingConfigured({})).toBe(false);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
  });
});

describe('tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  const received: { path: string; bytes: number }[] = [];
  const server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => {
      received.push({ path: req.url ?? '', bytes });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  afterAll(() => {
    server.close();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('loads the SDK, propagates W3C trace context and exports spans over OTLP/HTTP when flushed', async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const env = { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint };
    const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint; // the exporter reads its endpoint itself
    try {
      const tracing = await startTracingFromEnv(env);
      expect(tracing).toBeDefined();
      const stamped = await inSpan('start w', { 'sayiir.workflow': 'w' }, async (span) => {
        const [x] = withTrace([d]);
        return { x, traceId: span.spanContext().traceId };
      });
      expect(stamped.x?.trace).toMatch(new RegExp(`^00-${stamped.traceId}-[0-9a-f]{16}-01$`));
      await tracing?.flush();
      expect(received.map((r) => r.path)).toEqual(['/v1/traces']);
      expect(received[0]?.bytes).toBeGreaterThan(0);
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
    }
  });
});
