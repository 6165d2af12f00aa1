import { Cluster } from 'ioredis';
import { TestRedisCluster } from './support/redis-cluster';

// The local Redis Cluster the cluster tests run on (issue 11): six redis-server processes, three primaries
// and three replicas. Keys spread over the shards, a script on keys of one hash tag runs on their shard, a
// cross-slot script is refused (what the store's scripts must never do).
let cluster: TestRedisCluster;
let client: Cluster;

beforeAll(async () => {
  cluster = await TestRedisCluster.start();
  client = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 3 } });
}, 60_000);
afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

test('keys of different hash tags spread over the three primaries', async () => {
  const owners = new Set<number>();
  for (let i = 0; i < 30; i++) {
    await client.set(`{plan-${i}}:meta`, String(i));
    owners.add(await cluster.primaryOf(`{plan-${i}}:meta`));
  }
  expect(owners.size).toBe(3);
  expect(await client.get('{plan-7}:meta')).toBe('7');
});

test('a script runs on the keys of one hash tag, and a cross-slot script is refused', async () => {
  const script = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return 1";
  expect(await client.eval(script, 2, '{p1}:a', '{p1}:b', 'x')).toBe(1);
  await expect(client.eval(script, 2, '{p1}:a', '{p2}:b', 'x')).rejects.toThrow(/CROSSSLOT/);
});
