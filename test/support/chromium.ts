import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type * as RoundhouseWeb from '../../web/client-entry';
import { startCluster, type Cluster } from './cluster';
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

/** A headless Chromium with one page, and a cluster (API and one worker) for it to talk to. */
export interface BrowserCluster {
  readonly browser: Browser;
  readonly cluster: Cluster;
  readonly page: Page;
  close(): Promise<void>;
}

/**
 * Launches Chromium (with `extraArgs`) and a cluster (its environment changed by `clusterEnv`), and opens a
 * page whose console lines and uncaught errors go to `pageOutput` (shown when an assertion fails).
 */
export async function openBrowserCluster(
  pageOutput: string[],
  extraArgs: readonly string[] = [],
  clusterEnv: Record<string, string> = {},
): Promise<BrowserCluster> {
  const browser = await launchChromium(extraArgs);
  const cluster = await startCluster({ workers: 1, env: clusterEnv });
  const page = await browser.newPage();
  page.on('console', (m) => pageOutput.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageOutput.push(`page error: ${e.message}`));
  return {
    browser,
    cluster,
    page,
    close: async () => {
      await browser.close();
      await cluster.stop();
    },
  };
}
