import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregationWorker } from '../aggregation/worker';
import { createRequestListener } from '../api/app';
import { createDeviceVerifier } from '../api/devices';
import { createMetrics } from '../api/metrics';
import type { Config } from '../config';
import { createLogger, type Logger } from '../log/logger';
import { ProgramEvents, programChannel } from '../stateful/server/program-events';
import { checkEvictionPolicy, createCore, startIsolates, startProgramDriver } from './core';
import { fastClose } from './http-close';
import { connectRedis, type ConnectRedisOptions } from './redis';

/** Options of {@link startServer}. */
export interface StartServerOptions {
  /** Run one aggregation worker in this process too (`roundhouse start` without `--no-worker`). */
  readonly worker: boolean;
  /** Default: a logger at `config.logLevel`. */
  readonly log?: Logger;
  /**
   * Which secrets the configuration generated because the environment did not set them (see
   * `loadServerConfig`): a generated operator token is logged, since nobody could call the API otherwise.
   */
  readonly generated?: { readonly operatorToken?: boolean; readonly tokenSecret?: boolean };
  /** How to find Redis when REDIS_URL is not set (tests). */
  readonly redis?: ConnectRedisOptions;
}

/** A running API server. */
export interface RunningServer {
  /** Where it answers, e.g. `http://127.0.0.1:8080` (a wildcard bind is reported as 127.0.0.1). */
  readonly url: string;
  /** The port it listens on; the real one when `config.port` was 0. */
  readonly port: number;
  /** Stops accepting HTTP, closes the worker, the queue and Redis, in that order. Idempotent. */
  close(): Promise<void>;
}

/** How long open HTTP requests get to finish on close before their connections are cut. */
const HTTP_GRACE_MS = 5000;

/**
 * Starts the API (and one aggregation worker when asked): picks the TensorFlow.js backend, finds Redis
 * (see `connectRedis`), wires the store, plan cache, jobs and engine, and listens on `config.host` and
 * `config.port` (0 picks a free port; the fallback `publicUrl` then follows the real one).
 */
export async function startServer(config: Config, options: StartServerOptions): Promise<RunningServer> {
  const log = options.log ?? createLogger({ level: config.logLevel });
  const closers: Array<{ what: string; close: () => Promise<void> }> = [];
  const closeAll = async (): Promise<void> => {
    // Last started, first stopped: HTTP, then the worker, the queue, Redis.
    for (const { what, close } of closers.splice(0).reverse()) {
      const t0 = Date.now();
      try {
        await close();
        log.debug({ what, ms: Date.now() - t0 }, 'closed');
      } catch (err) {
        log.error({ err, what }, 'error while shutting down');
      }
    }
  };

  try {
    const redis = await connectRedis(config, log, options.redis);
    closers.push({ what: 'redis', close: () => redis.close() });
    const core = createCore(config, redis, log);
    closers.push({ what: 'jobs', close: () => core.jobs.close() });
    // Plan code never runs in this thread: the API and the worker hand it to the isolates.
    closers.push({ what: 'isolates', close: () => core.evaluator.close() });
    await startIsolates(core, log);
    await checkEvictionPolicy(core, log);

    if (options.worker) {
      const worker = new AggregationWorker({
        connection: redis.client({ forBullWorker: true, name: 'roundhouse:worker' }),
        store: core.store,
        engine: core.engine,
        plans: core.plans,
        evaluator: core.evaluator,
        config,
        log,
      });
      await worker.start();
      closers.push({ what: 'worker', close: () => worker.close() });
      const driver = startProgramDriver(core, config, log);
      closers.push({ what: 'programs', close: () => driver.stop() });
      log.info('aggregation worker started in this process');
    }

    const devices = createDeviceVerifier(config, core.connection, log);
    const programEvents = new ProgramEvents(
      redis.client({ name: 'roundhouse:program-events' }),
      programChannel(config.redisPrefix),
    );
    await programEvents.start();
    closers.push({ what: 'program events', close: () => programEvents.close() });

    // The app is made after listen so that, with port 0, it sees the real port in its configuration.
    const app: { handler?: http.RequestListener } = {};
    const server = http.createServer((req, res) => {
      if (app.handler) return void app.handler(req, res);
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error: { code: 'NOT_READY', message: 'starting', details: [] } }));
    });
    const closeHttp = fastClose(server);
    await listen(server, config.port, config.host);
    closers.push({ what: 'http', close: () => closeHttp(HTTP_GRACE_MS) });
    const port = (server.address() as AddressInfo).port;
    const effective: Config =
      port === config.port
        ? config
        : Object.freeze({
            ...config,
            port,
            publicUrl: config.publicUrlFromHost ? `http://localhost:${port}` : config.publicUrl,
          });
    app.handler = createRequestListener({
      config: effective,
      store: core.store,
      engine: core.engine,
      plans: core.plans,
      jobs: core.jobs,
      programs: core.programs,
      programEvents,
      log,
      devices,
      // A long-running server exports the process metrics too (CPU, memory, event-loop lag).
      metrics: createMetrics({ defaultMetrics: true }),
      ready: () => core.connection.ping(),
      backendReady: () => core.evaluator.ready(),
    });

    const url = `http://${displayHost(config.host)}:${port}`;
    log.info(
      {
        url,
        // PUBLIC_URL unset: no one base to log, each check-in's URLs are on the host it named.
        ...(effective.publicUrlFromHost
          ? { resource_urls: 'on the Host of each check-in (PUBLIC_URL is unset)' }
          : { public_url: effective.publicUrl }),
        worker: options.worker,
        redis_prefix: config.redisPrefix,
      },
      'API listening',
    );
    if (options.generated?.operatorToken) {
      log.warn(
        { operator_token: config.operatorToken },
        'OPERATOR_TOKEN is not set: generated this one for this process (send it as "Authorization: Bearer <token>"; ' +
          'set OPERATOR_TOKEN to keep one across restarts)',
      );
    }
    if (options.generated?.tokenSecret) {
      log.info(
        'TOKEN_SECRET is not set: task tokens are signed with a random per-process secret (fine for one API process)',
      );
    }

    let closing: Promise<void> | undefined;
    return {
      url,
      port,
      close: () => (closing ??= closeAll()),
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void =>
      reject(
        e.code === 'EADDRINUSE'
          ? new Error(
              `port ${port} on ${host} is in use: set PORT (or --port) to another, or 0 for any free port`,
            )
          : e,
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

function displayHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
