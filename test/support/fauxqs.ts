import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** The fauxqs harness lives with the local stack; tests use the same one. */
export { type Fauxqs, type PoolQueueUrls, startFauxqs, UNRESOLVABLE_QUEUE_HOST } from '../../local/fauxqs.ts';

/** How many messages a queue holds: visible, and received but not deleted (in flight). */
export async function queueDepth(client: SQSClient, queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes?.ApproximateNumberOfMessages),
    inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible),
  };
}
