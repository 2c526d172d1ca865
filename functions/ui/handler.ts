import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUiHandler } from '../../shared/api/ui.ts';

/**
 * The web UI's Lambda: the static shell only (no store, no queue, no secret,
 * no workflow), so the API function's bundle and cold start do not carry it.
 * Its bundle holds the UI's files in `ui/` beside the handler (copied there
 * at synth by the engine construct).
 */
export const handler = makeUiHandler({ dir: path.join(path.dirname(fileURLToPath(import.meta.url)), 'ui') });
