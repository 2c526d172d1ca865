import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectDynalite } from '../../local/dynalite.ts';
import { startEmulatorThread } from '../../local/emulator-thread.ts';
import { connectFauxqs, UNRESOLVABLE_QUEUE_HOST } from '../../local/fauxqs.ts';
import { startLocalStack } from '../../local/stack.ts';
import { SayiirClient } from '../../shared/client/index.ts';
import { flow } from '../../shared/index.ts';

describe('the emulators on a thread of their own', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sayiir-emulator-thread-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('serve DynamoDB and SQS over the wire, keep the tables on their path, and release its lock on close', async () => {
    const path = join(dir, 'dynamodb');
    const first = await startEmulatorThread({ dynamoPath: path, queueHost: UNRESOLVABLE_QUEUE_HOST });
    const sqs = connectFauxqs(first.fauxqs, async () => undefined);
    const db = await connectDynalite(first.dynamo, { closeServer: () => first.close() });
    const urls = await sqs.createPoolQueues('t', 'default');
    expect(urls.high).toContain(UNRESOLVABLE_QUEUE_HOST);
    const listed = await sqs.client.send(new ListQueuesCommand({}));
    expect(listed.QueueUrls?.length).toBe(4);
    await db.client.send(
      new PutItemCommand({ TableName: db.tables.instances, Item: { pk: { S: 'p' }, sk: { S: 's' } } }),
    );
    await sqs.close();
    await db.close();

    // A second thread opens the same LevelDB folder: the first one let go of it, and the item is there.
    const second = await startEmulatorThread({ dynamoPath: path, queueHost: UNRESOLVABLE_QUEUE_HOST });
    const again = await connectDynalite(second.dynamo, { closeServer: () => second.close() });
    const got = await again.client.send(
      new GetItemCommand({ TableName: again.tables.instances, Key: { pk: { S: 'p' }, sk: { S: 's' } } }),
    );
    expect(got.Item?.pk?.S).toBe('p');
    await again.close();
  });

  it.each(['thread', 'inline'] as const)('run a workflow on the local stack with emulators: %s', async (emulators) => {
    const stack = await startLocalStack({
      emulateAws: true,
      emulators,
      dataDir: dir,
      workflows: [
        flow<number>('twice')
          .then('a', (n: number) => n * 2)
          .then('b', (n: number) => n + 1)
          .build(),
      ],
    });
    try {
      const sayiir = new SayiirClient({ url: stack.url, apiKey: stack.apiKey });
      const run = await sayiir.start<number>('twice', 20);
      expect(await run.result({ timeoutMs: 20_000 })).toBe(41);
    } finally {
      await stack.stop();
    }
  });
});
