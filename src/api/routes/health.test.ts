import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { loadConfig } from '../../config';
import { IsolatePool } from '../../isolate/isolate-pool';
import type { Engine, Jobs, PlanCache } from '../../rounds/contracts';
import { openTestStore, type TestStore } from '../../store/testing';
import { createApp } from '../app';

// /readyz over real HTTP with a real store: ready only while a plan isolate is up or can start.
const config = loadConfig({}, { operatorToken: 'op', tokenSecret: 'secret' });
const log = pino({ level: 'silent' });
let ts: TestStore;
const servers: http.Server[] = [];
const pools: IsolatePool[] = [];

async function serve(pool: IsolatePool): Promise<string> {
  const app = createApp({
    config,
    store: ts.store,
    engine: {} as Engine,
    plans: {} as PlanCache,
    jobs: {} as Jobs,
    log,
    ready: () => ts.redis.ping(),
    backendReady: () => pool.ready(),
  });
  const server = http.createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function pool(entry?: string): IsolatePool {
  const p = new IsolatePool({
    config: config.isolates,
    limits: config.limits,
    log,
    ...(entry ? { entry } : {}),
  });
  pools.push(p);
  return p;
}

beforeAll(() => {
  ts = openTestStore('health');
});
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await Promise.all(pools.map((p) => p.close()));
  await ts.close();
});

test('/readyz is 200 with a working isolate and 503 NOT_READY when none can start', async () => {
  const good = await serve(pool());
  const ok = await fetch(`${good}/readyz`);
  expect(ok.status).toBe(200);
  expect(await ok.json()).toEqual({ status: 'ready' });

  const broken = await serve(pool('/nonexistent/isolate-entry.js'));
  const res = await fetch(`${broken}/readyz`);
  expect(res.status).toBe(503);
  expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({
    code: 'NOT_READY',
    message: expect.stringMatching(/no plan isolate/),
  });
  // The process itself is up: liveness and readiness are different questions.
  expect((await fetch(`${broken}/healthz`)).status).toBe(200);
});
