import { RoundhouseClient } from '../src/client/client';
import type { Clock } from '../src/client/clock';
import { errorFromResponse, RoundhouseError } from '../src/client/errors';
import { MemoryExampleStore } from '../src/client/example-store';
import { ERROR_CODES, type ErrorCode } from '../src/errors';
import { PLAN_LIBRARY } from '../src/plans';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { vectorSumPlan, vectorUpload } from './support/plans';
import { assignmentOf, FakeClock, numbers, SdkHarness } from './support/sdk-harness';

// The client SDK's errors against a real server: every 4xx the server answers becomes a typed, non-transient
// RoundhouseError with its code and status; transient failures (network, 5xx, 503 BUSY with Retry-After)
// are retried with backoff.

let cluster: Cluster;
const h = new SdkHarness(() => cluster, 'sdk-errors');

beforeAll(async () => {
  cluster = await startCluster({ workers: 1, env: { MAX_UPLOAD_BYTES: '65536' } });
});
afterAll(() => cluster?.stop());

describe('typed errors', () => {
  /** The typed error of a raw request, or the status when it succeeded. */
  async function errorOf(url: string, init: RequestInit = {}): Promise<RoundhouseError | number> {
    const res = await fetch(url.startsWith('http') ? url : `${cluster.url}${url}`, init);
    return res.ok ? res.status : errorFromResponse(res);
  }
  /** The device that holds each task token (an upload presents it in X-Device-Credential). */
  const deviceOf = new Map<string, string>();
  const post = (
    token: string | undefined,
    body: Uint8Array | string,
    type = 'application/octet-stream',
    device = deviceOf.get(token ?? ''),
  ) => ({
    method: 'POST',
    headers: {
      'content-type': type,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(device ? { 'x-device-credential': device } : {}),
    },
    body: body as BodyInit,
  });
  const expectCode = (e: RoundhouseError | number, code: ErrorCode): void => {
    if (typeof e === 'number') throw new Error(`expected ${code}, the request succeeded with ${e}`);
    expect([e.status, e.code, e.transient]).toEqual([ERROR_CODES[code], code, false]);
  };

  test('every 4xx the server answers maps to its code and status, and none is transient', async () => {
    const population = h.unique('errors');
    const id = await h.submit({
      ...vectorSumPlan(4, { rounds: 1, target_clients: 2, over_selection: 1.5 }),
      population,
    });
    const clients = [1, 2, 3].map(() => h.client(population, []));
    const [a, b, c] = await Promise.all(clients.map(assignmentOf));
    for (const [i, x] of [a, b, c].entries()) deviceOf.set(x!.token, clients[i]!.deviceId);
    const good = vectorUpload(Float32Array.from([1, 2, 3, 4]));

    expectCode(await errorOf('/v1/populations/bad%20name/checkin', { method: 'POST' }), 'REQUEST_INVALID');
    expectCode(await errorOf('/v1/plans/p000000000000/client-plan'), 'PLAN_NOT_FOUND');
    expectCode(await errorOf(`/v1/plans/${id}/rounds/9.9/broadcast`), 'ROUND_NOT_FOUND');
    expectCode(await errorOf('/v1/no-such-thing'), 'NOT_FOUND');
    expectCode(await errorOf(a!.upload_url, post(a!.token, good, 'text/plain')), 'UNSUPPORTED_MEDIA_TYPE');
    expectCode(await errorOf(a!.upload_url, post(undefined, good)), 'TOKEN_INVALID');
    expectCode(await errorOf(a!.upload_url, post(`${a!.token}x`, good)), 'TOKEN_INVALID');
    expectCode(await errorOf(b!.upload_url, post(a!.token, good)), 'TOKEN_TASK_MISMATCH');
    expectCode(
      await errorOf(a!.upload_url, post(a!.token, good, undefined, '')),
      'DEVICE_CREDENTIAL_INVALID',
    );
    expectCode(
      await errorOf(a!.upload_url, post(a!.token, good, undefined, clients[1]!.deviceId)),
      'DEVICE_MISMATCH',
    );
    expectCode(await errorOf(a!.upload_url, post(a!.token, Uint8Array.from([1, 2, 3]))), 'BUNDLE_MALFORMED');
    expectCode(
      await errorOf(a!.upload_url, post(a!.token, vectorUpload(Float32Array.from([1, 2, 3])))),
      'BUNDLE_TYPE_MISMATCH',
    );
    expectCode(
      await errorOf(a!.upload_url, post(a!.token, vectorUpload(Float32Array.from([1, NaN, 3, 4])))),
      'BUNDLE_NOT_FINITE',
    );
    expectCode(await errorOf(a!.upload_url, post(a!.token, new Uint8Array(100_000))), 'UPLOAD_TOO_LARGE');
    expect(await errorOf(a!.upload_url, post(a!.token, good))).toBe(202);
    expectCode(await errorOf(a!.upload_url, post(a!.token, good)), 'UPLOAD_DUPLICATE');
    expectCode(
      await errorOf(a!.upload_url, post(a!.token, vectorUpload(Float32Array.from([4, 3, 2, 1])))),
      'TOKEN_REUSED',
    );
    expect(await errorOf(b!.upload_url, post(b!.token, good))).toBe(202); // reaches target: the round closes
    expectCode(await errorOf(c!.upload_url, post(c!.token, good)), 'UPLOAD_LATE');

    // Operator endpoints, through the same function.
    expectCode(await errorOf('/v1/plans'), 'UNAUTHORIZED');
    const invalid = await cluster.operator('/v1/plans', { method: 'POST', body: '{}' });
    const schema = await errorFromResponse(invalid);
    expectCode(schema, 'PLAN_SCHEMA_INVALID');
    expect(schema.details.length).toBeGreaterThan(0);
    const paused = await cluster.operator(`/v1/plans/${id}/resume`, { method: 'POST' });
    expectCode(await errorFromResponse(paused), 'PLAN_STATE_CONFLICT');
  });

  test('the SDK throws them typed: a forged token, a secure-sum value out of range', async () => {
    const { population } = await h.sumPlan('secure', {
      targetClients: 3,
      secure: true,
      // In the clear, so that the server sees (and refuses) the out-of-range value.
      secureAggregation: 'none',
      bitwidth: 4,
    });
    const forger = h.client(population, [1]);
    const a = await assignmentOf(forger);
    await expect(forger.runTask({ ...a, token: `${a.token}x` })).rejects.toMatchObject({
      name: 'RoundhouseError',
      status: 401,
      code: 'TOKEN_INVALID',
      transient: false,
    });
    // 100 does not fit in 4 bits: the server refuses the upload for its content.
    await expect(h.client(population, [60, 40]).runOnce()).rejects.toMatchObject({
      status: 400,
      code: 'SECURE_SUM_OUT_OF_RANGE',
    });
    // The forger's task is still open: the same task with its real token goes through.
    expect((await forger.runTask(a)).kind).toBe('completed');
    // Its answer lost, a client would send the same bytes again: 409 UPLOAD_DUPLICATE, which is success.
    expect((await forger.runTask(a)).kind).toBe('completed');
  });
});

