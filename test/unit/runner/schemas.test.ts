import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { flow, runWorkflow, task } from '../../../shared/index.ts';

describe('task input and output schemas', () => {
  const parse = task('parse', (n: number) => ({ doubled: n * 2 }), {
    input: z.number().int().nonnegative(),
    output: z.object({ doubled: z.number().max(100) }),
    retry: { maxAttempts: 5 },
  });
  const f = flow<number>('schemas').then(parse).build();

  it('passes valid values through the schemas', async () => {
    expect((await runWorkflow(f, 21)).output).toEqual({ doubled: 42 });
  });

  it('fails at once, without retries, on an input that breaks the schema', async () => {
    let calls = 0;
    const counted = flow<number>('schemas-in')
      .then(
        task(
          'count',
          (n: number) => {
            calls++;
            return n;
          },
          { input: z.number().int(), retry: { maxAttempts: 5 } },
        ),
      )
      .build();
    const r = await runWorkflow(counted, 1.5);
    expect(calls).toBe(0);
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ name: 'TaskSchemaError', attempts: 1, taskKey: 'count' });
    expect(r.error?.message).toMatch(/input failed its schema/);
  });

  it('fails at once on an output that breaks the schema, and commits nothing', async () => {
    const r = await runWorkflow(f, 60);
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ name: 'TaskSchemaError', attempts: 1 });
    expect(r.error?.message).toMatch(/output failed its schema/);
    await expect(r.store.getValues(r.instanceId, ['out:parse'])).rejects.toThrow(/not stored/);
  });
});
