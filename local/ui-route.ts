import { fileURLToPath } from 'node:url';
import type { UiHandler } from '../shared/api/ui.ts';
import type { HttpApiHandler } from './http-gateway.ts';

/** Where `npm run build:ui` writes the UI (`npm start` builds it first). */
export const LOCAL_UI_DIR = fileURLToPath(new URL('../ui/dist', import.meta.url));

/**
 * The local gateway's handler: `/ui` and `/ui/…` to the UI's static handler,
 * imported on the first such request (as a separate function serves it when
 * deployed), everything else to the API.
 *
 * @example
 * ```ts
 * await startHttpGateway({ handler: withUi(apiHandler) });
 * ```
 */
export function withUi(api: HttpApiHandler, dir: string = LOCAL_UI_DIR): HttpApiHandler {
  let ui: Promise<UiHandler> | undefined;
  return async (event, context) => {
    const path = event.rawPath;
    if (path !== '/ui' && !path.startsWith('/ui/')) return api(event, context);
    ui ??= import('../shared/api/ui.ts').then((m) => m.makeUiHandler({ dir }));
    return (await ui)(event);
  };
}
