/** The dynalite harness lives with the local stack; tests use the same one. */
export { type Dynalite, type StartDynaliteOptions, startDynalite } from '../../local/dynalite.ts';
