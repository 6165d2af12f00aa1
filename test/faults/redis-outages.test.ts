/**
 * Redis going away under a running cluster, on a `redis-server` of the test's own: killed and restarted
 * mid-round with append-only persistence (no upload that got 202 may be lost), and stopped (SIGSTOP) for
 * 10 s (the API answers fast, 2xx or 503 with Retry-After, never a hang, a 500 or a crash; the round then
 * completes). Real processes, raw HTTP clients that retry as real ones do.
 */
import { vectorSumPlan, vectorUpload } from '../support/plans';
import {
  checkinUntilAssigned,
  clientDelta,
  runClients,
  sumOf,
  uploadUntilAccepted,
  type ClientOptions,
} from '../support/fault-clients';
import { startFaultCluster, startOwnRedis, type FaultCluster, type OwnRedis } from '../support/fault-harness';
import { needs } from '../support/needs';
import type { RawAssignment } from '../support/raw-client';

const K = 8;
const population = `vectors${K}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let redis: OwnRedis | undefined;
let cluster: FaultCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  await redis?.stop();
  cluster = undefined;
  redis = undefined;
});

function plan(clients: number, rounds: number): Record<string, unknown> {
  return vectorSumPlan(K, {
    rounds,
    target_clients: clients,
    over_selection: 1,
    min_reports: clients,
    min_clients_in_aggregate: 4,
    selection_timeout_s: 300,
    reporting_deadline_s: 300,
  });
}

needs('redis-server')('Redis outages', () => {
  test('Redis killed and restarted mid-round (append-only, fsync always): no accepted upload is lost', async () => {
    const CLIENTS = 20;
    redis = await startOwnRedis({ appendOnly: true });
    cluster = await startFaultCluster({ redisUrl: redis.url, workers: 2, env: { WORKER_LOCK_MS: '2000' } });
    const id = await cluster.submit(plan(CLIENTS, 2));
    const c = cluster;
    const options: ClientOptions = { servers: () => [c.url] };
    const devices = Array.from({ length: CLIENTS }, (_, i) => `d${i}`);

    // A third of the way in, Redis dies without a final write and comes back from its append-only file;
    // clients meanwhile see errors and retry.
    let outage: Promise<void> | undefined;
    const one = await runClients({
      population,
      round: 1,
      k: K,
      devices,
      options,
      concurrency: 4,
      onAccepted: (n) => {
        if (n === Math.floor(CLIENTS / 3) && !outage) {
          outage = (async () => {
            await redis!.kill('SIGKILL');
            await sleep(1000);
            await redis!.restart();
          })();
        }
      },
    });
    expect(outage).toBeDefined();
    await outage;
    expect(one.accepted).toBe(CLIENTS);
    const first = await cluster.waitCompleted(id, 1);
    expect(first).toMatchObject({ reported: CLIENTS, aggregated_clients: CLIENTS });
    expect(first.output).toEqual({ total: one.total, count: CLIENTS });

    // And the plan goes on.
    const two = await runClients({ population, round: 2, k: K, devices, options });
    const second = await cluster.waitCompleted(id, 2);
    expect(second.output).toEqual({ total: two.total, count: CLIENTS });
    expect(cluster.deaths()).toEqual([]);
  }, 240_000);

  test('Redis unreachable for 10 s: answers stay fast (2xx or 503 with Retry-After), then the round completes', async () => {
    const CLIENTS = 10;
    /** The longest any answer may take while Redis does not answer. */
    const BOUND_MS = 5_000;
    const STALL_MS = 10_000;
    redis = await startOwnRedis();
    cluster = await startFaultCluster({ redisUrl: redis.url, workers: 1, env: { WORKER_LOCK_MS: '2000' } });
    const id = await cluster.submit(plan(CLIENTS, 1));
    const api = cluster.apis[0]!;
    const options: ClientOptions = { servers: () => [api.url] };
    const assignments: RawAssignment[] = [];
    for (let i = 0; i < CLIENTS; i++)
      assignments.push(await checkinUntilAssigned(population, `d${i}`, options, 1));
    const body = (i: number) => vectorUpload(clientDelta(K, i, 1));
    for (let i = 0; i < CLIENTS / 2; i++)
      expect((await uploadUntilAccepted(assignments[i]!, body(i), options)).final.status).toBe(202);

    interface Seen {
      readonly what: string;
      readonly status: number | string;
      readonly ms: number;
      readonly retryAfter: string | null;
      readonly code?: string;
    }
    const seen: Seen[] = [];
    const ask = async (what: string, path: string, init: RequestInit = {}) => {
      const t0 = Date.now();
      try {
        const res = await fetch(`${api.url}${path}`, {
          ...init,
          // Past the bound the answer is wrong anyway; the limit only keeps the test from waiting out a hang.
          signal: AbortSignal.timeout(STALL_MS + 10_000),
        });
        const json = (await res.json().catch(() => ({}))) as { error?: { code?: string } };
        seen.push({
          what,
          status: res.status,
          ms: Date.now() - t0,
          retryAfter: res.headers.get('retry-after'),
          ...(json.error?.code ? { code: json.error.code } : {}),
        });
      } catch (e) {
        seen.push({ what, status: `no answer: ${String(e)}`, ms: Date.now() - t0, retryAfter: null });
      }
    };
    const operator = { authorization: `Bearer ${cluster.operatorToken}` };
    const requests: [string, () => Promise<void>][] = [
      ['healthz', () => ask('healthz', '/healthz')],
      ['readyz', () => ask('readyz', '/readyz')],
      ['rounds', () => ask('rounds', `/v1/plans/${id}/rounds`, { headers: operator })],
      [
        'checkin',
        () =>
          ask('checkin', `/v1/populations/${population}/checkin`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ device_id: `late-${seen.length}` }),
          }),
      ],
      ...assignments.slice(CLIENTS / 2).map((a, j): [string, () => Promise<void>] => [
        'upload',
        () =>
          ask('upload', new URL(a.upload_url).pathname, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${a.token}`,
              'content-type': 'application/octet-stream',
              'x-device-credential': a.device!,
            },
            body: body(CLIENTS / 2 + j) as BodyInit,
          }),
      ]),
    ];

    redis.pause();
    const stalledAt = Date.now();
    const own = redis;
    const resumed = sleep(STALL_MS).then(() => own.resume());
    // Every kind of request, again and again, while Redis does not answer. The last start early enough that an
    // answer within the bound comes before Redis does: a request that waits for Redis takes longer.
    await Promise.all(
      requests.map(async ([, send]) => {
        while (Date.now() - stalledAt < STALL_MS - BOUND_MS) {
          await send();
          await sleep(250);
        }
      }),
    );
    await resumed;

    expect(api.alive).toBe(true);
    const wrong = seen.filter(
      (s) =>
        s.ms > BOUND_MS ||
        typeof s.status !== 'number' ||
        (s.what === 'healthz' && s.status !== 200) ||
        !(
          (s.status >= 200 && s.status < 300) ||
          (s.status === 503 && (s.retryAfter !== null || s.what === 'readyz'))
        ),
    );
    expect(wrong).toEqual([]);
    for (const [what] of requests) expect(seen.some((s) => s.what === what)).toBe(true);

    // Redis is back: the rest of the uploads go through (or were stored while it was away), the round completes.
    for (let i = CLIENTS / 2; i < CLIENTS; i++)
      expect((await uploadUntilAccepted(assignments[i]!, body(i), options)).accepted).toBe(true);
    let expected = 0;
    for (let i = 0; i < CLIENTS; i++) expected += sumOf(clientDelta(K, i, 1));
    const info = await cluster.waitCompleted(id, 1);
    expect(info.output).toEqual({ total: expected, count: CLIENTS });
    expect(cluster.deaths()).toEqual([]);
  }, 240_000);
});
