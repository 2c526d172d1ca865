import { flow } from '../shared/index.ts';

/** The smallest workflow: one task. */
export const hello = flow<{ name: string }>('hello', {
  description: 'Greets someone.',
  input: {
    parse(value: unknown): { name: string } {
      const name = (value as { name?: unknown } | null)?.name;
      if (typeof name !== 'string' || name.length === 0) throw new Error('name: expected a non-empty string');
      return { name };
    },
  },
})
  .then('greet', ({ name }) => ({ greeting: `Hello, ${name}!` }))
  .build();
