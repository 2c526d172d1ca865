import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PRIORITIES } from '../shared/engine/task.ts';
import { jsonLog, type LogLevel } from '../shared/observability/log.ts';
import type { Telemetry } from '../shared/observability/observer.ts';
import { type OpenMetrics, openMetrics } from '../shared/observability/openmetrics.ts';
import type { TaskQueue } from '../shared/ports/task-queue.ts';

/** Options of {@link localTelemetry}. */
export interface LocalTelemetryOptions {
  /** Where log lines go. @default nowhere */
  readonly write?: (line: string) => void;
  /** @default 'json' */
  readonly format?: 'json' | 'pretty';
  /** @default LOG_LEVEL from the environment, else INFO */
  readonly level?: LogLevel;
  /** The pools whose queue depth is sampled at each scrape. */
  readonly pools: readonly string[];
  /** The queue (set once it exists) whose depth is sampled. */
  readonly queue: () => TaskQueue | undefined;
}

/**
 * The local stack's telemetry: the Lambda functions' log lines (same keys,
 * JSON or pretty) and their metrics in a Prometheus registry, with the
 * queue depth of every pool and priority read at each scrape.
 */
export function localTelemetry(o: LocalTelemetryOptions): Telemetry & { readonly metrics: OpenMetrics } {
  const log = o.write
    ? jsonLog({ write: o.write, format: o.format ?? 'json', ...(o.level ? { level: o.level } : {}) })
    : jsonLog({ level: 'SILENT' });
  const metrics = openMetrics({
    queueDepth: async () => {
      const queue = o.queue();
      if (!queue?.waiting) return [];
      const waiting = queue.waiting.bind(queue);
      const rows = o.pools.flatMap((pool) => PRIORITIES.map((priority) => ({ pool, priority })));
      return Promise.all(rows.map(async (r) => ({ ...r, value: await waiting(r.pool, r.priority) })));
    },
  });
  return { log, metrics };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** `http://127.0.0.1:<port>/metrics` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (OpenMetrics text) on 127.0.0.1 only, apart from the
 * API: Prometheus scrapes it without an API key, and nothing of it is
 * reachable from another machine. (Deployed, metrics are EMF in CloudWatch:
 * the API has no `/metrics`, locally or on AWS.)
 *
 * @example
 * ```ts
 * const server = await serveMetrics(metrics, 9464); // scrape http://127.0.0.1:9464/metrics
 * ```
 */
export async function serveMetrics(metrics: OpenMetrics, port = 0): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    metrics.render().then(
      (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
