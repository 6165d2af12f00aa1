/**
 * Backpressure before work: an upload the server cannot take now is refused 503 BUSY with Retry-After
 * before its body is read (the round's pending cap, the process's in-flight bytes from Content-Length) or
 * as soon as a chunked body passes the cap, and the connection ends after the answer. Real HTTP against
 * real Redis (127.0.0.1:6379) on a unique prefix; no aggregation worker, so accepted uploads stay pending.
 *
 * The refused requests here never send their body (or stop half-way): a server that read the body before
 * deciding would never answer them.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { BullJobs } from '../src/aggregation/jobs';
import { createApp } from '../src/api/app';
import { bundleLeaves, writeBundle, type BundleTensor } from '../src/codec';
import type { TffType } from '../src/compute/types';
import { loadConfig, type Config } from '../src/config';
import { LocalEvaluator } from '../src/isolate/local-evaluator';
import { RoundEngine } from '../src/rounds/engine';
import { StorePlanCache } from '../src/rounds/plan-cache';
import { openTestStore, type TestStore } from '../src/store/testing';

const OPERATOR = 'operator-token-for-tests';
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'sum-plan.json'), 'utf8'));
const log = pino({ level: 'silent' });
/** An answer that takes longer than this did not come before the body (generous for a loaded machine). */
const PROMPT_MS = 5000;

let ts: TestStore;
let jobs: BullJobs;
let plans: StorePlanCache;
let engine: RoundEngine;
const servers: http.Server[] = [];

async function serve(over: Partial<Config>): Promise<string> {
  const server = http.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = loadConfig(
    {},
    { operatorToken: OPERATOR, tokenSecret: 'task-token-secret-for-tests', publicUrl: url, ...over },
  );
  server.on('request', createApp({ config, store: ts.store, engine, plans, jobs, log }));
  return url;
}

