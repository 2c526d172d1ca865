import { fileURLToPath } from 'node:url';
import type { ApiRequestHandler } from '../shared/api/request.ts';

/** Where `npm run build:ui` writes the UI (`npm start` builds it first). */
export const LOCAL_UI_DIR = fileURLToPath(new URL('../ui/dist', import.meta.url));

/**
 * The local gateway's handler: `/ui` and `/ui/…` to the UI's static handler,
 * imported on the first such request (as a separate function serves it when
 * deployed), everything else to the API.
 *
 * @example
 * ```ts
 * await startHttpGateway({ handler: withUi(makeRequestHandler(deps)) });
 * ```
 */
export function withUi(api: ApiRequestHandler, dir: string = LOCAL_UI_DIR): ApiRequestHandler {
  let ui: Promise<ApiRequestHandler> | undefined;
  return async (request) => {
    const path = request.path;
    if (path !== '/ui' && !path.startsWith('/ui/')) return api(request);
    ui ??= import('../shared/api/ui.ts').then((m) => m.makeUiCore({ dir }));
    return (await ui)(request);
  };
}
