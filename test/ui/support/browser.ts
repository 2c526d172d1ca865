import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * Debian's Chromium, driven by playwright-core (no browser download: the
 * machines cannot fetch one). The browser tests fail, never skip, when it is
 * missing, and say how to install it.
 */

/** Where the browser is: `SAYIIR_CHROMIUM`, else Debian's package's path. */
export const CHROMIUM_PATH = process.env.SAYIIR_CHROMIUM ?? '/usr/bin/chromium';

/** Flags for a headless Chromium on a machine with a closed network, run as root. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The message a machine without Chromium gets. */
export const NO_CHROMIUM = `The browser tests need Chromium at ${CHROMIUM_PATH} and it is not there.
Install Debian's package:  sudo apt-get update && sudo apt-get install -y chromium
(or point SAYIIR_CHROMIUM at a Chromium or Chrome binary). .ci/run installs it in CI.`;

/**
 * Launches the headless browser.
 *
 * @throws {Error} {@link NO_CHROMIUM} when the binary is missing.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(NO_CHROMIUM);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS });
}