beforeAll(async () => {
  ts = openTestStore('admission');
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

interface Task {
  readonly path: string;
  readonly headers: Record<string, string>;
}

let populations = 0;

/** Submits the sum plan to a fresh population through `url` and checks in `n` devices. */
async function tasks(url: string, n: number): Promise<{ tasks: Task[]; bundle: Uint8Array }> {
  const population = `admission-${process.pid}-${++populations}`;
  const submitted = await fetch(`${url}/v1/plans`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...fixture, population, schedule: { ...fixture.schedule, target_clients: n } }),
  });
  expect(submitted.status).toBe(201);
  const plan = (await submitted.json()) as { id: string };
  const uploadType = (await plans.get(plan.id))!.uploadType;
  const out: Task[] = [];
  for (let i = 0; i < n; i++) {
    const device = `device-${populations}-${i}`;
    const res = await fetch(`${url}/v1/populations/${population}/checkin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: device }),
    });
    const { assignment } = (await res.json()) as { assignment: { upload_url: string; token: string } };
    out.push({
      path: new URL(assignment.upload_url).pathname,
      headers: {
        authorization: `Bearer ${assignment.token}`,
        'content-type': 'application/octet-stream',
        'x-device-credential': device,
      },
    });
  }
  return { tasks: out, bundle: resultBundle(uploadType) };
}

function resultBundle(type: TffType): Uint8Array {
  const tensors: BundleTensor[] = bundleLeaves(type).map(({ name, leaf }) => {
    const shape = leaf.type.shape.map((d) => d ?? 1);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = leaf.type.dtype === 'int32' ? new Int32Array(n).fill(1) : new Float32Array(n).fill(1);
    return { name, dtype: leaf.type.dtype, shape, data };
  });
  return writeBundle(tensors);
}

/** What a raw request got: its answer, and whether the server ended the connection after it. */
interface Raw {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly ms: number;
  readonly closed: Promise<boolean>;
}

/**
 * Sends a request's headers and `first` of its body, then nothing more (until `finish`): with
 * `chunked` there is no Content-Length.
 */
function stalled(
  url: string,
  task: Task,
  bundle: Uint8Array,
  first: number,
  chunked = false,
): { answer: Promise<Raw>; finish(): void } {
  const t0 = Date.now();
  const u = new URL(url);
  const req = http.request({
    host: u.hostname,
    port: u.port,
    path: task.path,
    method: 'POST',
    agent: false,
    headers: chunked ? task.headers : { ...task.headers, 'content-length': String(bundle.length) },
  });
  req.flushHeaders();
  if (first > 0) req.write(Buffer.from(bundle.subarray(0, first)));
  const answer = new Promise<Raw>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.once('end', () => {
        const socket = req.socket;
        const closed = new Promise<boolean>((r) => {
          if (!socket || socket.destroyed) return r(true);
          const timer = setTimeout(() => r(false), PROMPT_MS);
          socket.once('close', () => {
            clearTimeout(timer);
            r(true);
          });
        });
        resolve({ status: res.statusCode!, headers: res.headers, body, ms: Date.now() - t0, closed });
      });
    });
  });
  // A refused request's socket is gone: writing the rest of it may fail, which is the point.
  answer.catch(() => undefined);
  return {
    answer,
    finish: () => {
      req.on('error', () => undefined);
      req.end(Buffer.from(bundle.subarray(first)));
    },
  };
}

async function expectBusy(raw: Raw): Promise<void> {
  expect({
    status: raw.status,
    code: (JSON.parse(raw.body) as { error: { code: string } }).error.code,
  }).toEqual({
    status: 503,
    code: 'BUSY',
  });
  expect(raw.headers['retry-after']).toBe('2');
  expect(raw.headers.connection).toBe('close');
  expect(raw.ms).toBeLessThan(PROMPT_MS);
  expect(await raw.closed).toBe(true);
}

test('the round pending cap refuses an upload before its body is read', async () => {
  const url = await serve({ maxPendingUploads: 1 });
  const {
    tasks: [a, b],
    bundle,
  } = await tasks(url, 3);
  const first = stalled(url, a!, bundle, 0);
  first.finish();
  expect((await first.answer).status).toBe(202);

  // One upload waits for aggregation (no worker runs): the next is refused on its headers alone.
  await expectBusy(await stalled(url, b!, bundle, 0).answer);
});

test('the in-flight bytes cap refuses by Content-Length, then admits again once the bytes are released', async () => {
  // Tasks of one app are good on another of the same store and secret: this one has the cap, with room
  // for one upload and a half, so that a second one in flight would pass it.
  const {
    tasks: [a, b, c],
    bundle,
  } = await tasks(await serve({}), 3);
  const url = await serve({ maxInflightUploadBytes: Math.floor(bundle.length * 1.5) });

  const holding = stalled(url, a!, bundle, 8);
  await new Promise((r) => setTimeout(r, 200));
  await expectBusy(await stalled(url, b!, bundle, 0).answer);

  // What a Node fetch client sees: the 503 with its Retry-After, not a network error.
  const viaFetch = await fetch(`${url}${c!.path}`, {
    method: 'POST',
    headers: c!.headers,
    body: bundle as BodyInit,
  });
  expect([viaFetch.status, viaFetch.headers.get('retry-after')]).toEqual([503, '2']);
  await viaFetch.arrayBuffer();

  holding.finish();
  expect((await holding.answer).status).toBe(202);
  const again = stalled(url, b!, bundle, 0);
  again.finish();
  expect((await again.answer).status).toBe(202);
});

test('a chunked body is refused as soon as the bytes it sent pass the cap', async () => {
  const {
    tasks: [a, b],
    bundle,
  } = await tasks(await serve({}), 2);
  const url = await serve({ maxInflightUploadBytes: Math.floor(bundle.length * 1.5) });

  const holding = stalled(url, a!, bundle, 8);
  await new Promise((r) => setTimeout(r, 200));
  // Without a Content-Length nothing is known up front: the first chunk alone passes the cap.
  await expectBusy(await stalled(url, b!, bundle, bundle.length, true).answer);

  holding.finish();
  expect((await holding.answer).status).toBe(202);
});
