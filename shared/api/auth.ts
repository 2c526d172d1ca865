import { createHash, timingSafeEqual } from 'node:crypto';
import { SayiirError } from '../errors.ts';
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

/**
 * What a key may do, each role including the ones before it:
 *
 * | role      | may |
 * |-----------|-----|
 * | `read`    | every `GET`: workflows, runs, history, dead letters (inputs and outputs included) |
 * | `operate` | start runs, send signals, cancel, pause, resume, retry a failed task, redrive dead letters |
 * | `admin`   | skip a task with an output of its choosing (it writes a result no task computed) |
 */
export type Role = 'read' | 'operate' | 'admin';

/** The roles, least to most. */
export const ROLES: readonly Role[] = ['read', 'operate', 'admin'];

/** Whether a key of role `has` may do what needs `needs`. */
export const roleAllows = (has: Role, needs: Role): boolean => ROLES.indexOf(has) >= ROLES.indexOf(needs);

/**
 * Who made a request, as the API knows it once the key checked out: the
 * key's name (recorded as the actor of what it changes; never the key),
 * its role, and the workflows it is scoped to (all when absent).
 */
export interface Caller {
  readonly name: string;
  readonly role: Role;
  readonly workflows?: ReadonlySet<string>;
}

/** Whether a caller may see and act on runs of `workflow` (within its role). */
export const callerSees = (caller: Caller, workflow: string): boolean =>
  caller.workflows === undefined || caller.workflows.has(workflow);

/** A key as the secret declares it. */
export interface ApiKeySpec {
  readonly name: string;
  readonly key: string;
  readonly role: Role;
  readonly workflows?: readonly string[];
}

/** Key names: what history shows as the actor. */
const KEY_NAME = /^[A-Za-z0-9_.:@-]{1,64}$/;

/** The API key secret holds something this API cannot read as keys; the message names the entry and field at fault. */
export class ApiKeySecretFormatError extends SayiirError {
  override readonly name = 'ApiKeySecretFormatError';
  constructor(
    readonly secretName: string,
    readonly problem = 'must hold a JSON array of API keys',
  ) {
    super(
      `secret '${secretName}' ${problem}: each a string (an admin key) or { "name", "key", "role": "read" | "operate" | "admin", "workflows"?: [...] }`,
    );
  }
}

/**
 * The keys in the secret's text. It is a JSON array whose entries are
 * either a string (a key with role `admin`, named `key-` and the first 8 hex
 * digits of its SHA-256, so history can name it without showing it) or an
 * object `{ name, key, role, workflows? }`; a JSON string or non-JSON text
 * is one admin key. Blank keys are dropped, so an empty header never
 * matches. Names are unique.
 *
 * @throws {ApiKeySecretFormatError} naming the entry and field at fault.
 * @example
 * ```ts
 * parseApiKeys('[{"name":"ci","key":"k-ci","role":"operate","workflows":["fulfil"]}]', 'sayiir/api-keys');
 * ```
 */
export function parseApiKeys(text: string, secretName: string): ApiKeySpec[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text.trim();
  }
  const entries = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(entries)) throw new ApiKeySecretFormatError(secretName);
  const specs: ApiKeySpec[] = [];
  entries.forEach((entry: unknown, i) => {
    const fail = (problem: string) => new ApiKeySecretFormatError(secretName, `entry [${i}]: ${problem}`);
    if (typeof entry === 'string') {
      if (entry.length > 0)
        specs.push({ name: `key-${digest(entry).toString('hex').slice(0, 8)}`, key: entry, role: 'admin' });
      return;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw fail('must be a string or an object');
    const { name, key, role, workflows, ...rest } = entry as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) throw fail(`${extra}: unknown field`);
    if (typeof name !== 'string' || !KEY_NAME.test(name)) throw fail('name: must be 1-64 letters, digits or _.:@-');
    if (typeof key !== 'string' || key.length === 0) throw fail('key: must be a non-empty string');
    if (!ROLES.includes(role as Role)) throw fail(`role: must be one of ${ROLES.join(', ')}`);
    if (workflows !== undefined && !(Array.isArray(workflows) && workflows.every((w) => typeof w === 'string'))) {
      throw fail('workflows: must be an array of workflow names');
    }
    if (specs.some((s) => s.name === name)) throw fail(`name: '${name}' is used twice`);
    specs.push({ name, key, role: role as Role, ...(workflows === undefined ? {} : { workflows }) });
  });
  return specs;
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

interface KnownKey {
  readonly digest: Buffer;
  readonly caller: Caller;
}

/**
 * Checks `x-api-key` values against the keys in a secret, and says who is
 * calling.
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
 * const caller = await auth.verify(headerValue(event, 'x-api-key'));
 * if (!caller) return unauthorized();
 * ```
 */
export class ApiKeyAuthorizer {
  private cached: { readonly keys: readonly KnownKey[]; readonly at: number } | undefined;
  private loading: Promise<readonly KnownKey[]> | undefined;

  constructor(
    private readonly secrets: Secrets,
    private readonly clock: Clock,
    /** @default 'sayiir/api-keys' */
    private readonly secretName: string = DEFAULT_API_KEY_SECRET,
    /** @default API_KEY_CACHE_MS (60_000) */
    private readonly cacheMs: number = API_KEY_CACHE_MS,
  ) {}

  /**
   * The caller whose key `presented` is, or `undefined` when it is none.
   *
   * @throws {SecretNotFoundError} the secret cannot be read (a deployment
   *   fault, not the client's: surfaces as a 500); so does any other error
   *   of the secrets adapter (e.g. a broken local secrets file).
   * @throws {ApiKeySecretFormatError} the secret holds something else.
   */
  async verify(presented: string | undefined): Promise<Caller | undefined> {
    if (presented === undefined || presented.length === 0) return undefined;
    const keys = await this.keys();
    const given = digest(presented);
    let found: Caller | undefined;
    // No early exit: every key is compared whatever the outcome.
    for (const key of keys) {
      if (timingSafeEqual(given, key.digest)) found = key.caller;
    }
    return found;
  }

  private async keys(): Promise<readonly KnownKey[]> {
    const now = this.clock.now();
    if (this.cached && now >= this.cached.at && now - this.cached.at < this.cacheMs) return this.cached.keys;
    // Concurrent requests at expiry share one read.
    this.loading ??= this.load(now).finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(now: number): Promise<readonly KnownKey[]> {
    const text = await this.secrets.get(this.secretName);
    const keys = parseApiKeys(text, this.secretName).map((k) => ({
      digest: digest(k.key),
      caller: { name: k.name, role: k.role, ...(k.workflows ? { workflows: new Set(k.workflows) } : {}) },
    }));
    this.cached = { keys, at: now };
    return keys;
  }
}
