import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type * as RoundhouseWeb from '../../web/client-entry';
import { CHROMIUM } from './needs';

/** The browser SDK bundle that `npm run build` writes and the server serves at /sdk/roundhouse-client.js. */
export const SDK_BUNDLE = path.join(__dirname, '..', '..', 'dist', 'web', 'roundhouse-client.js');

/** The page's global, as web/client-entry.ts declares it (type-checking the bundle's surface too). */
export type PageWindow = Window & { Roundhouse: typeof RoundhouseWeb };

/**
 * Launches Debian's headless Chromium (playwright-core never downloads a browser; each launch gets a fresh
 * temporary profile, deleted on close). Throws when the SDK bundle has not been built, since every browser
 * test loads it from the server.
 */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  if (!fs.existsSync(SDK_BUNDLE)) throw new Error(`${SDK_BUNDLE} is missing: run \`npm run build\` first`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}
