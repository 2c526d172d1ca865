import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { startLocalStack } from '../../../local/stack.ts';
import { FileSecrets, SecretsFileUnreadableError, secretEnvName } from '../../../shared/adapters/secrets/file.ts';
import { SECRETS_CACHE_MS, SecretsManagerSecrets } from '../../../shared/adapters/secrets/secrets-manager.ts';
import { flow, runWorkflow, task } from '../../../shared/index.ts';
import { SecretNotFoundError } from '../../../shared/ports/errors.ts';
import type { Secrets } from '../../../shared/ports/secrets.ts';

describe('secrets for tasks', () => {
  it('ctx.secret reads through the secrets port on every call: the adapter alone decides what it caches', async () => {
    let reads = 0;
    const secrets: Secrets = {
      async get(name) {
        reads++;
        if (name === 'stripe') return 'sk_test_123';
        throw new SecretNotFoundError(name);
      },
    };
    const f = flow<null>('uses-secret')
      .then('a', async (_: null, ctx) => (await ctx.secret('stripe')).slice(0, 7))
      .then(task('b', async (s: string, ctx) => `${s}/${(await ctx.secret('stripe')).length}`))
      .build();
    const r = await runWorkflow(f, null, { secrets });
    expect(r.output).toBe('sk_test/11');
    expect(reads).toBe(2);
  });

  it('a missing secret fails the task with a clear error', async () => {
    const f = flow<null>('missing-secret')
      .then(task('a', async (_: null, ctx) => ctx.secret('nope'), { retry: { maxAttempts: 1 } }))
      .build();
    const r = await runWorkflow(f, null, { secrets: { get: async (n) => Promise.reject(new SecretNotFoundError(n)) } });
    expect(r.status).toBe('FAILED');
    expect(r.error).toMatchObject({ name: 'SecretNotFoundError', message: "secret 'nope' not found" });
  });

  it('the local file provider reads the file, and an environment variable wins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sayiir-secrets-'));
    try {
      const path = join(dir, 'secrets.json');
      await writeFile(path, JSON.stringify({ 'db/password': 'from-file', keys: ['a', 'b'] }));
      const secrets = new FileSecrets(path, { [secretEnvName('db/password')]: 'from-env' });
      expect(secretEnvName('db/password')).toBe('SAYIIR_SECRET_DB_PASSWORD');
      expect(await secrets.get('db/password')).toBe('from-env');
      expect(await secrets.get('keys')).toBe('["a","b"]');
      await expect(secrets.get('absent')).rejects.toThrow(SecretNotFoundError);
      await expect(new FileSecrets(join(dir, 'none.json'), {}).get('keys')).rejects.toThrow(SecretNotFoundError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the local file provider refuses a broken file, naming it, and never reads a missing secret from it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sayiir-secrets-'));
    try {
      const path = join(dir, 'secrets.json');
      await writeFile(path, '{ "stripe": "sk", }');
      const e = await new FileSecrets(path, {}).get('stripe').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(SecretsFileUnreadableError);
      expect((e as Error).message).toContain(path);
      expect((e as Error).message).toMatch(/is not valid JSON/);
      await writeFile(path, '["a"]');
      await expect(new FileSecrets(path, {}).get('a')).rejects.toThrow(/must hold a JSON object/);
      await writeFile(path, '{"a":"1"}');
      await expect(new FileSecrets(path, {}).get('constructor')).rejects.toThrow(SecretNotFoundError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('npm start refuses a secrets file that does not parse, and leaves it as it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sayiir-secrets-'));
    try {
      const path = join(dir, 'secrets.json');
      const text = '{\n  "sayiir/api-keys": ["sk_local_mine"],\n  "stripe": "sk_live_x",\n}\n';
      await writeFile(path, text);
      const e = await startLocalStack({ dataDir: dir }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(SecretsFileUnreadableError);
      expect(await readFile(path, 'utf8')).toBe(text);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A stand-in for the Secrets Manager client (no AWS account here): counts reads, answers from a map. */
function fakeSecretsManager(values: Map<string, string>) {
  const calls: string[] = [];
  const client = {
    send: async (command: { input: { SecretId: string } }) => {
      calls.push(command.input.SecretId);
      const v = values.get(command.input.SecretId);
      if (v === undefined) throw Object.assign(new Error('not found'), { name: 'ResourceNotFoundException' });
      return { SecretString: v };
    },
  } as unknown as SecretsManagerClient;
  return { client, calls };
}

describe('Secrets Manager secrets', () => {
  it('keeps a value for ttlMs of its clock, then reads the changed secret', async () => {
    let now = 0;
    const values = new Map([['db', 'v1']]);
    const { client, calls } = fakeSecretsManager(values);
    const secrets = new SecretsManagerSecrets(client, { now: () => now });
    expect(await secrets.get('db')).toBe('v1');
    values.set('db', 'v2');
    now = SECRETS_CACHE_MS - 1;
    expect(await secrets.get('db')).toBe('v1');
    expect(calls).toHaveLength(1);
    now = SECRETS_CACHE_MS;
    expect(await secrets.get('db')).toBe('v2');
    expect(calls).toHaveLength(2);
  });

  it('with ttlMs 0 reads on every call (the API key check caches on its own terms)', async () => {
    const { client, calls } = fakeSecretsManager(new Map([['keys', '["k"]']]));
    const secrets = new SecretsManagerSecrets(client, { ttlMs: 0 });
    await secrets.get('keys');
    await secrets.get('keys');
    expect(calls).toEqual(['keys', 'keys']);
  });

  it('does not keep a failed read: the next call reads again', async () => {
    const values = new Map<string, string>();
    const { client, calls } = fakeSecretsManager(values);
    const secrets = new SecretsManagerSecrets(client);
    await expect(secrets.get('late')).rejects.toThrow(SecretNotFoundError);
    values.set('late', 'here');
    expect(await secrets.get('late')).toBe('here');
    expect(calls).toHaveLength(2);
  });
});
