import path from 'node:path';
import { buildUi } from '../ui/build.ts';

/** Folders the UI was built into by this process, by project root: one build per synth, however many stacks. */
const built = new Map<string, string>();

/**
 * Builds the web UI for the UI function's bundle, under the project's
 * `node_modules/.cache/sayiir/ui` (like the generated entries), and returns
 * the folder. Built at synth, never committed: the deployed UI is always the
 * one in the sources.
 */
export function uiAssetsDir(projectRoot: string): string {
  const hit = built.get(projectRoot);
  if (hit) return hit;
  const dir = path.join(projectRoot, 'node_modules', '.cache', 'sayiir', 'ui');
  buildUi(dir);
  built.set(projectRoot, dir);
  return dir;
}
