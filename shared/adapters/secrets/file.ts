import { readFile } from 'node:fs/promises';
import { SayiirError } from '../../errors.ts';
import { SecretNotFoundError } from '../../ports/errors.ts';
import type { Secrets } from '../../ports/secrets.ts';

/** The environment variable that overrides a secret: `SAYIIR_SECRET_` + the name, upper-cased, non-alphanumerics as `_`. */
export function secretEnvName(name: string): string {
  return `SAYIIR_SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * The secrets file exists but cannot be used: it cannot be read (a folder,
 * no permission), is not JSON, or is JSON but not an object of
 * `{ "name": value }`. Unlike {@link SecretNotFoundError} this is not a
 * missing secret: the file is at fault, and nothing should replace it.
 */
export class SecretsFileUnreadableError extends SayiirError {
  override readonly name = 'SecretsFileUnreadableError';
  constructor(
    /** The file at fault. */
    readonly path: string,
    /** What is wrong with it, e.g. the JSON parser's message. */
    readonly reason: string,
    options?: { readonly cause?: unknown },
  ) {
    super(`secrets file ${path} ${reason}`, options);
  }
}

/**
 * The values of a secrets file (a JSON object of `{ "name": value }`), or
 * `undefined` when the file does not exist.
 *
 * @throws {SecretsFileUnreadableError} it exists but cannot be read, is not
 *   JSON, or is not a JSON object.
 * @example
 * ```ts
 * const values = (await readSecretsFile('.sayiir/secrets.json')) ?? {};
 * ```
 */
export async function readSecretsFile(path: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SecretsFileUnreadableError(path, `cannot be read: ${(e as Error).message}`, { cause: e });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new SecretsFileUnreadableError(path, `is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SecretsFileUnreadableError(path, 'must hold a JSON object of { "name": value }');
  }
  return value as Record<string, unknown>;
}

/**
 * Secrets for the local stack: an environment variable (see
 * {@link secretEnvName}) wins, else a JSON file of `{ "name": "value" }`
 * (re-read on every call, uncached, so edits apply without a restart).
 *
 * A missing file or a name it does not hold is a {@link SecretNotFoundError};
 * a file that exists but is broken is a {@link SecretsFileUnreadableError}
 * naming the file, so a typo in the file never reads as a missing secret.
 */
export class FileSecrets implements Secrets {
  constructor(
    private readonly path: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async get(name: string): Promise<string> {
    const fromEnv = this.env[secretEnvName(name)];
    if (fromEnv !== undefined) return fromEnv;
    const values = await readSecretsFile(this.path);
    // Own keys only: 'constructor' is not a secret of every file.
    const v = values && Object.hasOwn(values, name) ? values[name] : undefined;
    if (v === undefined) throw new SecretNotFoundError(name);
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
}
