import { createHash, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../ports/clock.ts';
import type { Secrets } from '../ports/secrets.ts';

/** Name of the secret holding the API keys. */
export const DEFAULT_API_KEY_SECRET = 'sayiir/api-keys';

/**
 * How long an {@link ApiKeyAuthorizer} trusts the keys it read, and so the
 * longest a key removed from the API key secret keeps working (a key added
 * is accepted within the same time):
 *
 * ```
 * key removed from the secret at r
 * ──┬────────────────────────────────────────┬──▶ time
 *   r-ε: a check reads the secret and        r-ε+API_KEY_CACHE_MS: the next check
 *   caches the keys, the removed one too     reads the secret again: refused
 * ```
 *
 * That bound holds only if the secret itself is read uncached: the api
 * function reads it through `SecretsManagerSecrets` with `ttlMs: 0`, the
 * local stack through `FileSecrets`. API Gateway's authorizer only checks
 * that a key header is there, so its cached answers do not extend it.
 */
export const API_KEY_CACHE_MS = 60_000;

/** The API key secret's value is neither a JSON array of strings nor one string. */
export class ApiKeySecretFormatError extends Error {
  override readonly name = 'ApiKeySecretFormatError';
  constructor(readonly secretName: string) {
    super(`secret '${secretName}' must hold a JSON array of API keys (strings) or a single key`);
  }
}

/**
 * The keys in the secret's text: a JSON array of strings, a JSON string, or
 * (not JSON at all) the raw text as one key. Blank keys are dropped, so an
 * empty header never matches.
 *
 * @throws {ApiKeySecretFormatError} JSON of another shape.
 */
export function parseApiKeys(text: string, secretName: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text.trim();
  }
  const keys = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(keys) || !keys.every((k): k is string => typeof k === 'string')) {
    throw new ApiKeySecretFormatError(secretName);
  }
  return keys.filter((k) => k.length > 0);
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Checks `x-api-key` values against the keys in a secret.
 *
 * Keys are compared as SHA-256 digests with `timingSafeEqual`: equal-length
 * buffers, so neither a key's content nor its length leaks through timing.
 * The keys are cached for {@link API_KEY_CACHE_MS} by the given clock; a
 * failed read is not cached. Give it secrets that do not cache: a removed
 * key is then refused `API_KEY_CACHE_MS` after its removal at the latest.
 *
 * @example
 * ```ts
 * const auth = new ApiKeyAuthorizer(secrets, systemClock);
 * if (!(await auth.verify(headerValue(event, 'x-api-key')))) return unauthorized();
 * ```
 */
export class ApiKeyAuthorizer {
  private cached: { readonly digests: readonly Buffer[]; readonly at: number } | undefined;
  private loading: Promise<readonly Buffer[]> | undefined;

  constructor(
    private readonly secrets: Secrets,
    private readonly clock: Clock,
    /** @default 'sayiir/api-keys' */
    private readonly secretName: string = DEFAULT_API_KEY_SECRET,
    /** @default API_KEY_CACHE_MS (60_000) */
    private readonly cacheMs: number = API_KEY_CACHE_MS,
  ) {}

  /**
   * True when `presented` is one of the keys.
   *
   * @throws {SecretNotFoundError} the secret cannot be read (a deployment
   *   fault, not the client's: surfaces as a 500); so does any other error
   *   of the secrets adapter (e.g. a broken local secrets file).
   * @throws {ApiKeySecretFormatError} the secret holds something else.
   */
  async verify(presented: string | undefined): Promise<boolean> {
    if (presented === undefined || presented.length === 0) return false;
    const keys = await this.keys();
    const given = digest(presented);
    let ok = false;
    // No early exit: every key is compared whatever the outcome.
    for (const key of keys) {
      if (timingSafeEqual(given, key)) ok = true;
    }
    return ok;
  }

  private async keys(): Promise<readonly Buffer[]> {
    const now = this.clock.now();
    if (this.cached && now >= this.cached.at && now - this.cached.at < this.cacheMs) return this.cached.digests;
    // Concurrent requests at expiry share one read.
    this.loading ??= this.load(now).finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(now: number): Promise<readonly Buffer[]> {
    const text = await this.secrets.get(this.secretName);
    const digests = parseApiKeys(text, this.secretName).map(digest);
    this.cached = { digests, at: now };
    return digests;
  }
}
