import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { makeUiHandler } from '../../../shared/api/ui.ts';

const event = (rawPath: string, method = 'GET', stage = '$default') =>
  ({ rawPath, requestContext: { http: { method }, stage } }) as unknown as APIGatewayProxyEventV2;

function built(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sayiir-ui-serve-'));
  writeFileSync(join(dir, 'index.html'), '<script src="%BASE%app-0123456789.js"></script>');
  writeFileSync(join(dir, 'app-0123456789.js'), 'console.log(1)');
  return dir;
}

describe('the UI static handler', () => {
  it('serves the page at /ui and /ui/ with asset paths under the stage, never cached, behind a strict CSP', async () => {
    const ui = makeUiHandler({ dir: built() });
    for (const path of ['/ui', '/ui/']) {
      const res = await ui(event(path));
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('<script src="/ui/app-0123456789.js"></script>');
      expect(res.headers?.['cache-control']).toBe('no-cache');
      expect(String(res.headers?.['content-security-policy'])).toContain("script-src 'self'");
    }
    const staged = await ui(event('/prod/ui', 'GET', 'prod'));
    expect(staged.body).toBe('<script src="/prod/ui/app-0123456789.js"></script>');
  });

  it('serves hashed assets as immutable, with their type', async () => {
    const res = await makeUiHandler({ dir: built() })(event('/ui/app-0123456789.js'));
    expect(res.statusCode).toBe(200);
    expect(res.headers?.['content-type']).toContain('text/javascript');
    expect(res.headers?.['cache-control']).toContain('immutable');
    expect(res.body).toBe('console.log(1)');
  });

  it('answers 404 for other files and paths, 405 for other methods', async () => {
    const ui = makeUiHandler({ dir: built() });
    expect((await ui(event('/ui/../secrets.json'))).statusCode).toBe(404);
    expect((await ui(event('/ui/nope.js'))).statusCode).toBe(404);
    expect((await ui(event('/v1/workflows'))).statusCode).toBe(404);
    expect((await ui(event('/ui', 'POST'))).statusCode).toBe(405);
  });

  it('answers 503 saying how to build it when the folder has no build, and serves it once built', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sayiir-ui-empty-'));
    const ui = makeUiHandler({ dir });
    const res = await ui(event('/ui'));
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build:ui');
    writeFileSync(join(dir, 'index.html'), 'page');
    expect((await ui(event('/ui'))).body).toBe('page');
  });
});

describe('the UI static handler, compressed', () => {
  it('sends the script gzipped to a browser that accepts gzip, and plain to one that does not', async () => {
    const { gunzipSync } = await import('node:zlib');
    const ui = makeUiHandler({ dir: built() });
    const zipped = await ui({ ...event('/ui/app-0123456789.js'), headers: { 'Accept-Encoding': 'gzip, br' } });
    expect(zipped.isBase64Encoded).toBe(true);
    expect(zipped.headers?.['content-encoding']).toBe('gzip');
    expect(gunzipSync(Buffer.from(zipped.body ?? '', 'base64')).toString()).toBe('console.log(1)');
    const plain = await ui({ ...event('/ui/app-0123456789.js'), headers: {} });
    expect(plain.headers?.['content-encoding']).toBeUndefined();
    expect(plain.body).toBe('console.log(1)');
  });
});
