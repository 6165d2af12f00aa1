import * as fs from 'node:fs';
import * as path from 'node:path';
import compression from 'compression';
import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors';

/** Options of {@link webRoutes}; the defaults fit the repository layout and the Docker image. */
export interface WebRoutesOptions {
  /** What `scripts/build-web.js` writes (SDK bundle and map, demo page, dashboard). Default `<repo>/dist/web`. */
  readonly dir?: string;
  /** The TensorFlow.js WASM binaries. Default the `dist` folder of `@tensorflow/tfjs-backend-wasm`. */
  readonly wasmDir?: string;
}

/**
 * The URLs are stable (a page hard-codes `/sdk/roundhouse-client.js`) while what they serve changes with
 * every build or tfjs upgrade, and the bundle and the WASM binaries must match each other: so caches may
 * keep a copy but must revalidate it (a cheap 304 on the ETag) before each use.
 */
const REVALIDATE = 'public, no-cache';

/** The binaries tfjs-backend-wasm may ask for, by the file name it asks for, without `.wasm`. */
const WASM_BINARIES = new Set([
  'tfjs-backend-wasm',
  'tfjs-backend-wasm-simd',
  'tfjs-backend-wasm-threaded-simd',
]);

/**
 * What the demo page may load. The SDK needs `'wasm-unsafe-eval'` to compile the WASM backend, and nothing
 * else beyond this origin; the page's styles are inline.
 */
const DEMO_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * What the operator dashboard may load: its own script and styles, and requests to this origin only (the
 * operator API). uPlot draws on canvases and sets styles through the DOM, which a CSP does not restrict; the
 * page's own styles are inline. No form is ever submitted (the token form is handled by the script).
 */
const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The browser side: the client SDK bundle (`/sdk/roundhouse-client.js` and its source map), the
 * TensorFlow.js WASM binaries it loads from beside itself (`/sdk/<name>.wasm`), and the demo page
 * (`/demo/`) with its script and a small slice of the digits data, and the operator dashboard (`/dashboard/`)
with its script and uPlot's stylesheet. Static files, served with their content
 * type, a validator (weak ETag and Last-Modified, from the file's size and time), `Cache-Control` that makes
 * caches revalidate, and gzip when accepted. No operator token: browsers fetch them (the dashboard's data
 * comes from the operator API, which does ask for it). A file that is not built yet is 404
 * RESOURCE_NOT_FOUND, saying to run `npm run build`.
 */
export function webRoutes(options: WebRoutesOptions = {}): Router {
  const dir = options.dir ?? path.join(repositoryRoot(), 'dist', 'web');
  const wasmDir =
    options.wasmDir ??
    path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  const router = Router();
  // mime-db does not list application/wasm as compressible, yet gzip takes the binaries to about a third.
  const gzip = compression({ filter: () => true });
  const built =
    (file: string, type: string, extra: Record<string, string> = {}) =>
    (req: Request, res: Response) =>
      sendStatic(req, res, path.join(dir, file), type, extra, `${file} is not built: run \`npm run build\``);

  router.get(
    '/sdk/roundhouse-client.js',
    gzip,
    built('roundhouse-client.js', 'text/javascript; charset=utf-8'),
  );
  router.get(
    '/sdk/roundhouse-client.js.map',
    gzip,
    built('roundhouse-client.js.map', 'application/json; charset=utf-8'),
  );
  router.get('/sdk/:name.wasm', gzip, async (req, res) => {
    const name = req.params.name as string;
    if (!WASM_BINARIES.has(name)) throw new AppError('RESOURCE_NOT_FOUND', `no WASM binary ${name}.wasm`);
    await sendStatic(
      req,
      res,
      path.join(wasmDir, `${name}.wasm`),
      'application/wasm',
      {},
      `${name}.wasm is missing`,
    );
  });

  const page = built('demo.html', 'text/html; charset=utf-8', { 'Content-Security-Policy': DEMO_CSP });
  router.get('/demo/', gzip, async (req, res) => {
    // The page's links are relative (so that it works behind a path prefix); they need the trailing slash.
    if (!req.originalUrl.split('?')[0]!.endsWith('/')) return res.redirect(301, 'demo/');
    await page(req, res);
  });
  router.get('/demo/demo.js', gzip, built('demo.js', 'text/javascript; charset=utf-8'));
  router.get('/demo/digits-sample.csv', gzip, built('digits-sample.csv', 'text/csv; charset=utf-8'));

  const dashboard = built('dashboard.html', 'text/html; charset=utf-8', {
    'Content-Security-Policy': DASHBOARD_CSP,
    // The page's URL names the plan shown (#plan=...); it need not travel to anywhere else.
    'Referrer-Policy': 'no-referrer',
  });
  router.get('/dashboard/', gzip, async (req, res) => {
    if (!req.originalUrl.split('?')[0]!.endsWith('/')) return res.redirect(301, 'dashboard/');
    await dashboard(req, res);
  });
  router.get('/dashboard/dashboard.js', gzip, built('dashboard.js', 'text/javascript; charset=utf-8'));
  router.get('/dashboard/uplot.css', gzip, built('uplot.css', 'text/css; charset=utf-8'));
  return router;
}

/**
 * Sends a file with express's static file machinery (conditional requests, HEAD, ranges, streaming), the
 * given content type and headers; a missing file becomes 404 RESOURCE_NOT_FOUND with `missing` as message.
 */
function sendStatic(
  req: Request,
  res: Response,
  file: string,
  type: string,
  headers: Record<string, string>,
  missing: string,
): Promise<void> {
  // `headers` are set only once the file is found, so that a 404 goes out as a plain JSON error.
  const sendOptions = {
    etag: true,
    lastModified: true,
    cacheControl: false,
    headers: {
      'Content-Type': type,
      'Cache-Control': REVALIDATE,
      'X-Content-Type-Options': 'nosniff',
      ...headers,
    },
  };
  return new Promise((resolve, reject) => {
    res.sendFile(file, sendOptions, (err) => {
      if (!err) return resolve();
      if (res.headersSent) return resolve(); // the client went away mid-file; nothing left to answer
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        return reject(new AppError('RESOURCE_NOT_FOUND', `${req.path}: ${missing}`));
      }
      reject(err);
    });
  });
}

/**
 * The repository (or image) root: the nearest folder above this file with a package.json. Found by walking
 * up because the compiled file (`dist/src/api/routes`) sits deeper than the source (`src/api/routes`).
 */
function repositoryRoot(): string {
  for (let d = __dirname; ;) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    const parent = path.dirname(d);
    if (parent === d) throw new Error(`no package.json above ${__dirname}`);
    d = parent;
  }
}
