export type { DeadLetterMessage, ReceivedDeadLetter } from './dead-letters.ts';
export { DeadLetters } from './dead-letters.ts';
export type { FailedDispatch } from './errors.ts';
export { DispatchParseError, QueueNotFoundError, QueueSendError } from './errors.ts';
export {
  dispatchDeduplicationId,
  dispatchGroupId,
  encodeDispatch,
  fifoId,
  MAX_DISPATCH_BODY_BYTES,
  parseDispatch,
} from './message.ts';
export type { DlqUrlResolver, QueueUrlResolver } from './queue-urls.ts';
export { QueueUrlCache } from './queue-urls.ts';
export type { SqsTaskQueueOptions } from './task-queue.ts';
export { SqsTaskQueue } from './task-queue.ts';
