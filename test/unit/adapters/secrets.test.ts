import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSecrets, secretEnvName } from '../../../shared/adapters/secrets/file.ts';
import { flow, runWorkflow, task } from '../../../shared/index.ts';
import { SecretNotFoundError } from '../../../shared/ports/errors.ts';
import type { Secrets } from '../../../shared/ports/secrets.ts';

describe('secrets for tasks', () => {
  it('ctx.secret reads through the secrets port, once per process', async () => {
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
    expect(reads).toBe(1);
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
});
