import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretNotFoundError } from '../../ports/errors.ts';
import type { Secrets } from '../../ports/secrets.ts';

/** How long {@link SecretsManagerSecrets} trusts a value it read, by default (tasks' secrets). */
export const SECRETS_CACHE_MS = 300_000;

/** Options of {@link SecretsManagerSecrets}. */
export interface SecretsManagerSecretsOptions {
  /**
   * How long a value read is returned without reading it again: a changed
   * secret is seen at most this late. `0` reads on every call (for a caller
   * that caches on its own terms, as the API key check does).
   * @default SECRETS_CACHE_MS (300_000)
   */
  readonly ttlMs?: number;
  /** The time, in ms. @default Date.now */
  readonly now?: () => number;
}

/**
 * Secrets from AWS Secrets Manager. The client is injectable; each secret is
 * read once per `ttlMs` per process (concurrent calls share one read), and a
 * failed read is not kept.
 *
 * @example
 * ```ts
 * const taskSecrets = new SecretsManagerSecrets(new SecretsManagerClient({}));
 * const uncached = new SecretsManagerSecrets(client, { ttlMs: 0 });
 * ```
 */
export class SecretsManagerSecrets implements Secrets {
  private readonly cache = new Map<string, { value: Promise<string>; at: number }>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly client: SecretsManagerClient = new SecretsManagerClient({}),
    options: SecretsManagerSecretsOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? SECRETS_CACHE_MS;
    this.now = options.now ?? Date.now;
  }

  get(name: string): Promise<string> {
    if (this.ttlMs <= 0) return this.fetch(name);
    const hit = this.cache.get(name);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value;
    // The age counts from before the read: a value is never trusted longer than ttlMs after it was asked for.
    const entry = { value: this.fetch(name), at: this.now() };
    this.cache.set(name, entry);
    entry.value.catch(() => {
      // Only this read's entry: a newer one may have replaced it meanwhile.
      if (this.cache.get(name) === entry) this.cache.delete(name);
    });
    return entry.value;
  }

  private async fetch(name: string): Promise<string> {
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
      if (out.SecretString !== undefined) return out.SecretString;
      if (out.SecretBinary !== undefined) return Buffer.from(out.SecretBinary).toString('utf8');
    } catch (e) {
      const code = (e as { name?: string }).name;
      if (code === 'ResourceNotFoundException' || code === 'AccessDeniedException') throw new SecretNotFoundError(name);
      throw e;
    }
    throw new SecretNotFoundError(name);
  }
}
