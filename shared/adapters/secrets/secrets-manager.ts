import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretNotFoundError } from '../../ports/errors.ts';
import type { Secrets } from '../../ports/secrets.ts';

/**
 * Secrets from AWS Secrets Manager. The client is injectable; each secret is
 * read once per process and cached for `ttlMs`.
 */
export class SecretsManagerSecrets implements Secrets {
  private readonly cache = new Map<string, { value: Promise<string>; at: number }>();

  constructor(
    private readonly client: SecretsManagerClient = new SecretsManagerClient({}),
    /** Cache lifetime. @default 300_000 */
    private readonly ttlMs = 300_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(name: string): Promise<string> {
    const hit = this.cache.get(name);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value;
    const value = this.fetch(name);
    this.cache.set(name, { value, at: this.now() });
    value.catch(() => this.cache.delete(name));
    return value;
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
