/**
 * The client SDK's per-request timeouts over real HTTP: a server that never answers, or stops half-way
 * through a body, fails a try as a transient TIMEOUT that is retried like a network error; an upload whose
 * answer is lost is sent again and its 409 UPLOAD_DUPLICATE counts as success, once; an upload's tries end
 * at its task's deadline. The real server runs behind a proxy of the test's, which loses answers on purpose.
 */
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { RoundhouseClient } from '../src/client/client';
import { MemoryExampleStore } from '../src/client/example-store';
import type { Assignment } from '../src/client/types';
import { startCluster, type Cluster } from './support/cluster';
import { assignmentOf, numbers, SdkHarness } from './support/sdk-harness';

let cluster: Cluster;
const h = new SdkHarness(() => cluster, 'sdk-timeouts');
const closers: (() => void)[] = [];

beforeAll(async () => {
  cluster = await startCluster({ workers: 1 });
}, 60_000);
afterAll(async () => {
  for (const close of closers) close();
  await cluster?.stop();
});

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    (server as http.Server).closeAllConnections?.();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(population: string, extra: Partial<ConstructorParameters<typeof RoundhouseClient>[0]> = {}) {
  return new RoundhouseClient({
    server: cluster.url,
    population,
    store: new MemoryExampleStore({ [population]: numbers(1, 2) }),
    ...extra,
  });
}

test('a server that never answers: each try times out, is retried, and the request fails TIMEOUT', async () => {
  let requests = 0;
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('data', (d) => {
      if (d.toString().startsWith('POST')) requests++;
    });
  });
  const url = await listen(silent);
  closers.push(() => sockets.forEach((s) => s.destroy()));
  const c = new RoundhouseClient({
    server: url,
    population: 'nowhere',
    store: new MemoryExampleStore({}),
    timeouts: { connectMs: 300 },
    retry: { attempts: 3, baseMs: 10 },
  });
  const t0 = Date.now();
  await expect(c.checkin()).rejects.toMatchObject({ status: 0, code: 'TIMEOUT', transient: true });
  expect(requests).toBe(3);
  // Three tries of 300 ms; the bound is for a loaded machine, and far below "never".
  expect(Date.now() - t0).toBeLessThan(10_000);
});

test('a body that stops half-way fails the try on the total timeout', async () => {
  const stalling = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"plan_id":');
  });
  const url = await listen(stalling);
  const c = new RoundhouseClient({
    server: url,
    population: 'nowhere',
    store: new MemoryExampleStore({}),
    timeouts: { connectMs: 5000, totalMs: 500 },
    retry: { attempts: 2, baseMs: 10 },
  });
  const a = { plan_id: 'p', client_plan_url: `${url}/v1/plans/p/client-plan` } as Assignment;
  await expect(c.clientPlan(a)).rejects.toMatchObject({
    code: 'TIMEOUT',
    message: expect.stringContaining('no complete answer within 500 ms'),
  });
});

test('an answer that came while this process blocked its event loop is not a timeout', async () => {
  // The server runs in another process, so that it answers while this one is blocked.
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:http').createServer((q, r) => {
         console.log('got');
         setTimeout(() => r.end('{"retry":{"min_seconds":1,"max_seconds":2}}'), 150);
       });
       s.listen(0, '127.0.0.1', () => console.log(s.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  closers.push(() => child.kill());
  const port = await new Promise<string>((r) =>
    child.stdout!.once('data', (d: Buffer) => r(d.toString().trim())),
  );
  const c = new RoundhouseClient({
    server: `http://127.0.0.1:${port}`,
    population: 'nowhere',
    store: new MemoryExampleStore({}),
    timeouts: { connectMs: 200, totalMs: 400 },
    retry: { attempts: 1 },
  });
  const received = new Promise((r) => child.stdout!.once('data', r));
  const answer = c.checkin();
  await received;
  // Blocked well past both timeouts, while the answer (150 ms after the request) arrives in the socket;
  // from a setImmediate callback, so that the loop's next turn runs its expired timers before it reads.
  await new Promise((r) => setImmediate(r));
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    // busy
  }
  expect(await answer).toEqual({ retry: { min_seconds: 1, max_seconds: 2 } });
});

/**
 * A proxy to the cluster that passes everything on, except that it holds back the answer to the first
 * upload (`lose-answer`: the server did accept it) or never passes uploads on at all (`hold`).
 */
async function proxy(mode: 'lose-answer' | 'hold'): Promise<{ url: string; uploads: number[] }> {
  const uploads: number[] = [];
  const target = new URL(cluster.url);
  const server = http.createServer((req, res) => {
    const upload = req.method === 'POST' && req.url!.endsWith('/result');
    if (upload && mode === 'hold') return void req.resume();
    const up = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        if (upload) uploads.push(answer.statusCode!);
        if (upload && uploads.length === 1) return void answer.resume();
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(up);
  });
  return { url: await listen(server), uploads };
}

test('an upload whose answer is lost is sent again with its token: 409 UPLOAD_DUPLICATE is success, counted once', async () => {
  const { id, population } = await h.sumPlan('lost', { targetClients: 3, overSelection: 1 });
  const { url, uploads } = await proxy('lose-answer');
  const c = client(population, { timeouts: { totalMs: 1500 }, retry: { attempts: 4, baseMs: 10 } });
  const a = await assignmentOf(c);
  const outcome = await c.runTask({ ...a, upload_url: a.upload_url.replace(cluster.url, url) });
  expect(outcome.kind).toBe('completed');
  // Accepted the first time (its answer lost on the way), a duplicate the second.
  expect(uploads).toEqual([202, 409]);
  expect((await h.roundOf(id, 1)).reported).toBe(1);
}, 60_000);

test("an upload that is never answered ends at its task's deadline, however long the total timeout", async () => {
  const { population } = await h.sumPlan('held', { targetClients: 3, overSelection: 1 });
  const { url } = await proxy('hold');
  const c = client(population, { timeouts: { totalMs: 600_000 }, retry: { attempts: 10, baseMs: 10 } });
  const a = await assignmentOf(c);
  const t0 = Date.now();
  const outcome = await c.runTask({
    ...a,
    upload_url: a.upload_url.replace(cluster.url, url),
    deadline: Date.now() + 2000,
  });
  expect(outcome).toMatchObject({ kind: 'abandoned', reason: 'deadline-before-upload' });
  expect(Date.now() - t0).toBeLessThan(15_000);
}, 60_000);
