/** The fauxqs harness lives with the local stack; tests use the same one. */
export { type Fauxqs, type PoolQueueUrls, startFauxqs, UNRESOLVABLE_QUEUE_HOST } from '../../local/fauxqs.ts';
