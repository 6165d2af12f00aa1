import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { AppError } from '../errors';
import { createMetrics } from './metrics';
import { clientCors } from './middleware/client-cors';
import { errorHandler, errorResponder } from './middleware/errors';
import { readJsonBody } from './middleware/json-body';
import { requestObserver } from './middleware/http-metrics';
import { mountRawRoutes, withRawRoutes, type RawRoute } from './raw-routes';

/** What the route saw of its request, for the assertions. */
interface Seen {
  params: Record<string, string>;
  plainResponse: boolean;
}

function setup() {
  const seen: Seen[] = [];
  const route: RawRoute = {
    route: '/v1/sessions/:session/requests',
    async handle(req, res, params) {
      seen.push({ params, plainResponse: Object.getPrototypeOf(res) === http.ServerResponse.prototype });
      if (params.session === 'refused') {
        throw new AppError('TOKEN_INVALID', 'no token', [{ path: 'authorization', message: 'missing' }]);
      }
      if (params.session === 'broken') throw new Error('boom');
      const body = JSON.stringify({ session: params.session, url: req.url });
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(body);
    },
  };
  // A POST route that reads a JSON body, as the check-in does.
  const post: RawRoute = {
    method: 'POST',
    route: '/v1/populations/:population/checkin',
    async handle(req, res, params) {
      const body = await readJsonBody(req, res, { limit: 64, tooLarge: 'REQUEST_INVALID', optional: true });
      const text = JSON.stringify({ population: params.population, body });
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(text);
    },
  };
  const log = { error: () => undefined, warn: () => undefined, info: () => undefined } as never;
  const metrics = createMetrics();
  const observe = requestObserver(metrics);
  const cors = clientCors({ origins: ['https://app.example'] });
  const app = express();
  app.use(cors);
  app.get('/other', (_req, res) => void res.json({ via: 'express' }));
  mountRawRoutes(app, [route, post]);
  app.use((_req, res) => void res.status(404).json({ via: 'express', found: false }));
  app.use(errorHandler({ log }));
  const listener = withRawRoutes(app, [route, post], {
    observe: (req, res, r) => observe(req, res, () => r),
    cors,
    fail: errorResponder({ log }),
  });
  return { seen, app, listener, metrics };
}

async function serve(listener: http.RequestListener): Promise<{ url: string; close: () => void }> {
  const server = http.createServer(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => server.close(),
  };
}

async function answer(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    cors: res.headers.get('access-control-allow-origin'),
    body: (await res.json()) as unknown,
  };
}

describe('routes served ahead of express on Node objects', () => {
  test('answer as the same route mounted on the app does, on a response express never touched', async () => {
    const { seen, app, listener } = setup();
    const raw = await serve(listener);
    const viaExpress = await serve(app);
    try {
      const origin = { headers: { origin: 'https://app.example' } };
      for (const path of [
        '/v1/sessions/s1/requests?after=2&wait=0',
        '/v1/sessions/refused/requests',
        '/v1/sessions/broken/requests',
      ]) {
        const a = await answer(raw.url + path, origin);
        const b = await answer(viaExpress.url + path, origin);
        expect(a).toEqual(b);
      }
      expect((await answer(raw.url + '/v1/sessions/s1/requests?after=2')).body).toEqual({
        session: 's1',
        url: '/v1/sessions/s1/requests?after=2',
      });
      expect(await answer(raw.url + '/v1/sessions/refused/requests')).toMatchObject({
        status: 401,
        type: 'application/json; charset=utf-8',
        body: { error: { code: 'TOKEN_INVALID', details: [{ path: 'authorization' }] } },
      });
      expect(await answer(raw.url + '/v1/sessions/broken/requests')).toMatchObject({
        status: 500,
        body: { error: { code: 'INTERNAL', message: 'internal error' } },
      });
      // Requests through the listener reached the route on Node's own objects; through the app, on express's.
      const plain = seen.map((s) => s.plainResponse);
      expect(plain).toEqual([true, false, true, false, true, false, true, true, true]);
    } finally {
      raw.close();
      viaExpress.close();
    }
  });

  test('a POST route reads its JSON body as the app does, errors included; other methods go to the app', async () => {
    const { listener, app } = setup();
    const raw = await serve(listener);
    const viaExpress = await serve(app);
    try {
      const json = { 'content-type': 'application/json', origin: 'https://app.example' };
      const cases: RequestInit[] = [
        { method: 'POST', headers: json, body: JSON.stringify({ device_id: 'd1' }) },
        { method: 'POST', headers: { 'content-length': '0' } },
        { method: 'POST', headers: json, body: '{"device_id": ' },
        { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' },
        { method: 'POST', headers: json, body: JSON.stringify({ device_id: 'x'.repeat(100) }) },
        { method: 'GET' },
      ];
      const answers = [];
      for (const init of cases) {
        const a = await answer(`${raw.url}/v1/populations/p1/checkin`, init);
        expect(a).toEqual(await answer(`${viaExpress.url}/v1/populations/p1/checkin`, init));
        answers.push([a.status, (a.body as { error?: { code: string } }).error?.code ?? a.body]);
      }
      expect(answers).toEqual([
        [200, { population: 'p1', body: { device_id: 'd1' } }],
        [200, { population: 'p1', body: {} }],
        [400, 'REQUEST_INVALID'],
        [415, 'UNSUPPORTED_MEDIA_TYPE'],
        [400, 'REQUEST_INVALID'],
        [404, { via: 'express', found: false }],
      ]);
    } finally {
      raw.close();
      viaExpress.close();
    }
  });

  test('match as express routes do: any case, a trailing slash, decoded parameters; nothing else', async () => {
    const { seen, listener } = setup();
    const raw = await serve(listener);
    try {
      expect((await answer(raw.url + '/V1/Sessions/a%20b/REQUESTS/')).body).toMatchObject({ session: 'a b' });
      expect(seen.at(-1)).toEqual({ params: { session: 'a b' }, plainResponse: true });
      expect(
        await answer(raw.url + '/v1/sessions/%E0%A4%A/requests', {
          headers: { origin: 'https://app.example' },
        }),
      ).toMatchObject({
        status: 400,
        cors: 'https://app.example',
        body: { error: { code: 'REQUEST_INVALID' } },
      });
      // Other paths and other methods go to the app.
      expect((await answer(raw.url + '/other')).body).toEqual({ via: 'express' });
      const n = seen.length;
      expect((await fetch(raw.url + '/v1/sessions/s1/requests', { method: 'POST' })).status).toBe(404);
      expect((await fetch(raw.url + '/v1/sessions/s1/requests/more')).status).toBe(404);
      expect(seen.length).toBe(n);
    } finally {
      raw.close();
    }
  });

  test('count in the metrics under the route pattern', async () => {
    const { listener, metrics } = setup();
    const raw = await serve(listener);
    try {
      await answer(raw.url + '/v1/sessions/s1/requests');
      await answer(raw.url + '/v1/sessions/refused/requests');
      const text = await metrics.registry.metrics();
      expect(text).toMatch(/route="\/v1\/sessions\/:session\/requests",status="200"} 1/);
      expect(text).toMatch(/route="\/v1\/sessions\/:session\/requests",status="401"} 1/);
    } finally {
      raw.close();
    }
  });
});
