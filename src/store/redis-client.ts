/**
 * What the store, the queue and the API hold: one Redis server or a Redis Cluster (docs/server.md, "Redis
 * Cluster"). ioredis' `Redis` and `Cluster` answer the same commands; what differs is where a command goes
 * (a Cluster routes it by its first key's slot) and that a key scan must visit every primary.
 */
import type { Cluster, Redis } from 'ioredis';

/** A connection to one Redis or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** Whether the client talks to a Redis Cluster. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/** The connections a key scan must walk: every primary of a Cluster, or the one server. */
function scanTargets(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/**
 * Calls `onKeys` with every key matching `pattern`, in SCAN-sized batches, on every primary. A key may come
 * twice (SCAN's guarantee), never not at all if it existed for the whole walk.
 */
export async function scanKeys(
  client: RedisClient,
  pattern: string,
  onKeys: (keys: string[]) => Promise<void>,
  count = 1000,
): Promise<void> {
  for (const node of scanTargets(client)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      if (found.length) await onKeys(found);
      cursor = next;
    } while (cursor !== '0');
  }
}

/**
 * UNLINKs keys that may live in different slots: one command on a single Redis, one per key on a Cluster
 * (a multi-key command must stay in one slot there). The number of keys that existed.
 */
export async function unlinkKeys(client: RedisClient, keys: readonly string[]): Promise<number> {
  if (keys.length === 0) return 0;
  if (!isCluster(client)) return client.unlink(...keys);
  const counts = await Promise.all(keys.map((k) => client.unlink(k)));
  return counts.reduce((a, b) => a + b, 0);
}
