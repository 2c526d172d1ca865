import { SecretNotFoundError } from '../../ports/errors.ts';
import type { Secrets } from '../../ports/secrets.ts';

/** Secrets from a plain object (tests) or the environment (`SAYIIR_SECRET_<NAME>`). */
export class MemorySecrets implements Secrets {
  constructor(private readonly values: Readonly<Record<string, string>> = {}) {}

  async get(name: string): Promise<string> {
    const v = this.values[name];
    if (v === undefined) throw new SecretNotFoundError(name);
    return v;
  }
}
