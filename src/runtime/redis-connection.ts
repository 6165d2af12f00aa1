/**
 * How each connection of a Redis handle behaves while Redis is unreachable: commands fail fast instead of
 * waiting for it (so that the API answers 503 NOT_READY), errors are logged once per kind a while, and a
 * recovery is logged; a BullMQ worker's connection keeps waiting, as BullMQ requires.
 */
import Redis, { type RedisOptions } from 'ioredis';
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
 * A new connection to `url`. Unless it is for a BullMQ worker, a command fails soon while Redis is
 * unreachable: after one failed reconnect when the connection is down, after `commandTimeoutMs` when Redis
 * does not answer on a live connection (stopped, overloaded, a network partition).
 */
export function connection(
  url: string,
  opts: RedisClientOptions,
  commandTimeoutMs: number | undefined,
  errors: RateLimitedLog,
  log: Logger,
): Redis {
  const options: RedisOptions = { maxRetriesPerRequest: opts.forBullWorker ? null : FAIL_FAST_RETRIES };
  if (opts.name) options.connectionName = opts.name;
  const client = new Redis(url, options);
  if (!opts.forBullWorker && commandTimeoutMs) failUnanswered(client, commandTimeoutMs);
  watch(client, opts.name ?? 'redis', errors, log);
  return client;
}

/**
 * Fails a command Redis has not answered within `ms` with "Command timed out", like ioredis' own
 * `commandTimeout`, but one turn of the event loop later: when this process blocked its loop for longer
 * than `ms` (a long synchronous step), the timer fires before the reply already waiting in the socket is
 * read, and a command Redis answered in time would fail; measured, plan submissions under the fuzz test
 * blocked the loop for 9 to 13 s. setImmediate runs after the loop has read its sockets.
 */
function failUnanswered(client: Redis, ms: number): void {
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command, ...rest) => {
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
function watch(client: Redis, name: string, errors: RateLimitedLog, log: Logger): void {
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
