import { SayiirApiError, SayiirClient } from '../../shared/client/client.ts';

/**
 * The API key for this browser tab: typed in by the user, kept in
 * sessionStorage only (gone when the tab closes, never in localStorage or a
 * cookie), and sent as `x-api-key` by the typed client on every data call.
 */

const KEY = 'sayiir.apiKey';

/** The API's base URL: the page's own origin and stage, `/ui` taken off. */
export function apiBase(loc: Pick<Location, 'origin' | 'pathname'> = location): string {
  return `${loc.origin}${loc.pathname.replace(/\/ui(\/.*)?$/, '')}`;
}

export const storedKey = (): string | undefined => sessionStorage.getItem(KEY) ?? undefined;
export const storeKey = (key: string) => sessionStorage.setItem(KEY, key);
export const forgetKey = () => sessionStorage.removeItem(KEY);

export const clientFor = (apiKey: string): SayiirClient => new SayiirClient({ url: apiBase(), apiKey });

/** An error as a line a person can act on. */
export function describeError(e: unknown): string {
  if (e instanceof SayiirApiError) {
    if (e.status === 401) return 'The API refused this key (401): it is missing or not a valid API key.';
    if (e.status === 403) return `Not allowed (403): ${e.message}`;
    return `${e.message} (${e.status} ${e.code})`;
  }
  return e instanceof Error ? e.message : String(e);
}

export const isUnauthorized = (e: unknown): boolean => e instanceof SayiirApiError && e.status === 401;
