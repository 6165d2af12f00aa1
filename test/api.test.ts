import type { Assignment } from '../src/client';
/**
 * The HTTP API over real HTTP (port 0, global fetch) against a real Redis (127.0.0.1:6379) on a unique key
 * prefix, with the real store, engine, plan cache and job queue. No aggregation worker runs: uploads are
 * queued and stay queued, which is all these tests need.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { BullJobs } from '../src/aggregation/jobs';
import { createApp } from '../src/api/app';
import { bundleLeaves, readBundle, writeBundle, type BundleTensor } from '../src/codec';
import { loadConfig, type Config } from '../src/config';
import { LocalEvaluator } from '../src/isolate/local-evaluator';
import { RoundEngine } from '../src/rounds/engine';
import { StorePlanCache } from '../src/rounds/plan-cache';
import { buildFederatedSum } from '../src/plans';
import { openTestStore, type TestStore } from '../src/store/testing';
import type { TffType } from '../src/compute/types';

const OPERATOR = 'operator-token-for-tests';
const MAX_UPLOAD = 4096;
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'sum-plan.json'), 'utf8'));
/** Every log line of the apps, to check what they log and what they never log. */
const logLines: string[] = [];
const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });

interface Served {
  readonly url: string;
  readonly server: http.Server;
}

let ts: TestStore;
let jobs: BullJobs;
let plans: StorePlanCache;
let engine: RoundEngine;
const servers: http.Server[] = [];

/** An app on its own server sharing the one store; `over` changes its configuration. */
async function serve(
  over: Partial<Config> = {},
  ready = (): Promise<unknown> => ts.redis.ping(),
): Promise<Served> {
  const server = http.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = loadConfig(
    {},
    {
      operatorToken: OPERATOR,
      tokenSecret: 'task-token-secret-for-tests',
      publicUrl: url,
      maxUploadBytes: MAX_UPLOAD,
      maxPlanBytes: 1 << 20,
      ...over,
    },
  );
  server.on('request', createApp({ config, store: ts.store, engine, plans, jobs, log, ready }));
  return { url, server };
}

let api: Served;
const op = { authorization: `Bearer ${OPERATOR}` };

