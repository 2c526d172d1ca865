import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DispatchParseError } from '../../shared/adapters/sqs/errors.ts';
import { parseDispatch } from '../../shared/adapters/sqs/message.ts';
import { ensureError } from '../../shared/engine/errors.ts';
import { processDispatch, type WorkerDeps, WorkerKilledError } from '../../shared/runtime/worker.ts';

/**
 * The worker Lambda for one pool: SQS batch in, partial batch failures out.
 * A record fails (and comes back after its visibility timeout) only when it
 * could not be processed for a transient reason; a malformed message is
 * logged and dropped, since redelivering it cannot help.
 */
export function makeHandler(deps: WorkerDeps) {
  const base = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const remaining = () => context.getRemainingTimeInMillis();
    const settled = await Promise.allSettled(event.Records.map((record) => handleRecord(deps, record, remaining)));
    // A killed worker (fault injection) takes the whole invocation down, once its records have stopped.
    const killed = settled.find((r) => r.status === 'rejected');
    if (killed?.status === 'rejected') throw killed.reason;
    const ids = settled.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
    return { batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) };
  };
  return middy(base);
}

async function handleRecord(deps: WorkerDeps, record: SQSRecord, remaining: () => number): Promise<string | undefined> {
  try {
    const dispatch = parseDispatch(record.body);
    await processDispatch(deps, dispatch, remaining);
    return undefined;
  } catch (e) {
    // A killed worker takes its whole invocation down, as a crashed Lambda does.
    if (e instanceof WorkerKilledError) throw e;
    if (e instanceof DispatchParseError) {
      console.error(
        JSON.stringify({
          level: 'error',
          msg: 'malformed dispatch dropped',
          messageId: record.messageId,
          error: e.message,
        }),
      );
      return undefined;
    }
    console.error(
      JSON.stringify({
        level: 'warn',
        msg: 'dispatch will be redelivered',
        messageId: record.messageId,
        error: ensureError(e).message,
      }),
    );
    return record.messageId;
  }
}
