/**
 * How each connection of a Redis handle behaves while Redis is unreachable: commands fail fast instead of
 * waiting for it (so that the API answers 503 NOT_READY), errors are logged once per kind a while, and a
 * recovery is logged; a BullMQ worker's connection keeps waiting, as BullMQ requires.
 */
import Redis, { Cluster, type ClusterOptions, type Command, type RedisOptions } from 'ioredis';
import type { RedisClient } from '../store/redis-client';
import { parseRedisTarget } from './redis-target';
import { loggableError } from '../api/loggable-error';
import type { Logger } from '../log/logger';
import type { RateLimitedLog } from '../log/rate-limited';

/** Options of one client made by a `RedisHandle` (src/runtime/redis.ts). */
export interface RedisClientOptions {
  /**
   * The connection is for a BullMQ `Worker`: commands wait for a reconnect forever instead of failing after
   * a few retries (`maxRetriesPerRequest: null`), which BullMQ requires of the connections its workers block on.
   */
  readonly forBullWorker?: boolean;
  /** `CLIENT SETNAME`, to tell the process's connections apart in `CLIENT LIST`. */
  readonly name?: string;
}

/** Reconnect attempts after which a command waiting for a connection fails (ioredis' default is 20, ~10 s). */
const FAIL_FAST_RETRIES = 1;

/**
 * A new connection to `url`, one Redis or a Redis Cluster (src/runtime/redis-target.ts). Unless it is for
 * a BullMQ worker, a command fails soon while Redis is unreachable: after one failed reconnect when the
 * connection is down, after `commandTimeoutMs` when Redis does not answer on a live connection (stopped,
 * overloaded, a network partition). On a Cluster the same holds per node, and a command whose node is gone
 * waits for the cluster to promote its replica only as long as ioredis' redirections allow (the API
 * answers a retryable 503 meanwhile).
 */
export function connection(
  url: string,
  opts: RedisClientOptions,
  commandTimeoutMs: number | undefined,
  errors: RateLimitedLog,
  log: Logger,
): RedisClient {
  const options: RedisOptions = { maxRetriesPerRequest: opts.forBullWorker ? null : FAIL_FAST_RETRIES };
  if (opts.name) options.connectionName = opts.name;
  const client = newClient(url, options);
  if (!opts.forBullWorker && commandTimeoutMs) failUnanswered(client, commandTimeoutMs);
  watch(client, opts.name ?? 'redis', errors, log);
  return client;
}

/** How often a Cluster client re-reads the slot map on its own (besides on MOVED and on errors), in ms. */
const SLOTS_REFRESH_MS = 5000;

/** A client of the target `url` names, with `options` for each connection (every node's, on a Cluster). */
export function newClient(url: string, options: RedisOptions, cluster: ClusterOptions = {}): RedisClient {
  const target = parseRedisTarget(url);
  if (target.kind === 'single') return new Redis(url, options);
  return new Cluster(
    target.nodes.map((n) => ({ host: n.host, port: n.port })),
    {
      // Reads go to primaries: the store reads what it just wrote (a replica may lag).
      scaleReads: 'master',
      slotsRefreshInterval: SLOTS_REFRESH_MS,
      ...cluster,
      redisOptions: {
        ...options,
        ...(target.username ? { username: target.username } : {}),
        ...(target.password ? { password: target.password } : {}),
        ...(target.tls ? { tls: {} } : {}),
      },
    },
  );
}

/**
 * Fails a command Redis has not answered within `ms` with "Command timed out", like ioredis' own
 * `commandTimeout`, but one turn of the event loop later: when this process blocked its loop for longer
 * than `ms` (a long synchronous step), the timer fires before the reply already waiting in the socket is
 * read, and a command Redis answered in time would fail; measured, plan submissions under the fuzz test
 * blocked the loop for 9 to 13 s. setImmediate runs after the loop has read its sockets.
 */
function failUnanswered(client: RedisClient, ms: number): void {
  // Redis' and Cluster's sendCommand differ only in their optional trailing parameters.
  const send = client.sendCommand.bind(client) as (command: Command, ...rest: unknown[]) => unknown;
  (client as { sendCommand: (command: Command, ...rest: unknown[]) => unknown }).sendCommand = (
    command,
    ...rest
  ) => {
    const timer = setTimeout(
      () =>
        setImmediate(() => {
          if (!command.isResolved) command.reject(new Error('Command timed out'));
        }),
      ms,
    );
    const clear = (): void => clearTimeout(timer);
    command.promise.then(clear, clear);
    return send(command, ...rest);
  };
}

/**
 * Logs a connection's errors, one line per connection and kind of error per 30 s with a count of those
 * suppressed (ioredis emits one per failed reconnect, several a second), and its recovery once it is ready
 * again after an error. Without a listener ioredis would print each as an unhandled error event.
 */
function watch(client: RedisClient, name: string, errors: RateLimitedLog, log: Logger): void {
  let failing = false;
  client.on('error', (err: Error) => {
    failing = true;
    const kind = (err as NodeJS.ErrnoException).code ?? err.message;
    errors.write(
      'warn',
      `${name}:${kind}`,
      { err: loggableError(err), connection: name },
      'Redis connection error; retrying',
    );
  });
  client.on('ready', () => {
    if (!failing) return;
    failing = false;
    log.info({ connection: name }, 'Redis connection ready again');
  });
}
