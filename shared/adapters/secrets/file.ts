import { readFile } from 'node:fs/promises';
import { SecretNotFoundError } from '../../ports/errors.ts';
import type { Secrets } from '../../ports/secrets.ts';

/** The environment variable that overrides a secret: `SAYIIR_SECRET_` + the name, upper-cased, non-alphanumerics as `_`. */
export function secretEnvName(name: string): string {
  return `SAYIIR_SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Secrets for the local stack: an environment variable (see
 * {@link secretEnvName}) wins, else a JSON file of `{ "name": "value" }`
 * (re-read on each miss, so edits apply without a restart).
 */
export class FileSecrets implements Secrets {
  constructor(
    private readonly path: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async get(name: string): Promise<string> {
    const fromEnv = this.env[secretEnvName(name)];
    if (fromEnv !== undefined) return fromEnv;
    let values: Record<string, unknown>;
    try {
      values = JSON.parse(await readFile(this.path, 'utf8')) as Record<string, unknown>;
    } catch {
      throw new SecretNotFoundError(name);
    }
    const v = values[name];
    if (v === undefined) throw new SecretNotFoundError(name);
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
}
