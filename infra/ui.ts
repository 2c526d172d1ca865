import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildUi } from '../ui/build.ts';

/** The UI as built into the package by `npm run build` (`dist/ui/dist`); absent when running from the sources. */
const PREBUILT_UI_DIR = import.meta.url.endsWith('.js') ? fileURLToPath(new URL('../ui/dist', import.meta.url)) : '';

/** Folders the UI was built into by this process, by project root: one build per synth, however many stacks. */
const built = new Map<string, string>();

/**
 * Builds the web UI for the UI function's bundle, under the project's
 * `node_modules/.cache/sayiir/ui` (like the generated entries), and returns
 * the folder. Built at synth, never committed: the deployed UI is always the
 * one in the sources.
 */
export function uiAssetsDir(projectRoot: string): string {
  // Installed (compiled) package: the UI was built by `npm run build` and ships
  // prebuilt, since its sources' libraries (Preact, dagre) are not installed.
  if (PREBUILT_UI_DIR && existsSync(path.join(PREBUILT_UI_DIR, 'index.html'))) return PREBUILT_UI_DIR;
  const hit = built.get(projectRoot);
  if (hit) return hit;
  const dir = path.join(projectRoot, 'node_modules', '.cache', 'sayiir', 'ui');
  buildUi(dir);
  built.set(projectRoot, dir);
  return dir;
}
