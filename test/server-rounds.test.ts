import Redis from 'ioredis';
import { decodeBundle } from '../src/codec';
import { initBackend } from '../src/compute/backend';
import { tensorsOf } from '../src/compute/value';
import type { RoundInfo } from '../src/store/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { vectorSumPlan, vectorUpload } from './support/plans';
import { checkinRaw, uploadRaw, type RawAssignment } from './support/raw-client';

// End to end over HTTP with one worker process: bad uploads leave a round's result unchanged, and a round
// with fewer clients than min_clients_in_aggregate fails without releasing anything.
const K = 8;

describe('rounds over HTTP', () => {
  let cluster: Cluster;
  const redis = new Redis('redis://127.0.0.1:6379');
  beforeAll(async () => {
    await initBackend();
    cluster = await startCluster({ workers: 1, env: { MAX_UPLOAD_BYTES: String(64 * 1024) } });
  });
  afterAll(async () => {
    await cluster?.stop();
    redis.disconnect();
  });

  async function submit(
    schedule: Record<string, number>,
    k = K,
  ): Promise<{ id: string; population: string }> {
    const plan = vectorSumPlan(k, schedule);
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(res.status).toBe(201);
    return {
      id: ((await res.json()) as { id: string }).id,
      population: (plan.client_data as { collection: string }).collection,
    };
  }
  async function checkin(population: string, client: string): Promise<RawAssignment> {
    const assignment = await checkinRaw(cluster.url, population, client);
    if (!assignment) throw new Error(`${client} got no task`);
    return assignment;
  }
  async function upload(
    a: RawAssignment,
    body: Uint8Array,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; code?: string }> {
    const { status, code } = await uploadRaw(a, body, { headers });
    return { status, code };
  }
  async function rounds(id: string): Promise<RoundInfo[]> {
    return ((await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as { rounds: RoundInfo[] })
      .rounds;
  }

  test('bad uploads of every kind are refused and the result is the sum of the good ones', async () => {
    const { id, population } = await submit({
      rounds: 1,
      target_clients: 3,
      min_reports: 3,
      selection_timeout_s: 300,
      reporting_deadline_s: 300,
    });
    // Over-selection (1.3) gives the round a fourth task: d is assigned but too slow to report.
    const [a, b, c, d] = [
      await checkin(population, 'a'),
      await checkin(population, 'b'),
      await checkin(population, 'c'),
      await checkin(population, 'd'),
    ];
    const good = (v: number) => vectorUpload(new Float32Array(K).fill(v));

    expect(await upload(a!, good(1))).toEqual({ status: 202, code: undefined });
    // The same bytes again: a duplicate; other bytes under the used token: a reused token.
    expect(await upload(a!, good(1))).toEqual({ status: 409, code: 'UPLOAD_DUPLICATE' });
    expect(await upload(a!, good(100))).toEqual({ status: 403, code: 'TOKEN_REUSED' });
    // Forged token (signature altered), and a valid token presented for another task.
    const forged = { ...b!, token: b!.token.slice(0, -4) + (b!.token.endsWith('AAAA') ? 'BBBB' : 'AAAA') };
    expect(await upload(forged, good(100))).toEqual({ status: 401, code: 'TOKEN_INVALID' });
    expect(await upload({ ...b!, token: c!.token }, good(100))).toEqual({
      status: 403,
      code: 'TOKEN_TASK_MISMATCH',
    });
    // Wrong shape, NaN, truncated, oversized, wrong media type.
    expect(await upload(b!, vectorUpload(new Float32Array(K + 1).fill(100)))).toEqual({
      status: 400,
      code: 'BUNDLE_TYPE_MISMATCH',
    });
    const nan = new Float32Array(K).fill(100);
    nan[3] = NaN;
    expect(await upload(b!, vectorUpload(nan))).toEqual({ status: 400, code: 'BUNDLE_NOT_FINITE' });
    const whole = good(100);
    expect(await upload(b!, whole.subarray(0, whole.length - 5))).toEqual({
      status: 400,
      code: 'BUNDLE_MALFORMED',
    });
    expect(await upload(b!, new Uint8Array(65 * 1024))).toEqual({ status: 413, code: 'UPLOAD_TOO_LARGE' });
    expect(await upload(b!, good(100), { 'content-type': 'application/json' })).toEqual({
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });

    expect(await upload(b!, good(2))).toEqual({ status: 202, code: undefined });
    expect(await upload(c!, good(4))).toEqual({ status: 202, code: undefined });
    // The round closed at its third report: the straggler is late, and nobody else gets a task.
    expect(await upload(d!, good(100))).toEqual({ status: 409, code: 'UPLOAD_LATE' });
    await expect(checkin(population, 'e')).rejects.toThrow(/got no task/);
    const again = await upload(c!, good(4));
    expect(again.status).toBe(409);
    expect(['UPLOAD_DUPLICATE', 'UPLOAD_LATE']).toContain(again.code);

    const done = await eventually('the round to complete', async () =>
      (await rounds(id)).find((r) => r.phase === 'completed'),
    );
    expect(done.output).toEqual({ total: (1 + 2 + 4) * K, count: 3 });
    expect(done.reported).toBe(3);
    expect(done.aggregated_clients).toBe(3);
    expect(done.rejected).toBeGreaterThanOrEqual(3);
    expect(done.late).toBeGreaterThanOrEqual(1);
  });

  test('a round below min_clients_in_aggregate fails, releases nothing, and reopens from the old state', async () => {
    const { id, population } = await submit({
      rounds: 2,
      target_clients: 6,
      min_reports: 2,
      min_clients_in_aggregate: 4,
      selection_timeout_s: 300,
      reporting_deadline_s: 2,
    });
    const stateBefore = new Uint8Array(await (await cluster.operator(`/v1/plans/${id}/state`)).arrayBuffer());
    for (const client of ['x', 'y', 'z']) {
      const a = await checkin(population, client);
      expect(await upload(a, vectorUpload(new Float32Array(K).fill(7)))).toEqual({
        status: 202,
        code: undefined,
      });
    }
    const failed = await eventually('attempt 1 to fail', async () =>
      (await rounds(id)).find((r) => r.round === 1 && r.attempt === 1 && r.phase === 'failed'),
    );
    expect(failed.output ?? null).toBeNull();
    expect(failed.error).toMatch(/min_clients_in_aggregate|fewer than/);
    const reopened = await eventually('attempt 2 to open', async () =>
      (await rounds(id)).find((r) => r.round === 1 && r.attempt === 2),
    );
    expect(reopened.phase).toBe('selecting');
    // The state is the one before the failed attempt, and none of its partials or uploads remain.
    const stateAfter = new Uint8Array(await (await cluster.operator(`/v1/plans/${id}/state`)).arrayBuffer());
    expect(Buffer.from(stateAfter).equals(Buffer.from(stateBefore))).toBe(true);
    const leftovers = await redis.keys(`${cluster.prefix}:{${id}}:r:1.1:*`);
    expect(leftovers.filter((k) => /partial|upload|covered|tasks/.test(k))).toEqual([]);
    const s = decodeBundle(stateAfter, {
      kind: 'struct',
      fields: [{ name: 'rounds', type: { kind: 'tensor', dtype: 'int32', shape: [] } }],
    });
    expect(tensorsOf(s)[0]!.dataSync()[0]).toBe(0);
  });

  test('pausing stops handing out tasks; cancelling fails the open round so its uploads are late', async () => {
    // A population of its own (k = 6): the other tests' plans are still published to theirs.
    const { id, population } = await submit(
      { rounds: 3, target_clients: 2, selection_timeout_s: 300, reporting_deadline_s: 300 },
      6,
    );
    const a = await checkin(population, 'p1');
    expect((await cluster.operator(`/v1/plans/${id}/pause`, { method: 'POST' })).status).toBe(200);
    await expect(checkin(population, 'p2')).rejects.toThrow(/got no task/);
    expect((await cluster.operator(`/v1/plans/${id}/pause`, { method: 'POST' })).status).toBe(409);
    expect((await cluster.operator(`/v1/plans/${id}/resume`, { method: 'POST' })).status).toBe(200);
    const b = await checkin(population, 'p2');
    expect(b.round).toBe(1);
    expect(await upload(a, vectorUpload(new Float32Array(6).fill(1)))).toEqual({
      status: 202,
      code: undefined,
    });
    const cancelled = await cluster.operator(`/v1/plans/${id}/cancel`, { method: 'POST' });
    expect(((await cancelled.json()) as { status: string }).status).toBe('cancelled');
    expect(await upload(b, vectorUpload(new Float32Array(6).fill(2)))).toEqual({
      status: 409,
      code: 'UPLOAD_LATE',
    });
    const [round] = await rounds(id);
    expect(round!.phase).toBe('failed');
    expect(round!.output ?? null).toBeNull();
    expect(await redis.keys(`${cluster.prefix}:{${id}}:r:1.1:upload:*`)).toEqual([]);
  });
});
