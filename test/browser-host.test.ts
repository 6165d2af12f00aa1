import type { Page } from 'playwright-core';
import { PLAN_LIBRARY } from '../src/plans';
import type { RoundInfo } from '../src/store/types';
import { openBrowserCluster, type BrowserCluster } from './support/chromium';
import { eventually, type Cluster } from './support/cluster';
import { reachableAddresses } from './support/lan-address';
import { needs } from './support/needs';

// Issue 12: the demo page opened at an address other than localhost, as a phone on the same network opens
// it. The server runs without PUBLIC_URL and listens on every interface; the tab opens /demo/ at the
// machine's LAN address (127.0.0.1 on a machine without one), and the assignment's URLs must be on that
// same origin for the tab to fetch them (the page's CSP allows only its own origin). A LAN address over
// plain HTTP is not a secure context either, as on the phone. Debian's Chromium, driven by playwright-core.

/** The address the page is opened at: the LAN address when the machine has one, else 127.0.0.1. */
const ADDRESS = reachableAddresses().at(-1)!;

async function rounds(cluster: Cluster, id: string): Promise<RoundInfo[]> {
  const res = await cluster.operator(`/v1/plans/${id}/rounds`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { rounds: RoundInfo[] }).rounds;
}

needs('chromium')(`the demo page opened at http://${ADDRESS}, without PUBLIC_URL`, () => {
  let cluster: Cluster;
  let page: Page;
  const pageOutput: string[] = [];

  let env: BrowserCluster | undefined;
  beforeAll(async () => {
    // An empty PUBLIC_URL is an unset one (the cluster helper would set it to http://127.0.0.1:port).
    env = await openBrowserCluster(pageOutput, [], { PUBLIC_URL: '', HOST: '0.0.0.0' });
    ({ cluster, page } = env);
  }, 60_000);
  afterAll(() => env?.close());

  test('the tab gets URLs on the origin it opened and completes a task', async () => {
    const plan = PLAN_LIBRARY.fedavg!.build({ rounds: 2, targetClients: 1, minReports: 1, epochs: 2 });
    const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    const origin = `http://${ADDRESS}:${new URL(cluster.url).port}`;
    /** Every API request the tab made, and what came back. */
    const api: string[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/v1/'))
        api.push(`${r.request().method()} ${r.url()} ${r.status()}`);
    });
    page.on('requestfailed', (r) => api.push(`${r.method()} ${r.url()} failed: ${r.failure()?.errorText}`));
    await page.goto(`${origin}/demo/`);
    expect(await page.evaluate(() => window.location.origin)).toBe(origin);

    await page.fill('#max-tasks', '1');
    await page.click('#join');
    const state = await page
      .waitForFunction(() => ['completed', 'error'].includes(document.body.dataset.state ?? ''), null, {
        timeout: 90_000,
      })
      .then(() => page.evaluate(() => document.body.dataset.state))
      .catch((e: Error) => `timed out (${e.message.split('\n')[0]})`);
    const logText = await page.locator('#log').innerText();
    if (state !== 'completed') {
      throw new Error(
        `the page ended in state ${state}\n--- log\n${logText}\n--- requests\n${api.join('\n')}\n` +
          `--- console\n${pageOutput.join('\n')}`,
      );
    }
    expect(await page.evaluate(() => document.body.dataset.completed)).toBe('1');
    expect(logText).toMatch(/Uploaded \d+ bytes \(gzip\) for round 1: task completed/);
    expect(logText).not.toMatch(/cannot fetch them/);

    // The check-in, both downloads and the upload, every one on the page's own origin and answered 2xx.
    const paths = [
      /^POST \/v1\/populations\/digits\/checkin 200$/,
      /^GET \/v1\/plans\/p[0-9a-z]{12}\/client-plan 200$/,
      /^GET \/v1\/plans\/p[0-9a-z]{12}\/rounds\/1\.1\/broadcast 200$/,
      /^POST \/v1\/tasks\/[A-Za-z0-9_-]{22}\/result 202$/,
    ];
    const seen = api.map((line) => {
      const [method, url, status] = line.split(' ');
      expect(`${method} ${new URL(url!).origin}`).toBe(`${method} ${origin}`);
      return `${method} ${new URL(url!).pathname} ${status}`;
    });
    for (const p of paths) expect(seen.some((l) => p.test(l))).toBe(true);

    const r1 = await eventually('round 1 to complete', async () =>
      (await rounds(cluster, id)).find((r) => r.round === 1 && r.phase === 'completed'),
    );
    expect(r1.aggregated_clients).toBe(1);
    expect(pageOutput.filter((l) => l.startsWith('page error'))).toEqual([]);
  }, 180_000);
});
