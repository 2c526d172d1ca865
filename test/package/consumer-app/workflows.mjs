// A user's workflows, in their own file: bundled into the engine's functions at synth.
import { flow, task } from 'sayiir-aws';

const greet = task('consumer-greet', async (input) => `hello ${input.name}`);
const shout = task('consumer-shout', async (text) => text.toUpperCase());
export const greeting = flow('consumer-greeting').then(greet).then(shout).build();

const ask = task('consumer-ask', async (request) => request);
const close = task('consumer-close', async (decision) => ({ approvedBy: decision.by }));
export const approval = flow('consumer-approval').then(ask).waitForSignal('wait', 'approve').then(close).build();

export const workflows = [greeting, approval];
