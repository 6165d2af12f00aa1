import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { RoundhouseClient } from '../src/client/client';
import { MemoryExampleStore } from '../src/client/example-store';
import { PLAN_LIBRARY } from '../src/plans';
import { readings, sumProgram } from './support/stateful-programs';
import { openBrowserCluster, type BrowserCluster } from './support/chromium';
import { eventually, type Cluster } from './support/cluster';
import { needs } from './support/needs';

// The operator dashboard (/dashboard/) in headless Chromium against the built server and one worker: the
// login form and its errors, a mean plan whose rounds a Node SDK client completes one by one while the page
// shows them live (rounds table and uPlot plots), and the pause / resume / cancel buttons; stateful
// programs, one completed by Node devices (its outputs shown) and one cancelled and deleted from the page.

/** Where the screenshot goes: test/artifacts/ is ignored by git; CI may keep it. */
const SCREENSHOT = path.join(__dirname, 'artifacts', 'dashboard.png');
const ROUNDS_DRIVEN = 3;

async function planStatus(cluster: Cluster, id: string): Promise<string> {
  const res = await cluster.operator(`/v1/plans/${id}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { status: string }).status;
}

/** What the page shows in its body's data attributes and a plot's point count (read back from uPlot). */
function points(page: Page, plot: string): Promise<string | null> {
  return page.getAttribute(`figure[data-plot="${plot}"]`, 'data-points', { timeout: 1000 }).catch(() => null);
}

needs('chromium')('the operator dashboard in headless Chromium', () => {
  let env: BrowserCluster | undefined;
  let cluster: Cluster;
  let page: Page;
  const pageOutput: string[] = [];
  const explain = () => `--- page console\n${pageOutput.join('\n')}`;

  beforeAll(async () => {
    env = await openBrowserCluster(pageOutput);
    ({ cluster, page } = env);
  }, 60_000);
  afterAll(() => env?.close());

  test('without a token it shows the login form; a wrong token is refused with a clear error', async () => {
    await page.goto(`${cluster.url}/dashboard/`);
    await page.waitForSelector('#login-view:not([hidden])');
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('login');
    expect(await page.isHidden('#main-view')).toBe(true);

    await page.fill('#token', 'not-the-token');
    await page.click('#sign-in');
    await page.waitForFunction(() => document.getElementById('login-error')?.textContent !== '');
    expect(await page.innerText('#login-error')).toMatch(
      /refused this token: the operator token is not valid \(401 UNAUTHORIZED\)/,
    );
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('login');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  });

  test('shows a plan and its rounds live, plots one point per round, and pauses, resumes and cancels it', async () => {
    const population = `dash-${process.pid}`;
    const plan = PLAN_LIBRARY.mean!.build({
      collection: population,
      rounds: 6,
      targetClients: 1,
      overSelection: 1,
      minReports: 1,
    });
    const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    await page.goto(`${cluster.url}/dashboard/`);
    await page.fill('#token', cluster.operatorToken);
    await page.click('#sign-in');
    await page.waitForSelector('#main-view:not([hidden])');
    // Kept in this tab's sessionStorage, and never as a cookie.
    expect(await page.evaluate(() => sessionStorage.getItem('roundhouse.operatorToken'))).toBe(
      cluster.operatorToken,
    );
    expect(await page.evaluate(() => document.cookie)).toBe('');
    const row = `#plans tr[data-plan="${id}"]`;
    await page.waitForSelector(row);
    expect(await page.innerText(`${row} td.status`)).toBe('active');
    await page.click(`${row} a`);
    await page.waitForSelector(`#plan-view[data-plan="${id}"]:not([hidden])`);

    // One task per round, from a client whose values change each round (round n's mean is 1.5 n); the page
    // must show each round as it completes.
    for (let n = 1; n <= ROUNDS_DRIVEN; n++) {
      const client = new RoundhouseClient({
        server: cluster.url,
        population,
        store: new MemoryExampleStore({
          [population]: { count: 2, leaves: [Float32Array.from([n, 2 * n])] },
        }),
      });
      await eventually(`a task of round ${n} to complete`, async () => {
        const outcome = await client.runOnce();
        if (outcome.kind === 'completed') return true;
        await new Promise((r) => setTimeout(r, 200));
        return undefined;
      });
      const seen = await eventually(
        `the page to plot ${n} rounds`,
        async () => ((await points(page, 'output:mean')) === String(n) ? true : undefined),
        30_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${explain()}`);
      });
      expect(seen).toBe(true);
    }

    // Every numeric field of the mean plan's output {mean, count, clients} has its plot, as do durations.
    for (const plot of ['output:mean', 'output:count', 'output:clients', 'duration']) {
      expect([plot, await points(page, plot)]).toEqual([plot, String(ROUNDS_DRIVEN)]);
    }
    // Participation also counts the round that is open now.
    expect(Number(await points(page, 'participation'))).toBeGreaterThanOrEqual(ROUNDS_DRIVEN);
    expect(await page.getAttribute('#rounds', 'data-completed')).toBe(String(ROUNDS_DRIVEN));
    expect(await page.innerText('#rounds tr[data-round="1"] td.phase')).toBe('completed');
    expect(await page.locator('figure[data-plot="output:mean"] canvas').count()).toBe(1);
    const plotted = await page.$$eval('#plots figure', (figs) => figs.map((f) => f.dataset.plot));
    expect(plotted).toEqual(['output:mean', 'output:count', 'output:clients', 'participation', 'duration']);
    await page.waitForFunction(
      ([sel, text]) => document.querySelector(sel!)?.textContent?.trim() === text,
      [`${row} td.progress`, `${ROUNDS_DRIVEN} / 6`],
    );

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(1000);

    await page.click('#pause:not([disabled])');
    await eventually('the plan to be paused', async () =>
      (await planStatus(cluster, id)) === 'paused' ? true : undefined,
    );
    await page.waitForSelector('body[data-plan-status="paused"] #resume:not([disabled])');
    expect(await page.isDisabled('#pause')).toBe(true);

    await page.click('#resume');
    await eventually('the plan to be active again', async () =>
      (await planStatus(cluster, id)) === 'active' ? true : undefined,
    );
    await page.waitForSelector('body[data-plan-status="active"] #pause:not([disabled])');

    page.once('dialog', (d) => void d.accept());
    await page.click('#cancel');
    await eventually('the plan to be cancelled', async () =>
      (await planStatus(cluster, id)) === 'cancelled' ? true : undefined,
    );
    await page.waitForSelector('body[data-plan-status="cancelled"]');
    for (const button of ['#pause', '#resume', '#cancel']) expect(await page.isDisabled(button)).toBe(true);
    expect(pageOutput.filter((l) => l.startsWith('page error'))).toEqual([]);
    expect(pageOutput.filter((l) => /Content Security Policy/i.test(l))).toEqual([]);
  });

  test('shows stateful programs: one run to its outputs by devices, one cancelled and deleted from the page', async () => {
    const submit = async (population: string, target: number): Promise<string> => {
      const p = { ...sumProgram(2, target), population } as { population: string };
      const res = await cluster.operator('/v1/programs', { method: 'POST', body: JSON.stringify(p) });
      expect(res.status).toBe(201);
      return ((await res.json()) as { id: string }).id;
    };
    const done = await submit(`dash-prog-${process.pid}`, 2);
    const device = (id: string, values: number[]) =>
      new RoundhouseClient({
        server: cluster.url,
        population: `dash-prog-${process.pid}`,
        deviceId: id,
        store: new MemoryExampleStore(readings(...values)),
      }).runOnce();
    const runs = await Promise.all([device('dash-a', [1, 2]), device('dash-b', [3, 4])]);
    expect(runs.map((r) => r.kind)).toEqual(['session', 'session']);
    const waiting = await submit(`dash-prog-idle-${process.pid}`, 3);

    await page.goto(`${cluster.url}/dashboard/#program=${done}`);
    // Signed in by the test before (the token is kept in this tab), or here when this test runs alone.
    if (await page.isVisible('#login-view')) {
      await page.fill('#token', cluster.operatorToken);
      await page.click('#sign-in');
    }
    await page.waitForSelector(`#program-view[data-program="${done}"][data-status="completed"]`);
    expect(await page.isHidden('#plan-view')).toBe(true);
    // The sum program's outputs: total = 1+2+3+4, doubled, and each device's own sum scaled by it.
    const outputs = JSON.parse(await page.innerText('#program-outputs')) as Record<string, unknown>;
    expect(outputs).toMatchObject({ total: 10, doubled: 20, scaled_total: 200 });
    expect(await page.innerText('#program-summary')).toMatch(
      /^completed: step \d+ of \d+; 2 of 2 devices live/,
    );
    expect(await page.isDisabled('#program-cancel')).toBe(true);
    expect(await page.innerText(`#programs tr[data-program="${waiting}"] td.status`)).toBe('recruiting');

    await page.click(`#programs tr[data-program="${waiting}"] a`);
    await page.waitForSelector(`#program-view[data-program="${waiting}"][data-status="recruiting"]`);
    expect(await page.innerText('#program-summary')).toMatch(/^recruiting: 0 of 3 devices joined/);
    expect(await page.isDisabled('#program-delete')).toBe(true);
    page.once('dialog', (d) => void d.accept());
    await page.click('#program-cancel:not([disabled])');
    await page.waitForSelector(`#program-view[data-program="${waiting}"][data-status="cancelled"]`);
    page.once('dialog', (d) => void d.accept());
    await page.click('#program-delete:not([disabled])');
    await page.waitForSelector(`#programs tr[data-program="${waiting}"]`, { state: 'detached' });
    expect(await page.isHidden('#program-view')).toBe(true);
    expect((await cluster.operator(`/v1/programs/${waiting}`)).status).toBe(404);
    expect(pageOutput.filter((l) => l.startsWith('page error'))).toEqual([]);
  });

  test('polls only while the tab is visible; a link to a plan that is gone goes back to the list', async () => {
    const other = await env!.browser.newPage();
    try {
      const reads: string[] = [];
      other.on('request', (r) => {
        if (new URL(r.url()).pathname === '/v1/plans') reads.push(r.url());
      });
      await other.goto(`${cluster.url}/dashboard/#plan=pzzzzzzzzzzzz`);
      await other.fill('#token', cluster.operatorToken);
      await other.click('#sign-in');
      await other.waitForFunction(() =>
        /PLAN_NOT_FOUND/.test(document.getElementById('status-line')!.innerText),
      );
      expect(await other.innerText('#status-line')).toMatch(
        /no plan pzzzzzzzzzzzz .*deleted, or the link is stale/,
      );
      expect(await other.evaluate(() => location.hash)).toBe('');
      expect(await other.isHidden('#plan-view')).toBe(true);

      // Headless Chromium never hides a tab: the page is told it is hidden as a browser would tell it.
      const setHidden = (hidden: boolean) =>
        other.evaluate((h) => {
          Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
          document.dispatchEvent(new Event('visibilitychange'));
        }, hidden);
      await setHidden(true);
      const before = reads.length;
      // Two poll periods and more: a visible tab would have read at least twice; a hidden one finishes at
      // most the read it had in flight.
      await new Promise((r) => setTimeout(r, 4000));
      expect(reads.length - before).toBeLessThanOrEqual(1);
      const hiddenReads = reads.length;
      await setHidden(false);
      await eventually('a read once the tab is visible again', async () =>
        reads.length > hiddenReads ? true : undefined,
      );
    } finally {
      await other.close();
    }
  });

  test('another tab has no token, and a page of another origin cannot call the operator API', async () => {
    const other = await env!.browser.newPage();
    try {
      // A new tab: sessionStorage is per tab, so it asks for the token again.
      await other.goto(`${cluster.url}/dashboard/`);
      await other.waitForSelector('#login-view:not([hidden])');
      // localhost and 127.0.0.1 are two origins: the browser preflights the Authorization header, and the
      // operator endpoints answer no CORS, so the request never goes out.
      await other.goto(`${cluster.url.replace('127.0.0.1', 'localhost')}/dashboard/`);
      const outcome = await other.evaluate(
        async ([url, token]) => {
          try {
            const res = await fetch(`${url}/v1/plans`, { headers: { authorization: `Bearer ${token}` } });
            return `answered ${res.status}`;
          } catch (e) {
            return `refused: ${(e as Error).name}`;
          }
        },
        [cluster.url, cluster.operatorToken],
      );
      expect(outcome).toBe('refused: TypeError');
    } finally {
      await other.close();
    }
  });
});
