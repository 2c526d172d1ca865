// biome-ignore-all lint/suspicious/noExplicitAny: test responses are read loosely
import type { LocalStack } from '../../local/stack.ts';

/**
 * A raw HTTP probe of the local stack's API, for tests of the API's own
 * answers: it sends what the typed client never would (no key, a raw body,
 * any path) and hands back every status as data. Code that drives runs uses
 * `SayiirClient` (`shared/client/`), as the CLI, the chaos suite and the
 * benchmarks do.
 */
export function apiClient(stack: Pick<LocalStack, 'url' | 'apiKey'>) {
  return async function call(
    method: string,
    path: string,
    body?: unknown,
    options: { readonly key?: string | null; readonly raw?: string } = {},
  ): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const key = options.key === undefined ? stack.apiKey : options.key;
    if (key !== null) headers['x-api-key'] = key;
    const res = await fetch(`${stack.url}/v1${path}`, {
      method,
      headers,
      ...(options.raw !== undefined ? { body: options.raw } : body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, json };
  };
}

/** Polls `check` until it returns a value other than `undefined`, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
