import { startTracingFromEnv } from '../shared/observability/otlp.ts';
import { startLocalStack } from './stack.ts';

/**
 * `npm start`: the local stack in the foreground. Environment:
 * SAYIIR_PORT (default 8787), SAYIIR_DATA_DIR (default .sayiir),
 * SAYIIR_METRICS_PORT (default 9464, on 127.0.0.1 only), LOG_LEVEL
 * (default INFO), SAYIIR_LOG_FORMAT (`json`, or `pretty`: the default on a
 * terminal), OTEL_EXPORTER_OTLP_ENDPOINT (traces; off by default).
 */
const port = Number(process.env.SAYIIR_PORT ?? 8787);
const dataDir = process.env.SAYIIR_DATA_DIR ?? '.sayiir';
const metricsPort = Number(process.env.SAYIIR_METRICS_PORT ?? 9464);
const logFormat =
  (process.env.SAYIIR_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json')) === 'pretty' ? 'pretty' : 'json';
// Trace export when OTEL_EXPORTER_OTLP_ENDPOINT is set (off otherwise).
await startTracingFromEnv();
const stack = await startLocalStack({
  port,
  dataDir,
  metricsPort,
  logFormat,
  log: (line) => console.log(line),
}).catch((e: unknown) => {
  // A refusal to start (a broken secrets file, a data folder in use) is a message, not a stack trace.
  console.error(`Sayiir local stack cannot start: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

console.log(`Sayiir local stack is up.
  API:       ${stack.url}/v1
  UI:        ${stack.url}/ui   (paste the API key when it asks)
  API key:   ${stack.apiKey}   (header x-api-key)
  Data:      ${stack.dataDir}  (delete it to start afresh)
  Pools:     ${stack.pools.join(', ')}
  Metrics:   ${stack.metricsUrl}  (OpenMetrics, for Prometheus; this machine only)

Try:
  curl -s -X POST ${stack.url}/v1/workflows/hello/instances -H 'x-api-key: ${stack.apiKey}' -H 'content-type: application/json' -d '{"input":{"name":"Ada"}}'
  npx sayiir start hello '{"name":"Ada"}'`);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping…`);
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
