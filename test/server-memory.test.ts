import Redis from 'ioredis';
import type { RoundInfo } from '../src/store/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { vectorSumPlan, vectorUpload } from './support/plans';
import { checkinRaw, uploadRaw } from './support/raw-client';

// Acceptance: during a 500-client round of a 1M-float model, Redis memory stays within a small multiple
// of the model size: bounded by the workers and the queue depth (MAX_PENDING_UPLOADS), not by the number
// of clients. Measured as the MEMORY USAGE of every key under this cluster's prefixes, sampled throughout
// the round (other test files share the Redis server, so the server-wide figure would not be ours alone).
const K = 1_000_000;
const CLIENTS = 500;
const MODEL_BYTES = K * 4;
const PENDING = 8;
// Workers hold uploads in Redis until their partial covers this many clients (or the round closes): each
// of the two may hold MIN - 1 beyond the pending ones (docs/server.md, "Commit threshold").
const MIN = 2;

async function prefixBytes(redis: Redis, prefix: string): Promise<number> {
  let bytes = 0;
  for (const pattern of [`${prefix}:*`, `{${prefix}}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of keys)
        bytes += ((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null) ?? 0;
    } while (cursor !== '0');
  }
  return bytes;
}

describe('Redis memory during a 500-client round of a 1M-float model', () => {
  let cluster: Cluster;
  const redis = new Redis('redis://127.0.0.1:6379');
  /** Stops the memory sampler; set while it runs. */
  let stopSampling: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    cluster = await startCluster({ workers: 2, env: { MAX_PENDING_UPLOADS: String(PENDING) } });
  });
  afterAll(async () => {
    // A test that failed or timed out leaves its sampler running; stopped before its connection closes, it
    // cannot fail later ("Connection is closed") in whatever test file runs next in this process.
    await stopSampling?.();
    await cluster?.stop();
    redis.disconnect();
  });

  test('stays within a small multiple of the model size', async () => {
    const plan = vectorSumPlan(K, {
      rounds: 1,
      target_clients: CLIENTS,
      min_reports: CLIENTS,
      min_clients_in_aggregate: MIN,
      selection_timeout_s: 600,
      reporting_deadline_s: 600,
    });
    const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const population = (plan.client_data as { collection: string }).collection;
    const before = await prefixBytes(redis, cluster.prefix);

    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await prefixBytes(redis, cluster.prefix));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // Its failure is reported where it is awaited (below, or by afterAll), never as an unhandled rejection.
    sampler.catch(() => undefined);
    stopSampling = async () => {
      sampling = false;
      await sampler.catch(() => undefined);
    };

    // Every client uploads ones; 16 at a time, each retrying on 503 BUSY as a real client would.
    const body = vectorUpload(new Float32Array(K).fill(1));
    let next = 0;
    let busy = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < CLIENTS) {
          const c = next++;
          const assignment = await checkinRaw(cluster.url, population, `m${c}`);
          if (!assignment) throw new Error(`client ${c} got no task`);
          const up = await uploadRaw(assignment, body, { retryBusy: true });
          busy += up.busy;
          expect(up.status).toBe(202);
        }
      }),
    );
    const info = await eventually(
      'the round to complete',
      async () => {
        const { rounds } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
          rounds: RoundInfo[];
        };
        return rounds.find((r) => r.round === 1 && r.phase === 'completed');
      },
      300_000,
    );
    sampling = false;
    await sampler;

    const multiple = (peak - before) / MODEL_BYTES;
    console.log(
      `redis memory: peak ${(peak / 2 ** 20).toFixed(1)} MiB above a ${(before / 2 ** 20).toFixed(1)} MiB baseline = ` +
        `${multiple.toFixed(1)}x the ${(MODEL_BYTES / 2 ** 20).toFixed(1)} MiB model, over ${CLIENTS} clients ` +
        `(${busy} uploads told to wait); ${CLIENTS}x would be ${((CLIENTS * MODEL_BYTES) / 2 ** 30).toFixed(2)} GiB`,
    );
    expect(info.aggregated_clients).toBe(CLIENTS);
    expect((info.output as { count: number }).count).toBe(CLIENTS);
    // Bound: the pending uploads, those held below the minimum, a partial per worker (plus the one being
    // replaced), the state and broadcast.
    expect(multiple).toBeLessThanOrEqual(PENDING + 2 * (MIN - 1) + 8);
    // 500 uploads of 4 MB take about 40 s on a quiet 2-core machine and 70 s or more on a loaded one; the
    // timeout is above the round's own wait (300 s) so that the wait fails first, saying what it waited for.
  }, 600_000);
});
