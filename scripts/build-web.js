// Builds what the API serves to browsers (src/api/routes/web.ts) into dist/web/:
//   roundhouse-client.js (+ .map)  the browser SDK: web/client-entry.ts bundled by esbuild as an IIFE that
//                                  defines the global `Roundhouse`
//   demo.html, demo.js             the demo page, copied as they are (plain HTML and JS, readable in the browser)
//   digits-sample.csv              the first rows of data/digits.csv.gz, uncompressed: the demo page's local data
//   dashboard.js, dashboard.html   the operator dashboard: web/dashboard.ts bundled with uPlot by esbuild (an IIFE
//                                  that defines no global), and its page copied as it is
//   uplot.css                      uPlot's stylesheet, from the package, served beside the dashboard (no CDN)
// Runs after tsc in `npm run build`. Everything lands in dist/ because that is what the Docker image ships.
//
// The bundle must not reach Node-only code: importing a Node built-in (fs, zlib, node:*) or a Node-only module
// of ours from the SDK's import graph fails the build with the importer named, rather than shipping a bundle
// that breaks when a browser loads it. So does a package that compiles code at run time (ajv), which a page's
// CSP without 'unsafe-eval' refuses. Packages that map built-ins away with their `browser` field (the tfjs
// WASM backend does, for its Node code path) are left to esbuild, which honours that field.
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { builtinModules } = require('node:module');
const esbuild = require('esbuild');

const root = path.join(__dirname, '..');
const outDir = path.join(root, 'dist', 'web');
/** Rows of the digits data the demo page gets as its local data. */
const SAMPLE_ROWS = 48;

/** Modules of this repository that are Node-only, with what to use instead in a browser. */
const NODE_ONLY_FILES = [
  ['src/data/digits.ts', 'parse the CSV text with digitsExamplesFromCsv (web/examples.ts)'],
  ['src/client/node.ts', 'use PageExampleStore or MemoryExampleStore'],
  ['src/compute/backend.ts', 'use initBrowserBackend (web/backend.ts)'],
];
const NODE_ONLY_PACKAGES = new Set(['@tensorflow/tfjs-node']);
/**
 * Packages that generate code with `new Function` or `eval`, with what to do instead. The demo page's CSP
 * (src/api/routes/web.ts) has no 'unsafe-eval', nor should any page that embeds the SDK need it: such code
 * throws while the bundle loads, and the page gets no `Roundhouse` at all. ajv is reached through
 * src/schema-validation.ts, which compiles code as soon as it loads (addSchema checks each schema with a
 * compiled meta-schema).
 */
const EVAL_PACKAGES = new Map([
  [
    'ajv',
    'keep the SDK off src/schema-validation.ts and the modules that import it (src/compute/checker.ts)',
  ],
]);
/**
 * Packages whose default entry needs Node (csv-parse's uses the global Buffer when it loads), mapped to the
 * browser build they ship. Marked free of side effects, so that they are dropped altogether while nothing
 * the bundle exports calls them (the SDK reaches `src/data/clients-csv.ts` only through `src/data`'s index).
 */
const BROWSER_BUILDS = { 'csv-parse/sync': 'csv-parse/browser/esm/sync' };
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/**
 * An esbuild plugin that keeps the bundle browser-safe: it swaps in the browser builds above, and fails the
 * build when our code imports anything that only runs in Node.
 */
