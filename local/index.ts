/**
 * The local stack (`sayiir-aws/local`): the api, worker and reaper handlers
 * on one machine, over the embedded back end (SQLite and in-process queues)
 * by default. What `npm start` runs, as a function, for scripts and tests.
 *
 * @example
 * ```ts
 * import { startLocalStack } from 'sayiir-aws/local';
 * import { workflows } from './workflows.ts';
 * const stack = await startLocalStack({ workflows, port: 0, dataDir: '.sayiir' });
 * // stack.url, stack.apiKey
 * await stack.stop();
 * ```
 */

export {
  BACKEND_NAMES,
  type EmbeddedLocalStack,
  type EmulatedLocalStack,
  type LocalStack,
  type LocalStackOptions,
  startLocalStack,
} from './stack.ts';