describe('transient failures', () => {
  test('a network failure and a 503 with Retry-After are retried with backoff, then the request passes', async () => {
    const population = h.unique('flaky');
    let calls = 0;
    const flaky = (async (input: string | URL | Request, init?: RequestInit) => {
      calls++;
      if (calls === 1) throw new TypeError('fetch failed');
      if (calls === 2) {
        return new Response(JSON.stringify({ error: { code: 'BUSY', message: 'busy', details: [] } }), {
          status: 503,
          headers: { 'content-type': 'application/json', 'retry-after': '3' },
        });
      }
      return fetch(input, init);
    }) as typeof fetch;
    const clock = new FakeClock();
    const c = h.client(population, [1], { fetch: flaky, clock, random: () => 0.5, retry: { baseMs: 500 } });
    expect((await c.runOnce()).kind).toBe('retry');
    expect(calls).toBe(3);
    // Equal jitter: the first backoff is 250 + 0.5 * 250; the second would be 750 but Retry-After says 3 s.
    expect(clock.sleeps).toEqual([375, 3000]);

    const down = h.client(population, [1], {
      fetch: (async () => {
        throw new TypeError('fetch failed');
      }) as typeof fetch,
      clock: new FakeClock(),
      retry: { attempts: 3 },
    });
    await expect(down.runOnce()).rejects.toMatchObject({ code: 'NETWORK', status: 0, transient: true });
  });

  test('503 BUSY from a real server is retried after Retry-After, and the task completes once it drains', async () => {
    // No worker: accepted uploads wait, and with MAX_PENDING_UPLOADS=1 the second one is BUSY.
    const busy = await startCluster({ workers: 0, env: { MAX_PENDING_UPLOADS: '1' } });
    try {
      const population = h.unique('busy');
      const plan = PLAN_LIBRARY['federated-sum']!.build({
        collection: population,
        rounds: 1,
        targetClients: 3,
      });
      const created = await busy.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
      expect(created.status).toBe(201);
      const make = (clock?: Clock, deviceId?: string) =>
        new RoundhouseClient({
          server: busy.url,
          population,
          store: new MemoryExampleStore({ [population]: numbers(1) }),
          retry: { attempts: 2 },
          ...(clock ? { clock } : {}),
          ...(deviceId ? { deviceId } : {}),
        });
      expect((await make().runOnce()).kind).toBe('completed');
      const clock = new FakeClock();
      const second = make(clock);
      const a = await assignmentOf(second);
      const error = await second.runTask(a).catch((e: unknown) => e);
      expect(error).toMatchObject({ status: 503, code: 'BUSY', transient: true, retryAfterMs: 2000 });
      expect(clock.sleeps).toHaveLength(1);
      expect(clock.sleeps[0]).toBeGreaterThanOrEqual(2000);

      busy.addWorker();
      // Real time from here: the worker drains the queue, and the same task uploads (from the same device).
      const done = await eventually('the queue to drain', () =>
        make(undefined, second.deviceId)
          .runTask(a)
          .catch(() => undefined),
      );
      expect(done.kind).toBe('completed');
    } finally {
      await busy.stop();
    }
  });
});
