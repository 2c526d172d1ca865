// A user's script: the local stack started from the installed package, driven through the typed client.
import { SayiirClient } from 'sayiir-aws/client';
import { startLocalStack } from 'sayiir-aws/local';
import { approval, greeting, workflows } from './workflows.mjs';

const stack = await startLocalStack({ workflows, port: 0, dataDir: process.env.DATA_DIR, metricsPort: 0 });
const out = {};
try {
  const client = new SayiirClient({ url: stack.url, apiKey: stack.apiKey });
  const run = await client.start(greeting, { name: 'ada' });
  out.result = await run.result({ timeoutMs: 20_000 });

  const approved = await client.start(approval, { item: 'laptop' });
  await approved.signal('approve', { by: 'grace' });
  out.signalled = await approved.result({ timeoutMs: 20_000 });

  const cancelled = await client.start(approval, { item: 'yacht' });
  out.cancelReturned = await cancelled.cancel('too dear');
  out.cancelled = (await cancelled.status()).status;
} finally {
  await stack.stop();
}
console.log(JSON.stringify(out));
