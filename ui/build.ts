import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

/**
 * Builds the web UI: `ui/src/main.tsx` (Preact, dagre) bundled and minified
 * by esbuild into one script and one stylesheet, named by their content's
 * hash (served as immutable), and `index.html` pointing at them. Takes well
 * under a second, so the bundle is built where it is needed (`npm start`,
 * `npm test`, `cdk synth`) instead of committed.
 *
 * ```
 * npm run build:ui            # into ui/dist
 * tsx ui/build.ts <folder>    # anywhere
 * ```
 */

/** The UI's sources. */
export const UI_ROOT = path.dirname(fileURLToPath(import.meta.url));

/** Where `npm run build:ui` puts the bundle, and where the local stack serves it from. */
export const UI_DIST = path.join(UI_ROOT, 'dist');

/** What a build wrote: file names and sizes in bytes. */
export interface UiBuild {
  readonly dir: string;
  readonly files: Readonly<Record<string, number>>;
}

const hashed = (name: string, ext: string, body: Uint8Array) =>
  `${name}-${createHash('sha256').update(body).digest('hex').slice(0, 10)}${ext}`;

/**
 * Builds the UI into `outDir` (created; files of earlier builds removed).
 * Each file is written to a temporary name and renamed, so parallel builds
 * into one folder (concurrent synths) never leave a half-written file.
 */
export function buildUi(outDir: string = UI_DIST): UiBuild {
  const result = buildSync({
    entryPoints: [path.join(UI_ROOT, 'src', 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari17'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: outDir,
    write: false,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
  const css = result.outputFiles.find((f) => f.path.endsWith('.css'));
  if (!js || !css) throw new Error('ui build: esbuild wrote no script or no stylesheet');
  const jsName = hashed('app', '.js', js.contents);
  const cssName = hashed('app', '.css', css.contents);
  const html = readFileSync(path.join(UI_ROOT, 'index.html'), 'utf8')
    .replace('%SCRIPT%', jsName)
    .replace('%STYLE%', cssName);
  const files: Record<string, Uint8Array | string> = {
    [jsName]: js.contents,
    [cssName]: css.contents,
    'index.html': html,
  };
  mkdirSync(outDir, { recursive: true });
  for (const [name, body] of Object.entries(files)) {
    const temporary = path.join(outDir, `.${name}.${process.pid}.tmp`);
    writeFileSync(temporary, body);
    renameSync(temporary, path.join(outDir, name));
  }
  for (const old of readdirSync(outDir)) {
    if (/^app-[0-9a-f]{10}\.(js|css)$/.test(old) && !(old in files)) rmSync(path.join(outDir, old), { force: true });
  }
  const sizes = Object.fromEntries(Object.entries(files).map(([n, b]) => [n, Buffer.byteLength(b)]));
  return { dir: outDir, files: sizes };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = buildUi(process.argv[2] ? path.resolve(process.argv[2]) : UI_DIST);
  const total = Object.values(built.files).reduce((a, b) => a + b, 0);
  console.log(
    `ui: ${Object.entries(built.files)
      .map(([n, s]) => `${n} ${s} B`)
      .join(', ')} (${total} B) in ${built.dir}`,
  );
}
