/**
 * The URLs of a check-in's answer (issue 12). Without PUBLIC_URL they are on the scheme and host the client
 * used, so that a client that reached the server at 127.0.0.1, at the machine's LAN address or under a name
 * can fetch them; a Host header that is not a plain host[:port] is refused before anything is assigned.
 * With PUBLIC_URL they are on it, whatever the Host. Real HTTP (the server listens on every interface, so
 * that the LAN address reaches it) against real Redis (127.0.0.1:6379) on a unique prefix; no worker.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import pino from 'pino';
import { BullJobs } from '../src/aggregation/jobs';
import { createApp } from '../src/api/app';
import { openApiDocument } from '../src/api/openapi';
import { loadConfig, type Config } from '../src/config';
import { LocalEvaluator } from '../src/isolate/local-evaluator';
import { RoundEngine } from '../src/rounds/engine';
import { StorePlanCache } from '../src/rounds/plan-cache';
import { openTestStore, type TestStore } from '../src/store/testing';
import { reachableAddresses } from './support/lan-address';
import { threeSumsPlan } from './support/secure-plans';

const OPERATOR = 'operator-token-for-tests';
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'sum-plan.json'), 'utf8'));
const log = pino({ level: 'silent' });

/** The OpenAPI document's schema of a check-in answer: third-party clients are written against it. */
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(openApiDocument, 'openapi.json');
const checkinResponse = ajv.getSchema('openapi.json#/components/schemas/CheckinResponse')!;

let ts: TestStore;
let jobs: BullJobs;
let plans: StorePlanCache;
let engine: RoundEngine;
const servers: http.Server[] = [];

/** An app on every interface; `over` is its configuration beyond the test secrets (no `publicUrl`). */
async function serve(over: Partial<Config>): Promise<number> {
  const server = http.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const config = loadConfig(
    {},
    { operatorToken: OPERATOR, tokenSecret: 'task-token-secret-for-tests', ...over },
  );
  server.on('request', createApp({ config, store: ts.store, engine, plans, jobs, log }));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  ts = openTestStore('resource-urls');
  jobs = new BullJobs(ts.redis, ts.prefix);
  const limits = loadConfig({}).limits;
  plans = new StorePlanCache(ts.store, limits);
  engine = new RoundEngine({
    store: ts.store,
    jobs,
    plans,
    evaluator: new LocalEvaluator(limits),
    config: { limits, maxRoundAttempts: 10 },
    log,
  });
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await ts.close();
});

/** What an answer holds, as far as these tests look. */
interface Answer {
  readonly status: number;
  readonly body: {
    assignment?: {
      plan_id: string;
      client_plan_url: string;
      broadcast_url: string;
      upload_url: string;
      secure_aggregation?: { url: string };
    };
    retry?: unknown;
    error?: { code: string; details: { path: string }[] };
  };
}

/**
 * A request to `127.0.0.1:port` with the Host header `host` (default `127.0.0.1:port`), by node:http, which
 * sends a Host header as given.
 */
