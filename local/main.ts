import { parseArgs } from 'node:util';
import { DataDirLockedError } from '../shared/adapters/fs/data-dir-lock.ts';
import { SchemaVersionError } from '../shared/adapters/sqlite/database.ts';
import { BACKEND_NAMES, startLocalStack } from './stack.ts';

/**
 * `npm start`: the local stack in the foreground, on the embedded back end;
 * `npm start -- --emulate-aws` runs it over the AWS wire protocols instead.
 * Environment: SAYIIR_PORT (default 8787), SAYIIR_DATA_DIR (default .sayiir).
 */
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

Environment: SAYIIR_PORT (default 8787), SAYIIR_DATA_DIR (default .sayiir)`);
  process.exit(0);
}
const emulateAws = values['emulate-aws'] === true;
const port = Number(process.env.SAYIIR_PORT ?? 8787);
const dataDir = process.env.SAYIIR_DATA_DIR ?? '.sayiir';
const stack = await startLocalStack({ emulateAws, port, dataDir, log: (line) => console.log(line) }).catch(
  (err: unknown) => {
    // A folder in use or written by another schema: the message says what to do, a stack trace would not.
    if (err instanceof DataDirLockedError || err instanceof SchemaVersionError) {
      console.error(`Sayiir local stack not started: ${err.message}`);
      process.exit(1);
    }
    throw err;
  },
);

const switchHint = emulateAws
  ? 'npm start   (without --emulate-aws: the embedded back end, much faster)'
  : 'npm start -- --emulate-aws   (DynamoDB, SQS and S3 over the wire, as on AWS)';
const kept =
  stack.backend === 'embedded'
    ? `${stack.databasePath} and payloads/`
    : 'dynamodb/ and payloads/ (queue messages are in memory)';

console.log(`Sayiir local stack is up.
  API:       ${stack.url}/v1
  API key:   ${stack.apiKey}   (header x-api-key)
  Back end:  ${BACKEND_NAMES[stack.backend]}
  Data:      ${stack.dataDir}  (${kept}; delete the folder to start afresh)
  Pools:     ${stack.pools.join(', ')}
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