beforeAll(async () => {
  ts = openTestStore('api');
  jobs = new BullJobs(ts.redis, ts.prefix);
  const limits = loadConfig({}).limits;
  plans = new StorePlanCache(ts.store, limits);
  const evaluator = new LocalEvaluator(limits);
  engine = new RoundEngine({
    store: ts.store,
    jobs,
    plans,
    evaluator,
    config: { limits, maxRoundAttempts: 10 },
    log,
  });
  api = await serve();
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

/**
 * A response body. Bodies are checked by the matchers against what the API should answer; typing them
 * would only restate the expectations.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;

async function json(res: Response): Promise<Body> {
  return res.json();
}

async function errorOf(res: Response): Promise<{ status: number; code: string; details: unknown[] }> {
  const body = await json(res);
  return { status: res.status, code: body.error.code, details: body.error.details };
}

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function submit(plan: unknown): Promise<Body> {
  const res = await post(`${api.url}/v1/plans`, plan, op);
  expect(res.status).toBe(201);
  return json(res);
}

/** The device id each task token was issued to, so that `upload` presents the right device. */
const deviceOfToken = new Map<string, string>();
let devices = 0;

/** Checks in as `deviceId` (a fresh device by default: one device holds one task per round). */
async function checkin(population: string, deviceId = `device-${++devices}`): Promise<Body> {
  const res = await post(`${api.url}/v1/populations/${population}/checkin`, { device_id: deviceId });
  expect(res.status).toBe(200);
  const body = await json(res);
  if (body.assignment) deviceOfToken.set(body.assignment.token, deviceId);
  return body;
}

function upload(
  a: Pick<Assignment, 'upload_url' | 'token'>,
  bytes: Uint8Array,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(a.upload_url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${a.token}`,
      'content-type': 'application/octet-stream',
      'x-device-credential': deviceOfToken.get(a.token) ?? 'unknown-device',
      ...headers,
    },
    body: Uint8Array.from(bytes),
  });
}

/** A bundle of the upload type with every float set to `value`; `shapeOf` may bend a shape. */
function resultBundle(
  type: TffType,
  value: number,
  shapeOf: (shape: number[]) => number[] = (s) => s,
  intValue = 1,
): Uint8Array {
  const tensors: BundleTensor[] = bundleLeaves(type).map(({ name, leaf }) => {
    const shape = shapeOf(leaf.type.shape.map((d) => d ?? 1));
    const n = shape.reduce((a, b) => a * b, 1);
    const data =
      leaf.type.dtype === 'float32'
        ? new Float32Array(n).fill(value)
        : leaf.type.dtype === 'int32'
          ? new Int32Array(n).fill(intValue)
          : new Uint8Array(n).fill(1);
    return { name, dtype: leaf.type.dtype, shape, data };
  });
  return writeBundle(tensors);
}

describe('operator endpoints', () => {
  it('need the operator token', async () => {
    const tries: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Basic ${OPERATOR}` },
    ];
    for (const headers of tries) {
      const res = await fetch(`${api.url}/v1/plans`, { headers });
      expect(await errorOf(res)).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    const res = await post(`${api.url}/v1/plans`, fixture, { authorization: 'Bearer nope' });
    expect(res.status).toBe(401);
  });

  it('reject an invalid plan with every detail', async () => {
    const bad = { ...fixture, name: 'has spaces', schedule: { rounds: 0, target_clients: 3 } };
    const e = await errorOf(await post(`${api.url}/v1/plans`, bad, op));
    expect(e).toMatchObject({ status: 400, code: 'PLAN_SCHEMA_INVALID' });
    const paths = (e.details as { path: string }[]).map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['/name', '/schedule/rounds']));
  });

  it('reject bodies that are not JSON plans', async () => {
    const malformed = await fetch(`${api.url}/v1/plans`, {
      method: 'POST',
      headers: { ...op, 'content-type': 'application/json' },
      body: '{"format": ',
    });
    expect(await errorOf(malformed)).toMatchObject({ status: 400, code: 'REQUEST_INVALID' });
    const text = await fetch(`${api.url}/v1/plans`, { method: 'POST', headers: op, body: 'hello' });
    expect(await errorOf(text)).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    const small = await serve({ maxPlanBytes: 1000 });
    const big = await post(`${small.url}/v1/plans`, fixture, op);
    expect(await errorOf(big)).toMatchObject({ status: 400, code: 'PLAN_LIMIT_EXCEEDED' });
  });

  it('answer 404 for unknown plans and routes', async () => {
    for (const p of ['/v1/plans/pzzzzzzzzzzzz', '/v1/plans/not-an-id', '/v1/plans/pzzzzzzzzzzzz/rounds']) {
      expect(await errorOf(await fetch(`${api.url}${p}`, { headers: op }))).toMatchObject({
        status: 404,
        code: 'PLAN_NOT_FOUND',
      });
    }
    expect(await errorOf(await fetch(`${api.url}/v2/anything`))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });
  });
});

