/**
 * A whole round server in this process for the demo: the API and one aggregation worker on a Redis found
 * the way the server finds one (REDIS_URL, else 127.0.0.1:6379, else a private redis-server), under a key
 * prefix of its own that is deleted again at the end, so that it never touches anyone else's data.
 */
import { randomBytes } from 'node:crypto';
import { queuePrefix } from '../aggregation/jobs';
import type { Config } from '../config';
import type { Logger } from '../log/logger';
import { connectRedis, freePort, type RedisHandle } from '../runtime/redis';
import { startServer, type RunningServer } from '../runtime/server';
import { RedisRoundStore } from '../store/redis-round-store';
import { scanKeys, unlinkKeys } from '../store/redis-client';

/** A running in-process server and how to take it down. */
export interface InProcessServer {
  readonly url: string;
  readonly operatorToken: string;
  readonly prefix: string;
  /** Whether Redis is a private redis-server started for this process. */
  readonly privateRedis: boolean;
  /** Stops the server and deletes every key under the prefix. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the server on 127.0.0.1 and a free port. `base` is the configuration from the environment
 * (`loadServerConfig`); host, port, public URL, prefix and operator token are replaced by private ones, the
 * anonymous per-address rate limit is off (the whole population shares 127.0.0.1), and `overrides` (retry
 * windows, log level) apply last.
 */
export async function startInProcessServer(
  base: Config,
  log: Logger,
  overrides: Partial<Config> = {},
): Promise<InProcessServer> {
  const redis: RedisHandle = await connectRedis(base, log);
  const prefix = `rh-demo-${process.pid}-${randomBytes(4).toString('hex')}`;
  let server: RunningServer | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      try {
        await server?.close();
        await deleteKeys(redis, prefix);
      } finally {
        await redis.close();
      }
    })());
  try {
    const port = await freePort();
    const config: Config = Object.freeze({
      ...base,
      host: '127.0.0.1',
      port,
      publicUrl: `http://127.0.0.1:${port}`,
      publicUrlFromHost: false,
      // The server connects to the very Redis found above, private or not, instead of searching again.
      redisUrl: redis.url,
      redisPrefix: prefix,
      operatorToken: randomBytes(16).toString('hex'),
      // The demo's simulated population checks in from this one address: a per-address limit would throttle
      // it, and nothing but this process can reach 127.0.0.1 anyway.
      devices: Object.freeze({ ...base.devices, anonymousRateLimit: 0 }),
      ...overrides,
    });
    server = await startServer(config, { worker: true, log });
    return {
      url: server.url,
      operatorToken: config.operatorToken,
      prefix,
      privateRedis: redis.private,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Deletes the store's keys and the aggregation queue's (BullMQ's `{prefix}:...`). */
async function deleteKeys(redis: RedisHandle, prefix: string): Promise<void> {
  const connection = redis.client({ name: 'roundhouse:demo-cleanup' });
  await new RedisRoundStore(connection, prefix).clear();
  // Redis globs give braces no meaning, so the queue prefix needs no escaping.
  await scanKeys(connection, `${queuePrefix(prefix)}:*`, async (keys) => {
    await unlinkKeys(connection, keys);
  });
}
