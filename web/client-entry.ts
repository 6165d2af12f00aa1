/**
 * The browser SDK: what `scripts/build-web.js` bundles into `dist/web/roundhouse-client.js`, an IIFE that
 * defines the global `Roundhouse` (served at `GET /sdk/roundhouse-client.js`). It is the client SDK of
 * `src/client` (the same code path as Node clients and the simulator), a browser backend, and helpers that
 * turn a page's data into examples. A page does:
 *
 * ```js
 * await Roundhouse.initBrowserBackend();            // WASM from /sdk/, else CPU
 * const store = new Roundhouse.PageExampleStore();
 * store.set('digits', Roundhouse.digitsExamplesFromCsv(csvText));
 * const client = new Roundhouse.RoundhouseClient({ server: location.origin, population: 'digits', store });
 * await client.run({ onOutcome: (o) => console.log(o.kind) });
 * ```
 *
 * Only browser-safe modules may be reached from here; the build fails on Node built-ins and on our Node-only
 * modules (`src/data/digits.ts`, `src/client/node.ts`, `src/compute/backend.ts`).
 */
export * from '../src/client';
export {
  defaultWasmPath,
  initBrowserBackend,
  type BrowserBackendName,
  type BrowserBackendOptions,
} from './backend';
export { digitsExamplesFromCsv, examplesFromArrays, type ExampleColumn } from './examples';
