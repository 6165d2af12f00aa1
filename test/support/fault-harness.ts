/**
 * Real processes for the fault-injection suite (test/faults/): `roundhouse start --no-worker` and
 * `roundhouse worker` children whose output is kept and parsed, a `redis-server` of the test's own that a
 * test may kill, restart, stop (SIGSTOP) and continue, and a cluster of both that shares one prefix, one
 * operator token and one TOKEN_SECRET, so that a client may retry its upload against another API process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { readBundle } from '../../src/codec';
import type { RoundInfo } from '../../src/store/types';
import { cliPath, deleteKeys, freePort } from './cluster';
import type { RedisClient } from '../../src/store/redis-client';
import { testRedisUrl } from './test-redis';

/** One JSON log line of a Roundhouse process (pino). */
export interface LogLine {
  readonly level: number;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

/** How a child process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A `roundhouse` child process whose stdout and stderr are kept in memory. */
export class RoundhouseProcess {
  readonly exited: Promise<Exit>;
  private out = '';

  constructor(
    /** A name for messages: `api-1`, `worker-2`. */
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.out += d.toString();
      if (process.env.FAULTS_VERBOSE === '1') process.stderr.write(prefixLines(`${name}| `, d.toString()));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null)
        resolve({ code: child.exitCode, signal: child.signalCode });
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  /** Everything the process wrote so far. */
  get output(): string {
    return this.out;
  }

  /** Its JSON log lines so far (other output is left out). */
  lines(): LogLine[] {
    const lines: LogLine[] = [];
    for (const text of this.out.split('\n')) {
      if (!text.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        // a line cut short by a SIGKILL
      }
    }
    return lines;
  }

  /** Its log lines with this message. */
  logged(msg: string): LogLine[] {
    return this.lines().filter((l) => l.msg === msg);
  }

