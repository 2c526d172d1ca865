/**
 * Counts the requests an AWS SDK v3 client sends, by command name, with a
 * middleware at the `initialize` step. Used by tests to assert requests per
 * step and by benchmarks to price a run.
 *
 * @example
 * ```ts
 * const counter = countRequests(dynamo);
 * // ... run a workflow ...
 * counter.count('PutItemCommand');
 * ```
 */
export interface RequestCounter {
  /** Requests of one command, or of all when omitted. */
  count(command?: string): number;
  /** Counts by command name. */
  snapshot(): Record<string, number>;
  reset(): void;
}

interface MiddlewareStackLike {
  add(
    middleware: (
      next: (args: unknown) => Promise<unknown>,
      context: { commandName?: string },
    ) => (args: unknown) => Promise<unknown>,
    options: { step: 'initialize'; name: string },
  ): void;
}

export function countRequests(client: { middlewareStack: unknown }, name = 'sayiirRequestCounter'): RequestCounter {
  const counts = new Map<string, number>();
  (client.middlewareStack as MiddlewareStackLike).add(
    (next, context) => async (args) => {
      const command = context.commandName ?? 'unknown';
      counts.set(command, (counts.get(command) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name },
  );
  return {
    count: (command) => (command ? (counts.get(command) ?? 0) : [...counts.values()].reduce((a, b) => a + b, 0)),
    snapshot: () => Object.fromEntries(counts),
    reset: () => counts.clear(),
  };
}
