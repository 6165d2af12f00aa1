import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import express from 'express';
import pino from 'pino';
import { errorHandler } from '../middleware/errors';
import { notFound } from '../middleware/not-found';
import { webRoutes } from './web';

/** Serves webRoutes over `dir` (as the app mounts it, with the common 404 and error handling). */
async function serve(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  app.use(webRoutes({ dir }));
  app.use(notFound());
  app.use(errorHandler({ log: pino({ level: 'silent' }) }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('the web routes', () => {
  let built: string;
  let empty: string;
  // Large enough for compression (its threshold is 1 KiB).
  const bundle = `var Roundhouse=(()=>{${'/* padding */'.repeat(200)}})();\n//# sourceMappingURL=roundhouse-client.js.map\n`;

  beforeAll(() => {
    built = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-web-'));
    empty = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-web-empty-'));
    fs.writeFileSync(path.join(built, 'roundhouse-client.js'), bundle);
    fs.writeFileSync(path.join(built, 'roundhouse-client.js.map'), '{"version":3}');
    fs.writeFileSync(path.join(built, 'demo.html'), '<!doctype html><title>demo</title>');
    fs.writeFileSync(path.join(built, 'demo.js'), "'use strict';");
    fs.writeFileSync(path.join(built, 'digits-sample.csv'), '0,1\n');
    fs.writeFileSync(path.join(built, 'dashboard.html'), '<!doctype html><title>dashboard</title>');
    fs.writeFileSync(path.join(built, 'dashboard.js'), "'use strict';");
    fs.writeFileSync(path.join(built, 'uplot.css'), '.uplot{}');
  });
  afterAll(() => {
    fs.rmSync(built, { recursive: true, force: true });
    fs.rmSync(empty, { recursive: true, force: true });
  });

  test.each([
    ['/sdk/roundhouse-client.js', 'text/javascript; charset=utf-8'],
    ['/sdk/roundhouse-client.js.map', 'application/json; charset=utf-8'],
    ['/demo/', 'text/html; charset=utf-8'],
    ['/demo/demo.js', 'text/javascript; charset=utf-8'],
    ['/demo/digits-sample.csv', 'text/csv; charset=utf-8'],
    ['/dashboard/', 'text/html; charset=utf-8'],
    ['/dashboard/dashboard.js', 'text/javascript; charset=utf-8'],
    ['/dashboard/uplot.css', 'text/css; charset=utf-8'],
    ['/sdk/tfjs-backend-wasm-simd.wasm', 'application/wasm'],
  ])('GET %s: %s, a validator, revalidating caches, 304 on a matching ETag', async (url, type) => {
    const { url: base, close } = await serve(built);
    try {
      const res = await fetch(`${base}${url}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('cache-control')).toBe('public, no-cache');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('last-modified')).toBeTruthy();
      const etag = res.headers.get('etag');
      expect(etag).toBeTruthy();
      const body = new Uint8Array(await res.arrayBuffer());
      if (url.endsWith('.wasm')) expect([...body.subarray(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d]); // \0asm
      // As a browser revalidating its cached copy asks. (fetch alone would add `Cache-Control: no-cache` to a
      // conditional request, an end-to-end reload that is always answered in full.)
      const again = await fetch(`${base}${url}`, {
        headers: { 'if-none-match': etag!, 'cache-control': 'max-age=0' },
      });
      expect(again.status).toBe(304);
      expect(again.headers.get('etag')).toBe(etag);
    } finally {
      await close();
    }
  });

  test('gzips when asked; HEAD answers the headers alone', async () => {
    const { url, close } = await serve(built);
    try {
      const res = await fetch(`${url}/sdk/roundhouse-client.js`, { headers: { 'accept-encoding': 'gzip' } });
      expect(res.headers.get('content-encoding')).toBe('gzip');
      expect(await res.text()).toBe(bundle); // fetch decodes it
      const head = await fetch(`${url}/sdk/tfjs-backend-wasm.wasm`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toBe('application/wasm');
      expect((await head.arrayBuffer()).byteLength).toBe(0);
    } finally {
      await close();
    }
  });

  test('the demo page: a CSP that allows WASM, and /demo redirects to demo/', async () => {
    const { url, close } = await serve(built);
    try {
      const page = await fetch(`${url}/demo/`);
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
      expect(csp).toContain("connect-src 'self'");
      const bare = await fetch(`${url}/demo`, { redirect: 'manual' });
      expect(bare.status).toBe(301);
      expect(bare.headers.get('location')).toBe('demo/');
    } finally {
      await close();
    }
  });

  test('the dashboard: a same-origin CSP, no referrer, and /dashboard redirects to dashboard/', async () => {
    const { url, close } = await serve(built);
    try {
      const page = await fetch(`${url}/dashboard/`);
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self';");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(page.headers.get('referrer-policy')).toBe('no-referrer');
      const bare = await fetch(`${url}/dashboard`, { redirect: 'manual' });
      expect(bare.status).toBe(301);
      expect(bare.headers.get('location')).toBe('dashboard/');
    } finally {
      await close();
    }
  });

  test('only the WASM backend binaries are served under /sdk/*.wasm', async () => {
    const { url, close } = await serve(built);
    try {
      for (const name of ['other', '..%2Fpackage.json', 'tfjs-backend-wasm.wasm']) {
        const res = await fetch(`${url}/sdk/${name}.wasm`);
        expect(res.status).toBe(404);
        expect((await res.json()).error.code).toBe('RESOURCE_NOT_FOUND');
      }
    } finally {
      await close();
    }
  });

  test('a file not built yet is 404 RESOURCE_NOT_FOUND in the error shape, saying to build', async () => {
    const { url, close } = await serve(empty);
    try {
      for (const file of [
        '/sdk/roundhouse-client.js',
        '/sdk/roundhouse-client.js.map',
        '/demo/',
        '/dashboard/',
        '/dashboard/dashboard.js',
      ]) {
        const res = await fetch(`${url}${file}`);
        expect(res.status).toBe(404);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        expect(res.headers.get('cache-control')).toBeNull();
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe('RESOURCE_NOT_FOUND');
        expect(body.error.message).toMatch(/npm run build/);
      }
    } finally {
      await close();
    }
  });
});
