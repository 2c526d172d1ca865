import type { AnyFlow } from '../shared/index.ts';
import { hello } from './hello.ts';
import { fulfil } from './order.ts';

/** The workflows this deployment serves, by name. */
export const workflows: readonly AnyFlow[] = [hello, fulfil];
