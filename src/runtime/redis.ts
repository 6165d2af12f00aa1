import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../log/logger';
import { RateLimitedLog } from '../log/rate-limited';
import type { RedisClient } from '../store/redis-client';
import { connection, newClient, type RedisClientOptions } from './redis-connection';
import { redactUrl } from './redis-target';

export type { RedisClientOptions } from './redis-connection';

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

/** True when the connection was refused: nothing listens at the address. */
function refused(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
}

/** Resolves when `url` answers PING within `timeoutMs`; rejects with the reason otherwise. */
export async function ping(url: string, timeoutMs: number): Promise<void> {
  const client = newClient(
    url,
    {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      // The probe has nothing to flush; a longer timeout would hold the process for it after a refused connect.
      disconnectTimeout: 0,
    },
    { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: () => null },
  );
  let lastError: unknown;
  client.on('error', (e) => (lastError = e));
  let timer: NodeJS.Timeout | undefined;
  const answered = (async () => {
    await client.connect();
    await client.ping();
  })();
  // The loser of the race below must not become an unhandled rejection.
  answered.catch(() => undefined);
  try {
    await Promise.race([
      // "Connection is closed." says less than the socket error behind it (ECONNREFUSED, ENOTFOUND).
      answered.catch((e: unknown) => {
        throw lastError ?? e;
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(lastError ?? new Error(`no answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

interface PrivateServer {
  readonly url: string;
  readonly child: ChildProcess;
  readonly dir: string;
  stop(): Promise<void>;
}

/** Starts `redis-server` on a free port; undefined when the binary is not on PATH. */
async function startPrivateServer(binary: string, timeoutMs: number): Promise<PrivateServer | undefined> {
  // Every wait below is unref'd (so that shutdown never hangs on one), and so is the child: without this
  // handle nothing would keep the process alive while the server starts, and Node would exit silently.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    return await startPrivateServerAttempts(binary, timeoutMs);
  } finally {
    clearInterval(keepAlive);
  }
}

async function startPrivateServerAttempts(
  binary: string,
  timeoutMs: number,
): Promise<PrivateServer | undefined> {
  let lastError: Error | undefined;
  // A free port can be taken by someone else between the probe and the bind; try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-redis-'));
    const logFile = path.join(dir, 'redis.log');
    const child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--logfile',
        logFile,
        '--daemonize',
        'no',
      ],
      // Its own process group, so that a Ctrl-C in the terminal reaches only us and we stop Redis last, after
      // the workers have let go of it. unref: the process may exit without waiting for it; 'exit' kills it.
      { stdio: 'ignore', detached: true },
    );
    child.unref();
    const server = privateServer(`redis://127.0.0.1:${port}`, child, dir);
    const outcome = await waitUntilUp(server, timeoutMs);
    if (outcome === 'up') return server;
    const log = readTail(logFile);
    await server.stop();
    if (outcome === 'missing') return undefined;
    lastError = new Error(`redis-server on port ${port} did not start (${outcome})${log ? `: ${log}` : ''}`);
  }
  throw lastError ?? new Error('redis-server did not start');
}

function privateServer(url: string, child: ChildProcess, dir: string): PrivateServer {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    // A child that could not be spawned (ENOENT) emits 'error' and no 'exit'; with no listener it would throw.
    child.on('error', () => resolve());
  });
  const killNow = (): void => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
      child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // 'exit' handlers run synchronously: SIGKILL needs no waiting, and the server holds nothing worth saving.
  process.once('exit', killNow);
  let stopping: Promise<void> | undefined;
  return {
    url,
    child,
    dir,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
          // The child is unref'd: with nothing else left to do, Node would exit before its 'exit' event, and
          // the caller's shutdown would never finish (nor log that it stopped).
          child.ref();
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000).unref();
          await exited;
          clearTimeout(timer);
        }
        process.removeListener('exit', killNow);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

type StartOutcome = 'up' | 'missing' | 'exited' | 'timeout';

async function waitUntilUp(server: PrivateServer, timeoutMs: number): Promise<StartOutcome> {
  let gone: StartOutcome | undefined;
  server.child.once(
    'error',
    (e: NodeJS.ErrnoException) => (gone = e.code === 'ENOENT' ? 'missing' : 'exited'),
  );
  server.child.once('exit', () => (gone ??= 'exited'));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) return gone;
    try {
      await ping(server.url, 250);
      return 'up';
    } catch {
      await delay(50);
    }
  }
  return gone ?? 'timeout';
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '';
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The URL without its password, for logs and error messages. */
export function redact(url: string): string {
  return redactUrl(url);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A pause that does not keep the process alive (it bounds waits that usually end sooner). */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
