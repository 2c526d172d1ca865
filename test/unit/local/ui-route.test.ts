import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { startHttpGateway } from '../../../local/http-gateway.ts';
import { withUi } from '../../../local/ui-route.ts';
import type { ApiRequest } from '../../../shared/api/request.ts';

function built(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sayiir-ui-route-'));
  writeFileSync(join(dir, 'index.html'), '<script src="%BASE%app-0123456789.js"></script>');
  writeFileSync(join(dir, 'app-0123456789.js'), 'console.log(1)');
  return dir;
}

/** A GET with the given headers: status, headers and the raw body bytes (no decompression). */
function get(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the local gateway with the UI route', () => {
  it('serves /ui from the built folder (gzipped bytes as they are) and hands every other path to the API', async () => {
    const seen: ApiRequest[] = [];
    const api = async (r: ApiRequest) => {
      seen.push(r);
      return { status: 204, headers: {} };
    };
    const gateway = await startHttpGateway({ handler: withUi(api, built()), port: 0 });
    try {
      const page = await get(`${gateway.url}/ui/`);
      expect(page.status).toBe(200);
      expect(page.body.toString()).toBe('<script src="/ui/app-0123456789.js"></script>');
      const zipped = await get(`${gateway.url}/ui/app-0123456789.js`, { 'accept-encoding': 'gzip' });
      expect(zipped.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(zipped.body).toString()).toBe('console.log(1)');
      expect((await get(`${gateway.url}/uix`)).status).toBe(204);
      expect(seen.map((r) => r.path)).toEqual(['/uix']);
    } finally {
      await gateway.close();
    }
  });
});