  /** Waits until it logs `msg` (fails when it exits first or after `ms`). */
  async waitLogged(msg: string, ms = 60_000): Promise<LogLine> {
    const until = Date.now() + ms;
    for (;;) {
      const line = this.logged(msg)[0];
      if (line) return line;
      if (!this.alive) throw new Error(`${this.name} exited before it logged "${msg}":\n${this.tail()}`);
      if (Date.now() > until)
        throw new Error(`${this.name} did not log "${msg}" in ${ms} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }

  /** The last lines of its output, for failure messages. */
  tail(n = 20): string {
    return prefixLines(`${this.name}| `, this.out.trimEnd().split('\n').slice(-n).join('\n') + '\n');
  }
}

function prefixLines(prefix: string, text: string): string {
  return text.replace(/^(?=.)/gm, prefix);
}

/** Starts `roundhouse <args>` with exactly `env` (plus PATH and HOME), its output kept. */
export function spawnRoundhouse(
  name: string,
  args: string[],
  env: Record<string, string>,
): RoundhouseProcess {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new RoundhouseProcess(name, child);
}

/** Whether `redis-server` is on PATH. */
export function haveRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A `redis-server` of the test's own, on a free port with a directory of its own. */
export interface OwnRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The running server's process, while it runs. */
  readonly pid: number | undefined;
  /** Kills the server (SIGKILL by default: no final write) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (what append-only persistence wrote is read back). */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open and nothing answers, as a hung host or a partition looks. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** A client of it (the caller disconnects it). */
  client(): Redis;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts a `redis-server` on a free port; with `appendOnly`, every write is in the append-only file before
 * the reply (`--appendfsync always`), so that a kill loses nothing a client was told is stored.
 */
export async function startOwnRedis(options: { appendOnly?: boolean } = {}): Promise<OwnRedis> {
  if (!haveRedisServer())
    throw new Error('redis-server is not on PATH: apt-get install redis-server (.ci/run does)');
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-faults-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
    '--logfile',
    path.join(dir, 'redis.log'),
    '--daemonize',
    'no',
    ...(options.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
  ];
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async () => {
    const c = spawn('redis-server', args, { stdio: 'ignore' });
    child = c;
    exited = new Promise((resolve) => {
      c.once('exit', () => resolve());
      c.once('error', () => resolve());
    });
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      const until = Date.now() + 20_000;
      for (;;) {
        try {
          if (probe.status !== 'ready') await probe.connect();
          // LOADING while the append-only file is read back: not up yet.
          if ((await probe.ping()) === 'PONG') return;
        } catch {
          if (c.exitCode !== null) throw new Error(`redis-server exited: ${readLog(dir)}`);
          if (Date.now() > until) throw new Error(`redis-server on ${port} did not answer: ${readLog(dir)}`);
          probe.disconnect();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      probe.disconnect();
    }
  };
  await launch();

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const own: OwnRedis = {
    url,
    port,
    dir,
    get pid() {
      return running() ? child!.pid : undefined;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (running()) {
        // A stopped process does not act on SIGTERM until continued.
        child!.kill('SIGCONT');
        child!.kill(signal);
      }
      await exited;
    },
    async restart() {
      if (running()) throw new Error('redis-server is still running');
      await launch();
    },
    pause() {
      if (running()) child!.kill('SIGSTOP');
    },
    resume() {
      if (running()) child!.kill('SIGCONT');
    },
    client() {
      const c = new Redis(url, { maxRetriesPerRequest: 3 });
      c.on('error', () => undefined);
      return c;
    },
    async stop() {
      await own.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return own;
}

function readLog(dir: string): string {
  try {
    return fs.readFileSync(path.join(dir, 'redis.log'), 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '(no log)';
  }
}

/** An API process with the URL it serves. */
export interface ApiProcess extends RoundhouseProcess {
  readonly url: string;
}

/** Options of {@link startFaultCluster}. */
export interface FaultClusterOptions {
  /** Default the test file's Redis (test/support/test-redis.ts). */
  readonly redisUrl?: string;
  /** API processes started at once (default 1). */
  readonly apis?: number;
  /** Worker processes started at once. */
  readonly workers: number;
  /** Environment of every process. */
  readonly env?: Record<string, string>;
  /** Environment of the workers started at once (after `env`). */
  readonly workerEnv?: Record<string, string>;
}

/**
 * API and worker processes of the built CLI on one Redis and one unique prefix, sharing the operator token
 * and TOKEN_SECRET. Workers run `--id w<n>` (a fresh n each), so that a test can tell which one holds what.
 * Workers log at info (their log is parsed), API processes at warn unless `env` says otherwise.
 */
export class FaultCluster {
  readonly prefix = `rh-fault-${process.pid}-${randomBytes(4).toString('hex')}`;
  readonly operatorToken = randomBytes(16).toString('hex');
  readonly tokenSecret = randomBytes(32).toString('hex');
  readonly apis: ApiProcess[] = [];
  readonly workers: RoundhouseProcess[] = [];
  /** Every process ever started, dead ones included (their output stays readable). */
  readonly all: RoundhouseProcess[] = [];
  private workerSeq = 0;

  constructor(
    readonly redisUrl: string,
    private readonly env: Record<string, string>,
  ) {}

  /** The first live API process's URL. */
  get url(): string {
    const api = this.apis.find((a) => a.alive);
    if (!api) throw new Error('no API process is alive');
    return api.url;
  }

  private baseEnv(): Record<string, string> {
    return {
      HOST: '127.0.0.1',
      REDIS_URL: this.redisUrl,
      REDIS_PREFIX: this.prefix,
      OPERATOR_TOKEN: this.operatorToken,
      TOKEN_SECRET: this.tokenSecret,
      // Every simulated device checks in from 127.0.0.1: no per-address limit.
      ANONYMOUS_RATE_LIMIT: '0',
      ...this.env,
    };
  }

  /** Starts one more API process (on `port`, e.g. a dead one's, else a free one) and waits until it is ready. */
  async addApi(env: Record<string, string> = {}, port?: number): Promise<ApiProcess> {
    port ??= await freePort();
    const url = `http://127.0.0.1:${port}`;
    const p = spawnRoundhouse(`api-${this.apis.length + 1}`, ['start', '--no-worker'], {
      LOG_LEVEL: 'warn',
      ...this.baseEnv(),
      PORT: String(port),
      PUBLIC_URL: url,
      ...env,
    });
    const api = Object.assign(p, { url }) as ApiProcess;
    this.apis.push(api);
    this.all.push(api);
    const until = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await fetch(`${url}/readyz`)).ok) return api;
      } catch {
        // not listening yet
      }
      if (!api.alive) throw new Error(`${api.name} exited before it was ready:\n${api.tail()}`);
      if (Date.now() > until) throw new Error(`${api.name} was not ready in 60 s:\n${api.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Starts one more worker process (not waiting for it). */
  addWorker(env: Record<string, string> = {}): RoundhouseProcess {
    const id = `w${++this.workerSeq}`;
    // At info whatever the cluster's LOG_LEVEL: tests read the worker's log (readiness, redeliveries).
    const w = spawnRoundhouse(`worker-${id}`, ['worker', '--id', id], {
      ...this.baseEnv(),
      LOG_LEVEL: 'info',
      ...env,
    });
    this.workers.push(w);
    this.all.push(w);
    return w;
  }

  /** The worker id a worker process was started with. */
  workerId(w: RoundhouseProcess): string {
    return w.name.replace(/^worker-/, '');
  }

  /** Authorized request to an operator endpoint of the first live API process. */
  operator(pathname: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.url}${pathname}`, {
      ...init,
      headers: {
        authorization: `Bearer ${this.operatorToken}`,
        'content-type': 'application/json',
        ...(init.headers ?? {}),
      },
    });
  }

