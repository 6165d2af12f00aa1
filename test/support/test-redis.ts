/**
 * The Redis an integration test file runs against: the machine's (redis://127.0.0.1:6379) unless the file
 * called useRedisCluster(), which starts a Redis Cluster of the file's own before its tests and makes every
 * helper (startCluster, startFaultCluster, deleteKeys, testRedis) use it. The URL is read when a helper
 * runs, not when it is imported, so a suite written once runs on both (test/suites/).
 */
import type { RedisOptions } from 'ioredis';
import { newClient } from '../../src/runtime/redis-connection';
import type { RedisClient } from '../../src/store/redis-client';
import { TestRedisCluster } from './redis-cluster';

const LOCAL = 'redis://127.0.0.1:6379';
let current = LOCAL;

/** The Redis URL of this test file (a `redis+cluster://` URL after useRedisCluster's beforeAll). */
export function testRedisUrl(): string {
  return current;
}

/** A connection to this file's Redis (a Cluster client on a cluster); the caller disconnects it. */
export function testRedis(options: RedisOptions = {}): RedisClient {
  const client = newClient(current, { maxRetriesPerRequest: 3, ...options });
  client.on('error', () => undefined);
  return client;
}

/** Which Redis a suite runs on. */
export type RedisKind = 'single' | 'cluster';

/**
 * Runs this file's tests on a Redis Cluster of its own (three primaries, three replicas): registers a
 * beforeAll that starts it and an afterAll that stops it. Call it before the suite registers its hooks.
 * Returns the cluster, once started.
 */
export function useRedisCluster(): () => TestRedisCluster {
  let cluster: TestRedisCluster | undefined;
  beforeAll(async () => {
    cluster = await TestRedisCluster.start();
    current = cluster.url;
  }, 120_000);
  afterAll(async () => {
    current = LOCAL;
    await cluster?.stop();
  });
  return () => {
    if (!cluster) throw new Error('the Redis Cluster is not started yet (use it inside a hook or a test)');
    return cluster;
  };
}

/** useRedisCluster() for 'cluster'; nothing for 'single'. */
export function useRedis(kind: RedisKind): void {
  if (kind === 'cluster') useRedisCluster();
}

/**
 * `describe(title, body)` on a Redis of `kind`. The Redis is set up in an outer block, so that it starts
 * before and stops after every hook of `body` (an inner block's afterAll runs before its parent's).
 */
export function describeOn(kind: RedisKind, title: string, body: () => void): void {
  describe(`${kind} Redis`, () => {
    useRedis(kind);
    describe(title, body);
  });
}
