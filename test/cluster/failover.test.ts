import { Keys } from '../../src/store/keys';
import type { RedisClient } from '../../src/store/redis-client';
import { startFaultCluster, type FaultCluster } from '../support/fault-harness';
import { vectorSumPlan, vectorUpload } from '../support/plans';
import {
  checkinPersisting,
  onlyRetryable,
  tally,
  uploadPersisting,
  type Seen,
} from '../support/retrying-client';
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

    const seen: Seen = [];
    let expected = 0;
    const server = () => cluster.url;
    const client = async (c: number) => {
      const a = await checkinPersisting(seen, server, population, `dev-${c}`);
      await uploadPersisting(seen, server, a, vectorUpload(values(c)));
      expected += total(values(c));
    };

    await Promise.all(Array.from({ length: CLIENTS / 2 }, (_, c) => client(c)));
    // The primary that holds the plan's slot dies with half the uploads acknowledged; the other half come
    // while its replica is promoted.
    const killed = redisCluster().kill(victim);
    killed.catch(() => undefined);
    try {
      await Promise.all(Array.from({ length: CLIENTS / 2 }, (_, c) => client(CLIENTS / 2 + c)));
    } catch (e) {
      const rounds = await cluster.rounds(id).catch((err: unknown) => String(err));
      console.log('rounds and process logs at the failure:', JSON.stringify(rounds), cluster.tails(30));
      throw e;
    }
    await killed;

    const info = await cluster.waitCompleted(id, 1, 120_000);
    expect(info.output).toEqual({ total: expected, count: CLIENTS });
    expect(info.aggregated_clients).toBe(CLIENTS);
    // Nothing but retryable answers: 2xx, 409 UPLOAD_DUPLICATE, 503, and refused or reset connections.
    expect(onlyRetryable(seen)).toEqual([]);
    console.log(
      `failover: killed primary ${victim} (the queue's too: ${queueToo}); answers seen ${JSON.stringify(tally(seen))}`,
    );
  }, 240_000);
});
