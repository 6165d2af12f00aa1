import type { Config } from '../config';
import type { Logger } from '../log/logger';
import { RateLimitedLog } from '../log/rate-limited';
import type { RedisClient } from '../store/redis-client';
import { connection, type RedisClientOptions } from './redis-connection';
import { startPrivateServer, type PrivateServer } from './redis-private';
import { delay, ping, refused } from './redis-probe';
import { redactUrl } from './redis-target';

export type { RedisClientOptions } from './redis-connection';
export { freePort, ping } from './redis-probe';

/** The Redis the process talks to, however it was found, and a factory of connections to it. */
export interface RedisHandle {
  /** The URL the clients connect to (a private server's is `redis://127.0.0.1:<port>`). */
  readonly url: string;
  /** True when this process started the server and stops it on close. */
  readonly private: boolean;
  /** A new connection (a Cluster client when the URL names a cluster); close() quits every one made here. */
  client(opts?: RedisClientOptions): RedisClient;
  /** Quits the connections made by client() and stops the private server, if any. Idempotent. */
  close(): Promise<void>;
}

/** Knobs of {@link connectRedis}; the defaults are right outside tests. */
export interface ConnectRedisOptions {
  /** Where to look when REDIS_URL is not set (default `redis://127.0.0.1:6379`). */
  readonly defaultUrl?: string;
  /** How long the default address gets to answer PING, in ms (default 500). */
  readonly probeTimeoutMs?: number;
  /**
   * How long it gets after a first probe that was not refused but went unanswered, in ms (default 5000,
   * as for REDIS_URL): something listens there, maybe a Redis too busy to answer at once.
   */
  readonly slowProbeTimeoutMs?: number;
  /**
   * Start a private `redis-server` when neither REDIS_URL nor the default address answers (default true).
   * A separate worker process turns it off: a Redis of its own would share nothing with the API.
   */
  readonly allowPrivate?: boolean;
  /** The binary to start, looked up on PATH (default `redis-server`). */
  readonly redisServer?: string;
  /** How long a private server gets to answer PING after it is spawned, in ms (default 10000). */
  readonly startTimeoutMs?: number;
}

/** The message that tells a person how to get a Redis. */
export const HOW_TO_GET_REDIS =
  'set REDIS_URL (for example REDIS_URL=redis://host:6379), or install Redis so that `redis-server` is on PATH ' +
  '(`apt-get install redis-server`, `brew install redis`), or run `docker compose up redis`';

/**
 * Finds the Redis this process should use, in order: `REDIS_URL` when configured (it must answer, else this
 * fails); else `127.0.0.1:6379` if it answers PING (within 500 ms, or 5 s when the connection was not
 * refused but the first probe went unanswered); else a private `redis-server` from PATH on
 * a free port, without persistence, in a temporary directory, stopped by close() or when the process exits;
 * else it fails with a message that says how to get one. `REDIS_URL=private` asks for the private server
 * at once.
 */
export async function connectRedis(
  config: Pick<Config, 'redisUrl'> & Partial<Pick<Config, 'redisCommandTimeoutMs'>>,
  log: Logger,
  options: ConnectRedisOptions = {},
): Promise<RedisHandle> {
  if (config.redisUrl === PRIVATE_REDIS) return startPrivate(config, options, 'REDIS_URL=private', log);
  if (config.redisUrl) {
    const url = config.redisUrl;
    try {
      await ping(url, 5000);
    } catch (e) {
      throw new Error(`REDIS_URL ${redact(url)} does not answer: ${message(e)}`);
    }
    log.info({ redis: redact(url) }, 'using Redis from REDIS_URL');
    return handle(url, undefined, log, config);
  }

  const fallback = options.defaultUrl ?? 'redis://127.0.0.1:6379';
  // A refused connection means nothing listens there, and the short probe settles it. Anything else (no
  // answer yet) may be a busy Redis: a process that took it for absent would start a private one and share
  // nothing with the deployment's other processes, so it gets as long as REDIS_URL would.
  for (const timeoutMs of [options.probeTimeoutMs ?? 500, options.slowProbeTimeoutMs ?? 5000]) {
    try {
      await ping(fallback, timeoutMs);
      log.info(
        { redis: redact(fallback) },
        'REDIS_URL is not set; using the Redis that answers at the default address',
      );
      return handle(fallback, undefined, log, config);
    } catch (e) {
      log.debug({ redis: redact(fallback), err: message(e) }, 'no Redis answered at the default address');
      if (refused(e)) break;
    }
  }

  return startPrivate(
    config,
    options,
    `REDIS_URL is not set and no Redis answers at ${redact(fallback)}`,
    log,
  );
}

/** `REDIS_URL=private`: a private redis-server even when the default address answers. */
export const PRIVATE_REDIS = 'private';

async function startPrivate(
  config: Partial<Pick<Config, 'redisCommandTimeoutMs'>>,
  options: ConnectRedisOptions,
  why: string,
  log: Logger,
): Promise<RedisHandle> {
  if (options.allowPrivate === false) {
    throw new Error(`${why}, and this process does not start a private Redis: ${HOW_TO_GET_REDIS}`);
  }
  const server = await startPrivateServer(
    options.redisServer ?? 'redis-server',
    options.startTimeoutMs ?? 10_000,
  );
  if (!server) {
    throw new Error(
      `${why}, and no \`redis-server\` binary is on PATH to start a private one: ${HOW_TO_GET_REDIS}`,
    );
  }
  log.warn(
    { redis: server.url, pid: server.child.pid, dir: server.dir },
    `${why}; started a private redis-server ` +
      '(no persistence: every plan is lost when this process stops; other processes cannot join it)',
  );
  return handle(server.url, server, log, config);
}

function handle(
  url: string,
  server: PrivateServer | undefined,
  log: Logger,
  config: Partial<Pick<Config, 'redisCommandTimeoutMs'>>,
): RedisHandle {
  const clients = new Set<RedisClient>();
  let closing: Promise<void> | undefined;
  const errors = new RateLimitedLog(log);
  return {
    url,
    private: server !== undefined,
    client(opts = {}) {
      if (closing) throw new Error('the Redis handle is closed');
      const client = connection(url, opts, config.redisCommandTimeoutMs, errors, log);
      clients.add(client);
      client.once('end', () => clients.delete(client));
      return client;
    },
    close() {
      closing ??= (async () => {
        await Promise.all([...clients].map((c) => quit(c)));
        clients.clear();
        if (server) await server.stop();
      })();
      return closing;
    },
  };
}

async function quit(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  const ended = new Promise<boolean>((resolve) => client.once('end', () => resolve(true)));
  if (client.status === 'connecting' || client.status === 'connect') {
    // Quitting during ioredis' ready check fails it, and its recovery leaves a 2 s timer holding the process.
    await Promise.race([new Promise((resolve) => client.once('ready', resolve)), ended, delay(1000)]);
  }
  try {
    await Promise.race([client.quit(), delay(1000)]);
  } catch {
    // Already closed or unreachable: disconnect below drops it.
  }
  // After a QUIT the socket closes by itself; disconnect() on a closed socket would leave ioredis' 2 s
  // disconnect timer running and hold the process, so it is only for a connection that did not go.
  if (await Promise.race([ended, delay(500).then(() => false)])) return;
  client.disconnect();
}

/** The URL without its password, for logs and error messages. */
export function redact(url: string): string {
  return redactUrl(url);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
