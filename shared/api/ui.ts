import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { headerValue } from './http.ts';
import { type HttpApiEventHandler, overHttpApiEvents } from './http-api-event.ts';
import type { ApiRequestHandler, ApiResponse } from './request.ts';

/**
 * Serves the web UI's static shell: `GET /ui` (and `/ui/`) answers the page,
 * `GET /ui/<file>` the script and stylesheet built by `ui/build.ts`. Public:
 * the shell holds no data; every data call the page makes carries the API key
 * the user types in.
 *
 * Kept apart from the API (`api.ts` never imports it): deployed, it runs in a
 * function of its own; locally, the gateway imports it on the first `/ui`
 * request. So the API's cold start never loads the bundle.
 */

/** The path the UI is served under. */
export const UI_PATH = '/ui';

/** Headers of every UI answer: the page may talk to its own origin only. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

interface Asset {
  readonly type: string;
  readonly body: string;
  /** The body gzipped (script and stylesheet: about a third of their size on the wire). */
  readonly gzip?: Uint8Array;
}

/** Options of {@link makeUiHandler}. */
export interface UiHandlerOptions {
  /** The folder `ui/build.ts` wrote (index.html, app-<hash>.js, app-<hash>.css). */
  readonly dir: string;
}

/** A UI request in, a response out (HTTP API payload 2.0, as API Gateway sends): the UI's Lambda. */
export type UiHandler = HttpApiEventHandler;

/** Whether a request path is the UI's (`/ui`, `/ui/…`), the stage prefix left out. */
export const isUiPath = (p: string): boolean => p === UI_PATH || p.startsWith(`${UI_PATH}/`);

/**
 * The UI's Lambda handler over a built folder: {@link makeUiCore} behind
 * the HTTP API event adapter (a gzipped file goes out base64-encoded).
 *
 * @example
 * ```ts
 * const ui = makeUiHandler({ dir: 'ui/dist' });
 * await ui(event); // { statusCode: 200, headers: { 'content-type': 'text/html; …' }, body: '<!doctype html>…' }
 * ```
 */
export function makeUiHandler(options: UiHandlerOptions): UiHandler {
  return overHttpApiEvents(makeUiCore(options));
}

/**
 * The UI's transport-free handler over a built folder, read once at the
 * first request. A folder with no build answers 503 saying how to build it.
 * The page's asset links sit under the request's `basePath` (the stage).
 *
 * @example
 * ```ts
 * const ui = makeUiCore({ dir: 'ui/dist' });
 * await ui({ method: 'GET', path: '/ui', query: {}, headers: {} }); // { status: 200, body: '<!doctype html>…' }
 * ```
 */
export function makeUiCore(options: UiHandlerOptions): ApiRequestHandler {
  let assets: ReadonlyMap<string, Asset> | undefined;
  return async function ui(request) {
    // An event built without a method has always been read as a GET here.
    const method = request.method || 'GET';
    const p = request.path;
    const prefix = request.basePath ?? '';
    if (!isUiPath(p)) return text(404, 'not found');
    if (method !== 'GET' && method !== 'HEAD')
      return { ...text(405, 'method not allowed'), headers: { allow: 'GET, HEAD' } };
    // Read once; a folder with no build yet is read again at the next request.
    if (!assets?.has('index.html')) assets = readAssets(options.dir);
    const page = assets.get('index.html');
    if (!page) return text(503, `the UI is not built in ${options.dir}: run \`npm run build:ui\``);
    const name = p.slice(UI_PATH.length).replace(/^\/+/, '');
    if (name === '' || name === 'index.html') {
      return answer(200, page.type, page.body.replaceAll('%BASE%', `${prefix}${UI_PATH}/`), 'no-cache');
    }
    const asset = assets.get(name);
    if (!asset) return text(404, `no UI file '${name.slice(0, 100)}'`);
    const plain = answer(200, asset.type, asset.body, 'public, max-age=31536000, immutable');
    const headers = { ...plain.headers, vary: 'accept-encoding' };
    if (asset.gzip && /\bgzip\b/.test(headerValue(request, 'accept-encoding') ?? '')) {
      return { ...plain, body: asset.gzip, headers: { ...headers, 'content-encoding': 'gzip' } };
    }
    return { ...plain, headers };
  };
}

function readAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return assets; // not built: answered 503, and read again on the next request
  }
  for (const name of names) {
    const type = TYPES[path.extname(name)];
    if (!type || name.startsWith('.')) continue;
    const body = readFileSync(path.join(dir, name), 'utf8');
    const gzip = name === 'index.html' ? undefined : gzipSync(body, { level: 9 });
    assets.set(name, { type, body, ...(gzip ? { gzip } : {}) });
  }
  return assets;
}

function answer(status: number, type: string, body: string, cache: string): ApiResponse {
  return { status, headers: { 'content-type': type, 'cache-control': cache, ...SECURITY_HEADERS }, body };
}

const text = (status: number, body: string) => answer(status, 'text/plain; charset=utf-8', body, 'no-store');
