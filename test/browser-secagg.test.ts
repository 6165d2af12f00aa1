import type { Page } from 'playwright-core';
import type { RunOutcome } from '../src/client/types';
import { openBrowserCluster, type BrowserCluster, type PageWindow } from './support/chromium';
import { eventually, type Cluster } from './support/cluster';
import { needs } from './support/needs';
import { SdkHarness } from './support/sdk-harness';
import { threeSumsOf, threeSumsPlan, THREE_SUMS } from './support/secure-plans';

// SecAgg+ with a browser in the cohort: a tab running the bundled SDK (dist/web/roundhouse-client.js, as a
// page loads it from /sdk/) takes part in a round of the three secure sums beside Node SDK clients, one of
// which leaves after uploading. The released sums are exact and include the tab's input: the browser's
// keys, shares, masks and unmasking shares all agree with the Node clients' and the server's.
//
// The page is served from http://roundhouse.test, a name Chromium maps to 127.0.0.1. Not from
// http://127.0.0.1 itself: browsers count loopback addresses as secure contexts, and the point is a plain
// http origin, which is not one and has no WebCrypto (`crypto.subtle` is undefined there). The SecAgg
// crypto is noble's (X25519, HKDF, AES-GCM, ChaCha20) over `crypto.getRandomValues`, which such pages
// have. The test checks that the page is neither a secure context nor has WebCrypto before the tab runs.

/** The tab's origin: a non-loopback name, hence not a secure context. */
const PAGE_HOST = 'roundhouse.test';
/** Node clients beside the tab; the last of them leaves after its masked upload. */
const NODE_CLIENTS = 5;
/** The tab's examples, sum 250: at V2's max_input (4 x 250 = 1000) and unlike any Node client's sum. */
const BROWSER_VALUES = [200, 50];

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

needs('chromium')('SecAgg+ with a browser tab in the cohort', () => {
  let cluster: Cluster;
  let page: Page;
  /** What the page printed and threw, shown when an assertion fails. */
  const pageOutput: string[] = [];
  const h = new SdkHarness(() => cluster, 'browser-secagg');

  let env: BrowserCluster | undefined;
  beforeAll(async () => {
    env = await openBrowserCluster(pageOutput, [`--host-resolver-rules=MAP ${PAGE_HOST} 127.0.0.1`]);
    ({ cluster, page } = env);
  }, 60_000);
  afterAll(() => env?.close());

  test('a tab on a plain-http origin and five Node clients complete a round: exact sums with the tab in them', async () => {
    const population = h.unique('mixed');
    const cohort = NODE_CLIENTS + 1;
    const id = await h.submit(
      threeSumsPlan(
        population,
        {
          rounds: 1,
          target_clients: cohort,
          over_selection: 1,
          min_reports: cohort - 1,
          selection_timeout_s: 60,
          reporting_deadline_s: 240,
        },
        // Degree 5 of 6: every client has four mask peers, and the one that leaves has its pairwise masks
        // recovered from three shares (the tab's among them when it is a neighbour).
        { protocol: 'secagg+', degree: 5, threshold: 3, sharing_timeout_s: 60, unmasking_timeout_s: 10 },
      ),
    );

    const port = new URL(cluster.url).port;
    await page.goto(`http://${PAGE_HOST}:${port}/demo/`);
    const context = await page.evaluate(() => ({
      secure: window.isSecureContext,
      subtle: typeof crypto.subtle,
      sdk: typeof (window as unknown as PageWindow).Roundhouse.RoundhouseClient,
    }));
    expect(context).toEqual({ secure: false, subtle: 'undefined', sdk: 'function' });

    // The demo page may connect only to its own origin (its CSP), while the assignment's URLs name the
    // server's PUBLIC_URL (http://127.0.0.1:port, what the Node clients use): the tab's fetch sends those to
    // its own origin, the same server under the name it was loaded from, as a reverse proxy would.
    const inTab = page.evaluate(
      async ({ publicUrl, population, values }) => {
        const R = (window as unknown as PageWindow).Roundhouse;
        await R.initBrowserBackend();
        const store = new R.PageExampleStore();
        store.set(population, R.examplesFromArrays([{ dtype: 'int32', rows: values }]));
        const client = new R.RoundhouseClient({
          server: location.origin,
          population,
          store,
          fetch: (input, init) => fetch(String(input).replace(publicUrl, location.origin), init),
        });
        const o = await client.runOnce();
        return o.kind === 'retry' || o.kind === 'session'
          ? { kind: o.kind }
          : { kind: o.kind, round: o.assignment.round, ...('reason' in o ? { reason: o.reason } : {}) };
      },
      { publicUrl: cluster.url, population, values: BROWSER_VALUES },
    );
    // Node client c holds [c + 1, 10 c]: sums 1, 12, 23, 34, 45.
    const nodeValues = (c: number) => [c + 1, 10 * c];
    const leaves = (c: number) => c === NODE_CLIENTS - 1;
    const inNode = Promise.all(
      Array.from({ length: NODE_CLIENTS }, (_, c) =>
        h.client(population, nodeValues(c), { beforeUnmask: () => !leaves(c) }).runOnce(),
      ),
    );
    const [tab, nodes] = await Promise.all([
      inTab.catch((e: Error) => {
        throw new Error(`the tab failed: ${e.message}\n--- console\n${pageOutput.join('\n')}`);
      }),
      inNode,
    ]);
    expect(tab).toEqual({ kind: 'completed', round: 1 });
    expect(nodes.map((o: RunOutcome) => o.kind)).toEqual([
      ...Array.from({ length: NODE_CLIENTS - 1 }, () => 'completed'),
      'dropped',
    ]);

    const info = await eventually(
      'the round to complete',
      async () => {
        const r = await h.roundOf(id, 1);
        if (r.phase === 'failed') throw new Error(`the round failed: ${r.error}`);
        return r.phase === 'completed' ? r : undefined;
      },
      120_000,
    );
    // Every accepted upload is in the sum, the tab's and the one whose sender left before unmasking.
    const inputs = [
      sum(BROWSER_VALUES),
      ...Array.from({ length: NODE_CLIENTS }, (_, c) => sum(nodeValues(c))),
    ];
    const each = inputs.map(threeSumsOf);
    expect(info.output).toEqual({
      v1: sum(each.map((x) => x.v1)),
      v2: sum(each.map((x) => x.v2)),
      v3: sum(each.map((x) => x.v3)) % THREE_SUMS.modulus,
    });
    // The cohort of six needed the tab to fill it: all six advertised and shared, five unmasked.
    expect(info.secure_aggregation).toEqual({
      protocol: 'secagg+',
      advertised: cohort,
      shared: cohort,
      unmasked: cohort - 1,
    });
    expect(info.aggregated_clients).toBe(cohort);
    expect(pageOutput.filter((l) => l.startsWith('page error'))).toEqual([]);
  }, 240_000);
});