describe('a plan from submission to a closed round', () => {
  const population = 'numbers-api';
  let plan: Body;
  let uploadType: TffType;
  const assignments: Assignment[] = [];

  beforeAll(async () => {
    plan = await submit({ ...fixture, population });
    uploadType = (await plans.get(plan.id))!.uploadType;
  });

  it('stores the plan and shows it', async () => {
    expect(plan).toMatchObject({
      name: 'hand-written-sum',
      population,
      status: 'active',
      round: 1,
      attempt: 1,
    });
    expect(plan.id).toMatch(/^p[0-9a-z]{12}$/);
    const list = await json(await fetch(`${api.url}/v1/plans`, { headers: op }));
    expect(list.plans.map((p: { id: string }) => p.id)).toContain(plan.id);
    const one = await json(await fetch(`${api.url}/v1/plans/${plan.id}`, { headers: op }));
    expect(one).toMatchObject({ id: plan.id, phase: 'selecting', rounds: 3 });
    const rounds = await json(await fetch(`${api.url}/v1/plans/${plan.id}/rounds`, { headers: op }));
    expect(rounds.rounds).toEqual([
      expect.objectContaining({ round: 1, attempt: 1, phase: 'selecting', assigned: 0, reported: 0 }),
    ]);
    const state = await fetch(`${api.url}/v1/plans/${plan.id}/state`, { headers: op });
    expect(state.status).toBe(200);
    expect(state.headers.get('content-type')).toBe('application/octet-stream');
    const bundle = readBundle(new Uint8Array(await state.arrayBuffer()));
    expect(bundle.tensors.map((t) => t.name)).toEqual(['rounds']);
  });

  it('assigns tasks up to the selection target, then answers retry windows', async () => {
    for (let i = 0; i < 4; i++) {
      const body = await checkin(population, `client-${i}`);
      expect(body.retry).toBeUndefined();
      assignments.push(body.assignment);
    }
    const a = assignments[0]!;
    expect(a).toMatchObject({ plan_id: plan.id, round: 1, attempt: 1 });
    expect(a.task_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a.upload_url).toBe(`${api.url}/v1/tasks/${a.task_id}/result`);
    expect(a.broadcast_url).toBe(`${api.url}/v1/plans/${plan.id}/rounds/1.1/broadcast`);
    expect(a.deadline).toBeGreaterThan(Date.now() + 200_000);
    expect(new Set(assignments.map((x) => x.task_id)).size).toBe(4);
    const claims = JSON.parse(Buffer.from(a.token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({
      plan: plan.id,
      round: 1,
      attempt: 1,
      task: a.task_id,
      device: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    // The token binds the device by an HMAC under the round key, never by its id.
    expect(JSON.stringify(claims)).not.toContain('client-0');
    expect(claims.exp).toBe(Math.floor(a.deadline / 1000));

    const fifth = await checkin(population);
    expect(fifth.assignment).toBeUndefined();
    expect(fifth.retry.min_seconds).toBeGreaterThanOrEqual(1);
    expect(fifth.retry.max_seconds).toBeGreaterThanOrEqual(fifth.retry.min_seconds);
    expect(fifth.retry.max_seconds).toBeLessThanOrEqual(600);
    const one = await json(await fetch(`${api.url}/v1/plans/${plan.id}`, { headers: op }));
    expect(one.phase).toBe('reporting');
  });

  it('serves the client plan: immutable, ETag, 304, gzip', async () => {
    const url = assignments[0]!.client_plan_url;
    const res = await fetch(url, { headers: { 'accept-encoding': 'identity' } });
    expect(res.status).toBe(200);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('content-encoding')).toBeNull();
    const text = await res.text();
    const doc = JSON.parse(text);
    expect(doc).toMatchObject({ plan_id: plan.id, upload_type: uploadType });
    expect(Object.keys(doc.functions)).toEqual(['add_batch']);
    expect(text.length).toBeGreaterThan(1024);

    const again = await fetch(url, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    const listed = await fetch(url, { headers: { 'if-none-match': `"other", W/${etag}` } });
    expect(listed.status).toBe(304);
    const stale = await fetch(url, { headers: { 'if-none-match': '"other"' } });
    expect(stale.status).toBe(200);
    await stale.arrayBuffer();

    const gz = await fetch(url, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gz.headers.get('vary')).toMatch(/accept-encoding/i);
    expect(gz.headers.get('etag')).toBe(etag);
    expect(await gz.text()).toBe(text);
  });

  it('serves the broadcast: immutable, ETag, 304', async () => {
    const url = assignments[0]!.broadcast_url;
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(readBundle(bytes).tensors).toEqual([]);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect((await fetch(url, { headers: { 'if-none-match': etag } })).status).toBe(304);
    for (const bad of ['2.1', '1.2', 'x', '0.1']) {
      const missing = await fetch(`${api.url}/v1/plans/${plan.id}/rounds/${bad}/broadcast`);
      expect(await errorOf(missing)).toMatchObject({ status: 404, code: 'ROUND_NOT_FOUND' });
    }
    const noPlan = await fetch(`${api.url}/v1/plans/pzzzzzzzzzzzz/client-plan`);
    expect(await errorOf(noPlan)).toMatchObject({ status: 404, code: 'PLAN_NOT_FOUND' });
  });

  it('accepts a valid upload once, and refuses every bad one with its code', async () => {
    const [a1, a2, a3] = assignments as [Assignment, Assignment, Assignment, Assignment];
    const good = resultBundle(uploadType, 1.5);

    const ok = await upload(a1, good);
    expect(ok.status).toBe(202);
    expect(await json(ok)).toEqual({ accepted: true });

    expect(await errorOf(await upload(a1, good))).toMatchObject({ status: 409, code: 'UPLOAD_DUPLICATE' });
    expect(await errorOf(await upload(a1, resultBundle(uploadType, 2)))).toMatchObject({
      status: 403,
      code: 'TOKEN_REUSED',
    });

    // Forged: a2's token with a1's task in the payload, the signature left as it was.
    const [h, p, s] = a2.token.split('.') as [string, string, string];
    const payload = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), task: a3.task_id };
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    const e401 = await errorOf(await upload({ upload_url: a3.upload_url, token: forged }, good));
    expect(e401).toMatchObject({
      status: 401,
      code: 'TOKEN_INVALID',
      details: [{ message: 'bad signature' }],
    });
    expect(await errorOf(await upload({ upload_url: a2.upload_url, token: '' }, good))).toMatchObject({
      status: 401,
      code: 'TOKEN_INVALID',
    });
    expect(await errorOf(await upload({ upload_url: a3.upload_url, token: a2.token }, good))).toMatchObject({
      status: 403,
      code: 'TOKEN_TASK_MISMATCH',
    });

    const rejected: [Uint8Array, Record<string, string>, number, string][] = [
      [resultBundle(uploadType, 1, () => [2]), {}, 400, 'BUNDLE_TYPE_MISMATCH'],
      [resultBundle(uploadType, NaN), {}, 400, 'BUNDLE_NOT_FINITE'],
      [resultBundle(uploadType, Infinity), {}, 400, 'BUNDLE_NOT_FINITE'],
      [good.subarray(0, good.length - 2), {}, 400, 'BUNDLE_MALFORMED'],
      [gzipSync(good).subarray(0, 12), { 'content-encoding': 'gzip' }, 400, 'BUNDLE_MALFORMED'],
      [new Uint8Array(MAX_UPLOAD + 1), {}, 413, 'UPLOAD_TOO_LARGE'],
      [gzipSync(new Uint8Array(MAX_UPLOAD * 4)), { 'content-encoding': 'gzip' }, 413, 'UPLOAD_TOO_LARGE'],
    ];
    for (const [bytes, headers, status, code] of rejected) {
      expect([code, await errorOf(await upload(a2, bytes, headers))]).toMatchObject([code, { status, code }]);
    }
    for (const type of ['text/plain', 'application/json']) {
      expect(await errorOf(await upload(a2, good, { 'content-type': type }))).toMatchObject({
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
      });
    }

    // The refusals changed nothing: a2 may still upload, here gzipped.
    const gz = await upload(a2, gzipSync(resultBundle(uploadType, 2.5)), { 'content-encoding': 'gzip' });
    expect(gz.status).toBe(202);

    // A second app on the same store whose queue bound is 1: two uploads wait, so it is busy.
    const tight = await serve({ maxPendingUploads: 1 });
    const busy = await upload(
      { upload_url: `${tight.url}/v1/tasks/${a3.task_id}/result`, token: a3.token },
      good,
    );
    expect(busy.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await errorOf(busy)).toMatchObject({ status: 503, code: 'BUSY' });

    // The third good upload reaches the target and closes the round; the fourth is late.
    expect((await upload(a3, resultBundle(uploadType, 3))).status).toBe(202);
    const late = await upload(assignments[3]!, good);
    expect(await errorOf(late)).toMatchObject({ status: 409, code: 'UPLOAD_LATE' });

    // Exactly the accepted uploads were queued for aggregation, and the round's finalize once.
    const queued = (await jobs.queue.getJobs(['waiting', 'prioritized', 'delayed', 'paused']))
      .filter((j) => j.data.plan === plan.id)
      .map((j) => (j.name === 'accumulate' ? j.data.task : j.name))
      .sort();
    expect(queued).toEqual(
      [...[a1, a2, a3].map((a) => a.task_id), 'deadline', 'deadline', 'finalize'].sort(),
    );

    const rounds = await json(await fetch(`${api.url}/v1/plans/${plan.id}/rounds`, { headers: op }));
    expect(rounds.rounds[0]).toMatchObject({
      phase: 'closed',
      assigned: 4,
      reported: 3,
      rejected: rejected.length,
      late: 1,
    });
  });

  it('counts check-ins and uploads in /metrics, and never values', async () => {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    expect(text).toMatch(/roundhouse_checkins_total\{outcome="assigned"\} 4/);
    expect(text).toMatch(/roundhouse_uploads_total\{outcome="accepted"\} 3/);
    expect(text).toMatch(/roundhouse_uploads_total\{outcome="BUNDLE_NOT_FINITE"\} 2/);
    expect(text).toMatch(
      /roundhouse_http_requests_total\{method="POST",route="\/v1\/tasks\/:task\/result",status="202"\}/,
    );
    expect(text).not.toMatch(/task_id|client-0/);
  });
});

describe('secure-sum uploads', () => {
  it('refuse values outside [0, 2^bitwidth - 1] and count them as rejected', async () => {
    const population = 'secure-api';
    const plan = await submit(
      buildFederatedSum({
        secure: true,
        // In the clear: the server checks each client's values against the secure-sum ranges.
        secureAggregation: 'none',
        bitwidth: 4,
        collection: population,
        targetClients: 2,
        overSelection: 1,
      }),
    );
    const type = (await plans.get(plan.id))!.uploadType;
    const [a1, a2] = [(await checkin(population)).assignment, (await checkin(population)).assignment];
    for (const v of [16, -1, 1 << 30]) {
      const e = await errorOf(await upload(a1, resultBundle(type, 0, undefined, v)));
      expect([v, e]).toMatchObject([v, { status: 400, code: 'SECURE_SUM_OUT_OF_RANGE' }]);
    }
    expect((await upload(a1, resultBundle(type, 0, undefined, 15))).status).toBe(202);
    expect((await upload(a2, resultBundle(type, 0, undefined, 0))).status).toBe(202);
    const rounds = await json(await fetch(`${api.url}/v1/plans/${plan.id}/rounds`, { headers: op }));
    expect(rounds.rounds[0]).toMatchObject({ phase: 'closed', reported: 2, rejected: 3 });
  });
});

describe('check-ins', () => {
  it('answer an unknown population with a retry window, never 404', async () => {
    const body = await checkin('nobody-here');
    expect(body.retry.min_seconds).toBeGreaterThanOrEqual(1);
    expect(body.retry.max_seconds).toBeLessThanOrEqual(600);
  });

  it('need a device id, and refuse a bad body', async () => {
    const empty = await fetch(`${api.url}/v1/populations/nobody-here/checkin`, { method: 'POST' });
    expect(await errorOf(empty)).toMatchObject({
      status: 401,
      code: 'DEVICE_CREDENTIAL_INVALID',
      details: [{ path: 'x-device-credential', message: 'missing' }],
    });
    const header = await fetch(`${api.url}/v1/populations/nobody-here/checkin`, {
      method: 'POST',
      headers: { 'x-device-credential': 'device-in-a-header' },
    });
    expect((await json(header)).retry).toBeDefined();
    // `client_id` is the older name of `device_id`.
    expect(
      (await json(await post(`${api.url}/v1/populations/nobody-here/checkin`, { client_id: 'c' }))).retry,
    ).toBeDefined();
    const bad = await post(`${api.url}/v1/populations/nobody-here/checkin`, { client_id: 7 });
    expect(await errorOf(bad)).toMatchObject({
      status: 400,
      code: 'REQUEST_INVALID',
      details: [{ path: '/client_id' }],
    });
    const name = await post(`${api.url}/v1/populations/${encodeURIComponent('{x}')}/checkin`, {});
    expect(await errorOf(name)).toMatchObject({ status: 400, code: 'REQUEST_INVALID' });
  });
});

describe('cross-origin pages', () => {
  it('may call the client endpoints, never the operator endpoints', async () => {
    const origin = { origin: 'https://app.example' };
    const preflight = await fetch(`${api.url}/v1/tasks/abc/result`, {
      method: 'OPTIONS',
      headers: {
        ...origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,x-device-credential',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/x-device-credential/);
    const checkinRes = await fetch(`${api.url}/v1/populations/nobody-here/checkin`, {
      method: 'POST',
      headers: origin,
    });
    expect(checkinRes.headers.get('access-control-allow-origin')).toBe('*');
    const operator = await fetch(`${api.url}/v1/plans`, { headers: { ...origin, ...op } });
    expect(operator.status).toBe(200);
    expect(operator.headers.get('access-control-allow-origin')).toBeNull();
    const operatorPreflight = await fetch(`${api.url}/v1/plans`, {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'POST' },
    });
    expect(operatorPreflight.headers.get('access-control-allow-origin')).toBeNull();
    // The dashboard's calls included: its rounds and its pause / resume / cancel buttons, with the token in
    // the Authorization header (a cross-origin page would have to be preflighted for it, and is refused).
    for (const [method, path] of [
      ['GET', '/v1/plans/p0000000000000/rounds'],
      ['POST', '/v1/plans/p0000000000000/pause'],
      ['POST', '/v1/plans/p0000000000000/cancel'],
    ] as const) {
      const preflight = await fetch(`${api.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          ...origin,
          'access-control-request-method': method,
          'access-control-request-headers': 'authorization',
        },
      });
      expect([path, preflight.headers.get('access-control-allow-origin')]).toEqual([path, null]);
      expect(preflight.headers.get('access-control-allow-headers')).toBeNull();
    }
    const page = await fetch(`${api.url}/dashboard/`, { headers: origin });
    expect(page.headers.get('access-control-allow-origin')).toBeNull();
    // A device's session of a stateful program is a client path too; the operator's program routes are not.
    const preflightOf = async (method: string, path: string) => {
      const res = await fetch(`${api.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          ...origin,
          'access-control-request-method': method,
          'access-control-request-headers': 'authorization',
        },
      });
      return [method, path, res.headers.get('access-control-allow-origin')];
    };
    for (const [method, path] of [
      ['GET', '/v1/programs/g0000000000000/client-program'],
      ['GET', '/v1/programs/g0000000000000/values/model'],
      ['GET', '/v1/sessions/s0000000000000/requests'],
      ['POST', '/v1/sessions/s0000000000000/answers'],
      ['DELETE', '/v1/sessions/s0000000000000'],
    ]) {
      expect(await preflightOf(method!, path!)).toEqual([method, path, '*']);
    }
    for (const [method, path] of [
      ['GET', '/v1/programs/g0000000000000'],
      ['POST', '/v1/programs/g0000000000000/cancel'],
      ['DELETE', '/v1/programs/g0000000000000'],
    ]) {
      expect(await preflightOf(method!, path!)).toEqual([method, path, null]);
    }
  });
});

describe('plan transitions', () => {
  it('pause, resume and cancel where allowed, 409 elsewhere', async () => {
    const population = 'numbers-transitions';
    const plan = await submit({ ...fixture, population });
    const act = (action: string, id = plan.id) =>
      fetch(`${api.url}/v1/plans/${id}/${action}`, { method: 'POST', headers: op });

    expect((await act('pause', plan.id)).status).toBe(200);
    expect((await checkin(population)).retry).toBeDefined();
    expect(await errorOf(await act('pause'))).toMatchObject({ status: 409, code: 'PLAN_STATE_CONFLICT' });
    const resumed = await act('resume');
    expect(await json(resumed)).toMatchObject({ id: plan.id, status: 'active' });
    expect((await checkin(population)).assignment).toBeDefined();
    expect(await json(await act('cancel'))).toMatchObject({ status: 'cancelled' });
    expect(await errorOf(await act('resume'))).toMatchObject({ status: 409, code: 'PLAN_STATE_CONFLICT' });
    expect((await checkin(population)).retry).toBeDefined();
    expect(await errorOf(await act('cancel', 'pzzzzzzzzzzzz'))).toMatchObject({
      status: 404,
      code: 'PLAN_NOT_FOUND',
    });
    expect((await fetch(`${api.url}/v1/plans/${plan.id}/pause`, { method: 'POST' })).status).toBe(401);
  });
});

describe('logs', () => {
  it('have a line per request and never bodies, tokens or client ids', () => {
    const requests = logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
    expect(requests.length).toBeGreaterThan(50);
    expect(requests).toContainEqual(
      expect.objectContaining({
        method: 'POST',
        route: '/v1/tasks/:task/result',
        status: 202,
        duration_ms: expect.any(Number),
      }),
    );
    const all = logLines.join('\n');
    expect(all).not.toMatch(/client-0|eyJ|authorization|reduce_sum|add_batch/i);
  });
});

describe('probes', () => {
  it('answer health and readiness', async () => {
    expect(await json(await fetch(`${api.url}/healthz`))).toEqual({ status: 'ok' });
    expect(await json(await fetch(`${api.url}/readyz`))).toEqual({ status: 'ready' });
    const down = await serve({}, () => Promise.reject(new Error('connection refused')));
    const res = await fetch(`${down.url}/readyz`);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await errorOf(res)).toMatchObject({ status: 503, code: 'NOT_READY' });
    expect((await fetch(`${down.url}/healthz`)).status).toBe(200);
  });
});