function request(
  port: number,
  pathname: string,
  options: { host?: string; method?: string; body?: unknown } = {},
): Promise<Answer> {
  const address = '127.0.0.1';
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: address,
        port,
        path: pathname,
        method: options.method ?? 'GET',
        headers: {
          host: options.host ?? `${address}:${port}`,
          authorization: `Bearer ${OPERATOR}`,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const json = res.headers['content-type']?.includes('json') ? JSON.parse(text) : {};
          resolve({ status: res.statusCode ?? 0, body: json });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

let populations = 0;

/** Submits `plan` (the sum fixture by default, room for 20 tasks) to a fresh population. */
async function submit(
  port: number,
  plan?: (population: string) => unknown,
): Promise<{ id: string; population: string }> {
  const population = `resource-urls-${process.pid}-${++populations}`;
  const body = plan?.(population) ?? {
    ...fixture,
    population,
    schedule: { ...fixture.schedule, target_clients: 20, min_reports: 1, min_clients_in_aggregate: 1 },
  };
  const res = await request(port, '/v1/plans', { method: 'POST', body });
  expect(res.status).toBe(201);
  return { id: (res.body as { id: string }).id, population };
}

let devices = 0;

function checkin(
  port: number,
  population: string,
  options: { host?: string; device?: string } = {},
): Promise<Answer> {
  return request(port, `/v1/populations/${population}/checkin`, {
    ...options,
    method: 'POST',
    body: { device_id: options.device ?? `device-${++devices}` },
  });
}

async function assigned(port: number, planId: string): Promise<number> {
  const res = await request(port, `/v1/plans/${planId}/rounds`);
  expect(res.status).toBe(200);
  return (res.body as unknown as { rounds: { assigned: number }[] }).rounds[0]!.assigned;
}

/** The assignment's three URLs, after checking that each is `base` followed by the resource's path. */
function urlsOn(answer: Answer, base: string): string[] {
  expect(answer.status).toBe(200);
  // `format: uri` in the OpenAPI document: absolute URLs only.
  expect(checkinResponse(answer.body) ? [] : checkinResponse.errors).toEqual([]);
  const a = answer.body.assignment;
  expect(a).toBeDefined();
  const urls = [a!.client_plan_url, a!.broadcast_url, a!.upload_url];
  expect(urls[0]).toBe(`${base}/v1/plans/${a!.plan_id}/client-plan`);
  expect(urls[1]).toMatch(new RegExp(`^${reEscape(base)}/v1/plans/${a!.plan_id}/rounds/1\\.1/broadcast$`));
  expect(urls[2]).toMatch(new RegExp(`^${reEscape(base)}/v1/tasks/[A-Za-z0-9_-]{22}/result$`));
  return urls;
}

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('without PUBLIC_URL', () => {
  let port: number;
  beforeAll(async () => {
    port = await serve({});
  });

  test.each(reachableAddresses())(
    'a client that came through %s gets URLs on that address, which it can fetch',
    async (address) => {
      const { population } = await submit(port);
      // fetch, as the SDK in Node does: the Host header is whatever the server URL says.
      const res = await fetch(`http://${address}:${port}/v1/populations/${population}/checkin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ device_id: `via-${address}` }),
      });
      const urls = urlsOn({ status: res.status, body: await res.json() }, `http://${address}:${port}`);
      expect((await fetch(urls[0]!)).status).toBe(200);
      expect((await fetch(urls[1]!)).status).toBe(200);
    },
  );

  test.each([
    ['a name, in lower case', 'Rounds.Example:8443', 'http://rounds.example:8443'],
    ['a name without a port', 'rounds.example', 'http://rounds.example'],
    ['localhost', 'localhost:8080', 'http://localhost:8080'],
    ['an IPv6 literal', '[::1]:9000', 'http://[::1]:9000'],
  ])('any other Host header (%s) gets URLs of that host', async (_what, host, base) => {
    const { population } = await submit(port);
    const urls = urlsOn(await checkin(port, population, { host }), base);
    // What the URL names is served there: here, at 127.0.0.1 under the same Host.
    const plan = await request(port, new URL(urls[0]!).pathname, { host });
    expect(plan.status).toBe(200);
  });

  test('the secure_aggregation url of a secure round is on the same host', async () => {
    const { population } = await submit(port, (p) =>
      threeSumsPlan(
        p,
        { rounds: 1, target_clients: 3, over_selection: 1, min_reports: 3, reporting_deadline_s: 300 },
        { protocol: 'secagg+', degree: 3, threshold: 2 },
      ),
    );
    const answer = await checkin(port, population, { host: 'rounds.example:8443' });
    urlsOn(answer, 'http://rounds.example:8443');
    const task = new URL(answer.body.assignment!.upload_url).pathname.split('/')[3];
    expect(answer.body.assignment!.secure_aggregation?.url).toBe(
      `http://rounds.example:8443/v1/tasks/${task}/secagg`,
    );
  });

  test.each([
    ['a path and query', 'evil.example/phish?x='],
    ['user info', 'rounds.example@evil.example'],
    ['a space', 'rounds.example evil.example'],
    ['two ports', 'rounds.example:80:81'],
    ['a port out of range', 'rounds.example:99999'],
    ['a backslash', 'evil.example\\rounds.example'],
    ['a percent sign', 'evil%2eexample'],
  ])('a hostile Host header (%s) is refused, and costs no task', async (_what, host) => {
    const { id, population } = await submit(port);
    const before = await assigned(port, id);
    const refused = await checkin(port, population, { host, device: `hostile-${populations}` });
    expect(refused.status).toBe(400);
    expect(refused.body.error?.code).toBe('REQUEST_INVALID');
    expect(refused.body.error?.details.map((d) => d.path)).toEqual(['Host']);
    expect(await assigned(port, id)).toBe(before);
    // The same device, asking properly, gets a task: the refused check-in held none for it.
    urlsOn(await checkin(port, population, { device: `hostile-${populations}` }), `http://127.0.0.1:${port}`);
    expect(await assigned(port, id)).toBe(before + 1);
  });
});

describe('with PUBLIC_URL', () => {
  test('URLs are on PUBLIC_URL whatever the Host, a hostile one included (as before)', async () => {
    const port = await serve({ publicUrl: 'https://rounds.example/base' });
    const { population } = await submit(port);
    for (const host of [`127.0.0.1:${port}`, 'other.example:1', 'evil.example/phish?x=']) {
      urlsOn(await checkin(port, population, { host }), 'https://rounds.example/base');
    }
  });
});
