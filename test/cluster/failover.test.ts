import { Keys } from '../../src/store/keys';
import type { RedisClient } from '../../src/store/redis-client';
import { startFaultCluster, type FaultCluster } from '../support/fault-harness';
import { vectorSumPlan, vectorUpload } from '../support/plans';
import type { RawAssignment } from '../support/raw-client';
import { testRedis, useRedisCluster } from '../support/test-redis';

// A primary of the Redis Cluster SIGKILLed mid-round (issue 11, point 2): its replica is promoted and the
// round completes with the exact sum of every upload the server acknowledged. Accepted uploads and committed
// partials are acknowledged only once a replica holds them (WAIT, REDIS_WAIT_REPLICAS=1 on a cluster), so
// the failover loses none; a client sees at most retryable answers (503, a refused connection) meanwhile.

const K = 8;
const CLIENTS = 12;
const population = `vectors${K}`;
const values = (c: number) => Float32Array.from({ length: K }, (_, j) => (c * 3 + j) % 7);
const total = (v: Float32Array) => v.reduce((a, b) => a + b, 0);

const redisCluster = useRedisCluster();

describe('a Redis Cluster primary killed mid-round', () => {
  let cluster: FaultCluster;
  let redis: RedisClient;
  beforeAll(async () => {
    redis = testRedis();
    cluster = await startFaultCluster({ workers: 2, env: { WORKER_LOCK_MS: '2000' } });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    redis?.disconnect();
  });

  test("WAIT after a write reaches the write's node: a pipeline goes to its key's node", async () => {
    const key = `${cluster.prefix}:{probe}:x`;
    await redis.set(key, '1');
    const [, port] = (await redis.pipeline().exists(key).call('CONFIG', 'GET', 'port').exec())!;
    expect(Number((port![1] as string[])[1])).toBe(await redisCluster().primaryOf(key));
    await redis.del(key);
  });

  test('the replica takes over and the round completes with the exact sum', async () => {
    const id = await cluster.submit(
      vectorSumPlan(K, {
        rounds: 1,
        target_clients: CLIENTS,
        min_reports: CLIENTS,
        min_clients_in_aggregate: 1,
        selection_timeout_s: 300,
        reporting_deadline_s: 300,
      }),
    );
    const keys = new Keys(cluster.prefix);
    const victim = await redisCluster().primaryOf(keys.plan(id).meta);
    const queueToo = (await redisCluster().primaryOf(`{${cluster.prefix}}:agg:meta`)) === victim;

    const seen: string[] = [];
    let expected = 0;
    const client = async (c: number) => {
      const a = await persist(seen, `check-in ${c}`, async () => {
        const res = await fetch(`${cluster.url}/v1/populations/${population}/checkin`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ device_id: `dev-${c}` }),
        });
        const body = (await res.json()) as { assignment?: RawAssignment };
        // A retry window (no task yet) is an answer to come back, like a 503.
        return {
          status: res.status,
          value: body.assignment,
          retry: res.status === 503 || (res.ok && !body.assignment),
        };
      });
      const bytes = vectorUpload(values(c));
      await persist(seen, `upload ${c}`, async () => {
        const res = await fetch(a.upload_url, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${a.token}`,
            'content-type': 'application/octet-stream',
            'x-device-credential': `dev-${c}`,
          },
          body: bytes as BodyInit,
        });
        const code = res.ok ? undefined : ((await res.json()) as { error?: { code?: string } }).error?.code;
        // 409 UPLOAD_DUPLICATE after a 503: the earlier try was kept, which is success for the client.
        const done = res.status === 202 || code === 'UPLOAD_DUPLICATE';
        return {
          status: code ? `${res.status} ${code}` : res.status,
          value: done || undefined,
          retry: res.status === 503,
        };
      });
      expected += total(values(c));
    };

    await Promise.all(Array.from({ length: CLIENTS / 2 }, (_, c) => client(c)));
    // The primary that holds the plan's slot dies with half the uploads acknowledged; the other half come
    // while its replica is promoted.
    const killed = redisCluster().kill(victim);
    try {
      await Promise.all(Array.from({ length: CLIENTS / 2 }, (_, c) => client(CLIENTS / 2 + c)));
    } catch (e) {
      console.log(
        'rounds and process logs at the failure:',
        JSON.stringify(await cluster.rounds(id)),
        cluster.tails(30),
      );
      throw e;
    }
    await killed;

    const info = await cluster.waitCompleted(id, 1, 120_000);
    expect(info.output).toEqual({ total: expected, count: CLIENTS });
    expect(info.aggregated_clients).toBe(CLIENTS);
    // Nothing but retryable answers: 2xx, 409 UPLOAD_DUPLICATE, 503, and refused or reset connections.
    expect(seen.filter((s) => !/^(200|202|409 UPLOAD_DUPLICATE|503( \w+)?|connection)$/.test(s))).toEqual([]);
    console.log(
      `failover: killed primary ${victim} (the queue's too: ${queueToo}); answers seen ${JSON.stringify(count(seen))}`,
    );
  }, 240_000);
});

/**
 * Calls `attempt` until it gives a value, as a client that retries: a thrown error (a refused or reset
 * connection) and an answer marked `retry` wait and try again. Records each status in `seen`.
 */
async function persist<T>(
  seen: string[],
  what: string,
  attempt: () => Promise<{ status: number | string; value: T | undefined; retry: boolean }>,
): Promise<T> {
  const end = Date.now() + 90_000;
  for (;;) {
    try {
      const { status, value, retry } = await attempt();
      seen.push(String(status));
      if (value !== undefined && !retry) return value;
      if (!retry) throw new Error(`${what}: answered ${status} without a value`);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith(what)) throw e;
      seen.push('connection');
    }
    if (Date.now() > end) throw new Error(`${what}: no success in 90 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function count(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
