// Type-checks the installed package's declarations with NodeNext, as a TypeScript user's tsc sees them.
import { flow, task } from 'sayiir-aws';
import type { SayiirClient } from 'sayiir-aws/client';
import { runTask, runWorkflow, withTasks } from 'sayiir-aws/testing';

const double = task('double', async (n: number) => n * 2);
const doubler = flow<number>('doubler').then(double).build();
export async function check(client: SayiirClient): Promise<number> {
  const handle = await client.start(doubler, 21);
  const fromTask: number = await runTask(double, 1);
  const local = await runWorkflow(withTasks(doubler, { double: async (n: number) => n }), 1);
  return (await handle.result()) + fromTask + (local.output ?? 0);
}