  /** Submits a plan; its id. */
  async submit(plan: unknown): Promise<string> {
    const res = await this.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    if (res.status !== 201) throw new Error(`POST /v1/plans answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  }

  async rounds(plan: string): Promise<RoundInfo[]> {
    const res = await this.operator(`/v1/plans/${plan}/rounds`);
    if (res.status !== 200) throw new Error(`GET rounds answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { rounds: RoundInfo[] }).rounds;
  }

  /**
   * Waits until round `round` of a plan has a completed attempt; fails at once when one of its attempts
   * failed (in these tests nothing may make a round fail), and after `ms` with what every process said.
   */
  async waitCompleted(plan: string, round: number, ms = 90_000): Promise<RoundInfo> {
    const until = Date.now() + ms;
    let last: RoundInfo[] = [];
    for (;;) {
      try {
        last = (await this.rounds(plan)).filter((r) => r.round === round);
      } catch {
        // an API process may be down for a moment in these tests
      }
      const failed = last.find((r) => r.phase === 'failed');
      if (failed)
        throw new Error(`round ${round}.${failed.attempt} failed: ${failed.error}\n${this.tails()}`);
      const done = last.find((r) => r.phase === 'completed');
      if (done) return done;
      if (Date.now() > until) {
        throw new Error(
          `round ${round} did not complete in ${ms / 1000} s; last seen ${JSON.stringify(last)}\n${this.tails()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The plan's server state, tensor by tensor (name to values). */
  async state(plan: string): Promise<Record<string, number[]>> {
    const res = await this.operator(`/v1/plans/${plan}/state`);
    if (res.status !== 200) throw new Error(`GET state answered ${res.status}`);
    const { tensors } = readBundle(new Uint8Array(await res.arrayBuffer()));
    return Object.fromEntries(tensors.map((t) => [t.name, Array.from(t.data as ArrayLike<number>)]));
  }

  /** The log lines of every process (dead ones included) with this message. */
  logged(msg: string): (LogLine & { process: string })[] {
    return this.all.flatMap((p) => p.logged(msg).map((l) => ({ ...l, process: p.name })));
  }

  /**
   * The processes that died though no test killed them, each with how it ended and its last words (a test
   * that kills one takes it out of `apis` or `workers` first, or expects it here).
   */
  deaths(): string[] {
    return this.all
      .filter((p) => !p.alive)
      .map((p) => `${p.name} exited (${p.child.exitCode ?? p.child.signalCode})\n${p.tail(30)}`);
  }

  /** The last lines of every process's output. */
  tails(n = 15): string {
    return this.all.map((p) => p.tail(n)).join('');
  }

  /** Stops every process (SIGTERM, then SIGKILL after 15 s) and deletes every key of the prefix. */
  async stop(): Promise<void> {
    const live = this.all.filter((p) => p.alive);
    for (const p of live) p.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(live.map((p) => p.exited)),
      new Promise((r) => (timer = setTimeout(r, 15_000))),
    ]);
    clearTimeout(timer);
    await Promise.all(live.map((p) => p.kill('SIGKILL')));
    await deleteKeys(this.prefix, this.redisUrl).catch(() => undefined);
  }
}

/** Starts a {@link FaultCluster}: its API processes and workers, once all of them are ready. */
export async function startFaultCluster(options: FaultClusterOptions): Promise<FaultCluster> {
  const cluster = new FaultCluster(options.redisUrl ?? testRedisUrl(), options.env ?? {});
  try {
    for (let i = 0; i < (options.apis ?? 1); i++) await cluster.addApi();
    const workers = Array.from({ length: options.workers }, () => cluster.addWorker(options.workerEnv));
    // Running, so that a test's faults hit a worker at work rather than one starting up.
    await Promise.all(workers.map((w) => w.waitLogged('aggregation worker running')));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** The number of `stalled` events (a job whose lock lapsed, handed back to the queue) BullMQ recorded. */
export async function stalledJobs(redis: RedisClient, prefix: string): Promise<string[]> {
  const entries = (await redis.xrange(`{${prefix}}:agg:events`, '-', '+')) as [string, string[]][];
  const ids: string[] = [];
  for (const [, fields] of entries) {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
    if (f.get('event') === 'stalled') ids.push(f.get('jobId') ?? '');
  }
  return ids;
}