const browserSafe = {
  name: 'browser-safe',
  setup(build) {
    const rel = (file) => path.relative(root, file).split(path.sep).join('/');
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (Object.hasOwn(BROWSER_BUILDS, args.path)) {
        const { kind, resolveDir } = args;
        const resolved = await build.resolve(BROWSER_BUILDS[args.path], { kind, resolveDir });
        return resolved.errors.length
          ? { errors: resolved.errors }
          : { path: resolved.path, sideEffects: false };
      }
      const bare = args.path
        .split('/')
        .slice(0, args.path.startsWith('@') ? 2 : 1)
        .join('/');
      const fromPackage = args.importer.split(path.sep).includes('node_modules');
      if (EVAL_PACKAGES.has(bare)) {
        return {
          errors: [
            {
              text: `${rel(args.importer)} imports "${args.path}", which compiles code with new Function (refused by a CSP without 'unsafe-eval'): ${EVAL_PACKAGES.get(bare)}`,
            },
          ],
        };
      }
      if (NODE_ONLY_PACKAGES.has(bare) || (!fromPackage && (builtins.has(args.path) || builtins.has(bare)))) {
        return {
          errors: [{ text: `${rel(args.importer)} imports the Node-only module "${args.path}"` }],
        };
      }
      return undefined;
    });
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const hit = NODE_ONLY_FILES.find(([file]) => rel(args.path) === file);
      if (!hit) return undefined;
      return {
        errors: [{ text: `the browser bundle reaches the Node-only module ${hit[0]}: ${hit[1]}` }],
      };
    });
  },
};

async function bundle() {
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'web', 'client-entry.ts')],
    outfile: path.join(outDir, 'roundhouse-client.js'),
    bundle: true,
    format: 'iife',
    globalName: 'Roundhouse',
    platform: 'browser',
    // What supports WebAssembly SIMD, CompressionStream and top-level class fields: browsers of 2023 on.
    target: ['chrome109', 'firefox113', 'safari16.4'],
    minify: true,
    sourcemap: 'linked',
    // The map carries the sources, since the server does not serve them; browsers fetch it only for devtools.
    sourcesContent: true,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
    tsconfig: path.join(root, 'tsconfig.json'),
    alias: { '@tensorflow/tfjs': path.join(root, 'web', 'tfjs.ts') },
    plugins: [browserSafe],
  });
  return result.metafile;
}

/**
 * The dashboard's script, with the same browser-safe check as the SDK. No source map: the page is an
 * operator's tool, and one route fewer to serve and document.
 */
async function bundleDashboard() {
  await esbuild.build({
    entryPoints: [path.join(root, 'web', 'dashboard.ts')],
    outfile: path.join(outDir, 'dashboard.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome109', 'firefox113', 'safari16.4'],
    minify: true,
    legalComments: 'eof',
    logLevel: 'warning',
    tsconfig: path.join(root, 'tsconfig.json'),
    plugins: [browserSafe],
  });
  fs.copyFileSync(require.resolve('uplot/dist/uPlot.min.css'), path.join(outDir, 'uplot.css'));
}

function copyPage() {
  for (const file of ['demo.html', 'demo.js', 'dashboard.html']) {
    fs.copyFileSync(path.join(root, 'web', file), path.join(outDir, file));
  }
}

function writeDigitsSample() {
  const text = zlib.gunzipSync(fs.readFileSync(path.join(root, 'data', 'digits.csv.gz'))).toString('utf8');
  const rows = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (rows.length < SAMPLE_ROWS) throw new Error(`data/digits.csv.gz has only ${rows.length} rows`);
  fs.writeFileSync(path.join(outDir, 'digits-sample.csv'), `${rows.slice(0, SAMPLE_ROWS).join('\n')}\n`);
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const metafile = await bundle();
  await bundleDashboard();
  copyPage();
  writeDigitsSample();
  const size = (f) => fs.statSync(path.join(outDir, f)).size;
  const gz = zlib.gzipSync(fs.readFileSync(path.join(outDir, 'roundhouse-client.js'))).length;
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(
    `dist/web: roundhouse-client.js ${kib(size('roundhouse-client.js'))} (${kib(gz)} gzip, ` +
      `${Object.keys(metafile.inputs).length} modules), demo page, digits-sample.csv (${SAMPLE_ROWS} rows), ` +
      `dashboard.js ${kib(size('dashboard.js'))} and its page`,
  );
}

main().catch((err) => {
  // esbuild has already printed its errors with their locations.
  if (!err.errors) console.error(err);
  process.exitCode = 1;
});
