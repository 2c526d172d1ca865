import { parseArgs } from 'node:util';
import { startTracingFromEnv } from '../shared/observability/otlp.ts';
import { parseRetention } from '../shared/runtime/defaults.ts';
import { BACKEND_NAMES, startLocalStack } from './stack.ts';

/**
 * `npm start`: the local stack in the foreground, on the embedded back end;
 * `npm start -- --emulate-aws` runs it over the AWS wire protocols instead.
 * Environment: SAYIIR_PORT (default 8787), SAYIIR_DATA_DIR (default .sayiir),
 * SAYIIR_METRICS_PORT (default 9464, on 127.0.0.1 only), LOG_LEVEL
 * (default INFO), SAYIIR_LOG_FORMAT (`json`, or `pretty`: the default on a
 * terminal), SAYIIR_RETENTION (milliseconds or `forever`; default 90 days),
 * OTEL_EXPORTER_OTLP_ENDPOINT (traces; off by default).
 */
const ENVIRONMENT = `Environment: SAYIIR_PORT (default 8787), SAYIIR_DATA_DIR (default .sayiir),
  SAYIIR_METRICS_PORT (default 9464), LOG_LEVEL (default INFO), SAYIIR_LOG_FORMAT (json | pretty),
  SAYIIR_RETENTION (how long a finished run is kept: milliseconds, or forever; default 90 days),
  OTEL_EXPORTER_OTLP_ENDPOINT (export traces; off by default)`;

const { values } = parseArgs({
  options: {
    'emulate-aws': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(`Usage: npm start [-- --emulate-aws]

  (default)       embedded back end: SQLite and in-process queues, fast, for everyday work
  --emulate-aws   AWS emulation: DynamoDB (dynalite), SQS and S3 (fauxqs) over the real wire protocols

${ENVIRONMENT}`);
  process.exit(0);
}
const emulateAws = values['emulate-aws'] === true;
const port = Number(process.env.SAYIIR_PORT ?? 8787);
const dataDir = process.env.SAYIIR_DATA_DIR ?? '.sayiir';
const metricsPort = Number(process.env.SAYIIR_METRICS_PORT ?? 9464);
const logFormat =
  (process.env.SAYIIR_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json')) === 'pretty' ? 'pretty' : 'json';
// Trace export when OTEL_EXPORTER_OTLP_ENDPOINT is set (off otherwise).
await startTracingFromEnv();
const stack = await Promise.resolve()
  .then(() => parseRetention(process.env.SAYIIR_RETENTION, 'SAYIIR_RETENTION'))
  .then((retention) =>
    startLocalStack({
      emulateAws,
      ...(retention === undefined ? {} : { retention }),
      port,
      dataDir,
      metricsPort,
      logFormat,
      log: (line) => console.log(line),
    }),
  )
  .catch((e: unknown) => {
    // A refusal to start (a broken secrets file, a data folder in use or of another schema) is a message, not a stack trace.
    console.error(`Sayiir local stack cannot start: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });

const switchHint = emulateAws
  ? 'npm start   (without --emulate-aws: the embedded back end, much faster)'
  : 'npm start -- --emulate-aws   (DynamoDB, SQS and S3 over the wire, as on AWS)';
const kept =
  stack.backend === 'embedded'
    ? `${stack.databasePath} and payloads/`
    : 'dynamodb/ and payloads/ (queue messages are in memory)';

console.log(`Sayiir local stack is up.
  API:       ${stack.url}/v1
  UI:        ${stack.url}/ui   (paste the API key when it asks)
  API key:   ${stack.apiKey}   (header x-api-key)
  Back end:  ${BACKEND_NAMES[stack.backend]}
  Data:      ${stack.dataDir}  (${kept}; delete the folder to start afresh)
  Pools:     ${stack.pools.join(', ')}
  Metrics:   ${stack.metricsUrl}  (OpenMetrics, for Prometheus; this machine only)
  Switch:    ${switchHint}

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
