/**
 * Type tests of the typed client, checked by `tsc --noEmit`: each
 * `@ts-expect-error` line must fail to compile.
 */
import { type RunHandle, SayiirClient } from '../../shared/client/index.ts';
import { flow } from '../../shared/index.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(_?: T) => undefined;

const greet = flow<{ name: string }>('greet')
  .then('hi', (i) => ({ greeting: `Hello, ${i.name}` }))
  .build();

async function typed(sayiir: SayiirClient) {
  const run = await sayiir.start(greet, { name: 'Ada' });
  assertType<Equal<typeof run, RunHandle<{ greeting: string }>>>();
  const out = await run.result();
  assertType<Equal<typeof out, { greeting: string }>>();

  // @ts-expect-error the flow's input is { name: string }
  await sayiir.start(greet, { nom: 'Ada' });
  // @ts-expect-error a number is no input of greet
  await sayiir.start(greet, 7);

  const greeting: string = (await run.result()).greeting;
  // @ts-expect-error the output has no field 'name'
  (await run.result()).name;
  // @ts-expect-error the output is an object, not a number
  const n: number = await run.result();

  // By name, the output is what the caller says, unknown by default.
  const byName = await sayiir.start('greet', { name: 'Ada' });
  assertType<Equal<Awaited<ReturnType<typeof byName.result>>, unknown>>();
  return [greeting, n];
}

void typed;
void new SayiirClient({ url: 'http://127.0.0.1:8787', apiKey: 'k' });
