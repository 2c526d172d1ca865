import { describe, expect, it } from 'vitest';
import { branch, flow, TaskSchemaError, task } from '../../../shared/index.ts';
import { SecretNotFoundError } from '../../../shared/ports/errors.ts';
import { fakeTaskContext, MemorySecrets, runTask, runWorkflow, withTasks } from '../../../shared/testing/index.ts';

const charge = task('charge', async (order: { id: string; amount: number }, ctx) => ({
  id: order.id,
  key: ctx.idempotencyKey,
  token: await ctx.secret('stripe'),
}));
const email = task('email', async (id: string) => `mailed ${id}`);
const ship = task('ship', async (id: string) => `shipped ${id}`);
const fulfil = flow<{ id: string; amount: number }>('fulfil')
  .then(charge)
  .then(task('id-of', (r: { id: string; key: string; token: string }) => r.id))
  .fork([branch('email', email), branch('ship', ship)])
  .join('done', ([mailed, shipped]) => ({ mailed, shipped }))
  .build();

describe('runTask', () => {
  it('runs one task with a fake context: its secrets and a stable idempotency key', async () => {
    const out = await runTask(charge, { id: 'o-1', amount: 3 }, { secrets: { stripe: 'sk_test' }, instanceId: 'i-9' });
    expect(out).toEqual({ id: 'o-1', key: 'i-9:charge', token: 'sk_test' });
  });

  it('rejects a secret the test did not give', async () => {
    await expect(runTask(charge, { id: 'o-1', amount: 3 })).rejects.toBeInstanceOf(SecretNotFoundError);
  });

  it('applies the input and output schemas as the worker does', async () => {
    const positive = { parse: (v: unknown) => (typeof v === 'number' && v > 0 ? v : fail()) };
    const double = task('double', (n: number) => n * 2, { input: positive, output: positive });
    expect(await runTask(double, 4)).toBe(8);
    await expect(runTask(double, -1)).rejects.toMatchObject({ name: 'TaskSchemaError', which: 'input' });
    const negate = task('negate', (n: number) => -n, { output: positive });
    await expect(runTask(negate, 1)).rejects.toBeInstanceOf(TaskSchemaError);
  });

  it('gives the task the abort signal the test controls', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    const ctx = fakeTaskContext('t', { signal: controller.signal, attempt: 3 });
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.attempt).toBe(3);
  });
});

describe('withTasks', () => {
  it('swaps a task by id, in the main path and inside fork branches, and keeps the flow hash', async () => {
    const fake = withTasks(fulfil, {
      charge: async (order: { id: string }) => ({ id: `${order.id}-fake` }),
      ship: async (id: string) => `teleported ${id}`,
    });
    expect(fake.hash).toBe(fulfil.hash);
    const { output } = await runWorkflow(fake, { id: 'o-2', amount: 1 });
    expect(output).toEqual({ mailed: 'mailed o-2-fake', shipped: 'teleported o-2-fake' });
  });

  it('leaves the original flow untouched', async () => {
    withTasks(fulfil, { email: async () => 'never' });
    const { output } = await runWorkflow(
      fulfil,
      { id: 'o-3', amount: 1 },
      { secrets: new MemorySecrets({ stripe: 'k' }) },
    );
    expect(output).toEqual({ mailed: 'mailed o-3', shipped: 'shipped o-3' });
  });

  it('refuses an id that names no task of the flow', () => {
    expect(() => withTasks(fulfil, { chrage: async () => 1 })).toThrow(/no task 'chrage'/);
  });
});

function fail(): never {
  throw new Error('not positive');
}
