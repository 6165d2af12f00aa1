import type { Browser, Page } from 'playwright-core';
import { PLAN_LIBRARY } from '../src/plans';
import type { RoundInfo } from '../src/store/types';
import { openBrowserCluster, type BrowserCluster, type PageWindow } from './support/chromium';
import { eventually, type Cluster } from './support/cluster';
import { needs } from './support/needs';

// End to end in a real browser: the demo page (/demo/) loads the SDK bundle and the WASM backend from the
// built server, joins population `digits` with its sample of the digits data, trains and uploads, and the
// server aggregates that one upload and moves the plan to its next round. Debian's Chromium, driven by
// playwright-core (which never downloads a browser); .ci/run installs it.

async function rounds(cluster: Cluster, id: string): Promise<RoundInfo[]> {
  const res = await cluster.operator(`/v1/plans/${id}/rounds`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { rounds: RoundInfo[] }).rounds;
}

// A missing browser is a missing dependency, not a reason to pass: .ci/run installs it. The suite fails
// without it unless ROUNDHOUSE_SKIP_BROWSER=1 asks to skip it (test/support/needs.ts).
needs('chromium')('the demo page in headless Chromium', () => {
  let cluster: Cluster;
  let browser: Browser;
  let page: Page;
  /** What the page printed and threw, shown when an assertion fails. */
  const pageOutput: string[] = [];

  let env: BrowserCluster | undefined;
  beforeAll(async () => {
    env = await openBrowserCluster(pageOutput);
    ({ browser, cluster, page } = env);
  }, 60_000);
  afterAll(() => env?.close());

  test('a tab joins population digits, completes a task, and the round advances', async () => {
    const plan = PLAN_LIBRARY.fedavg!.build({ rounds: 2, targetClients: 1, minReports: 1, epochs: 2 });
    expect(plan.population ?? plan.client_data.collection).toBe('digits');
    const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    const wasm: string[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.endsWith('.wasm')) {
        wasm.push(`${new URL(r.url()).pathname} ${r.status()} ${r.headers()['content-type']}`);
      }
    });
    await page.goto(`${cluster.url}/demo/`);
    const surface = await page.evaluate(() => {
      const R = (window as unknown as PageWindow).Roundhouse;
      return [typeof R.RoundhouseClient, typeof R.PageExampleStore, typeof R.initBrowserBackend];
    });
    expect(surface).toEqual(['function', 'function', 'function']);
    expect(await page.inputValue('#population')).toBe('digits');

    // One task, so that the page leaves round 2 to the assertions below.
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
        `the page ended in state ${state}\n--- log\n${logText}\n--- console\n${pageOutput.join('\n')}`,
      );
    }
    expect(await page.evaluate(() => document.body.dataset.completed)).toBe('1');
    expect(logText).toMatch(/Checked in: assigned a task of round 1/);
    expect(logText).toMatch(/Trained on 48 examples for round 1/);
    expect(logText).toMatch(/Uploaded \d+ bytes \(gzip\) for round 1: task completed/);
    // The WASM backend ran, from the binaries the server serves beside the bundle.
    expect(await page.locator('#backend').innerText()).toBe('WebAssembly');
    expect(wasm).toContain('/sdk/tfjs-backend-wasm-simd.wasm 200 application/wasm');

    const advanced = await eventually('round 1 to complete and round 2 to open', async () => {
      const all = await rounds(cluster, id);
      const r1 = all.find((r) => r.round === 1 && r.phase === 'completed');
      const r2 = all.find((r) => r.round === 2);
      return r1 && r2 ? { r1, r2 } : undefined;
    });
    expect(advanced.r1.aggregated_clients).toBe(1);
    expect(advanced.r1.reported).toBe(1);

    // The run loop ends after its one task (Join is enabled again), leaving round 2 open and untouched.
    await page.waitForSelector('#join:not([disabled])', { timeout: 30_000 });
    expect(await page.locator('#log').innerText()).toMatch(/Stopped after 1 task, as asked/);
    const r2 = (await rounds(cluster, id)).find((r) => r.round === 2)!;
    expect(r2.phase).toBe('selecting');
    expect(r2.assigned).toBe(0);
    expect(pageOutput.filter((l) => l.startsWith('page error'))).toEqual([]);
  }, 180_000);

  test('falls back to the CPU backend when the WASM binaries cannot be fetched', async () => {
    const other = await browser.newPage();
    try {
      await other.route('**/*.wasm', (route) => route.abort());
      await other.goto(`${cluster.url}/demo/`);
      const backend = await other.evaluate(() =>
        (window as unknown as PageWindow).Roundhouse.initBrowserBackend(),
      );
      expect(backend).toBe('cpu');
    } finally {
      await other.close();
    }
  });
});
