import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { newClient } from '../../src/runtime/redis-connection';
import { scanKeys, unlinkKeys } from '../../src/store/redis-client';
import { testRedisUrl } from './test-redis';

/** The repository root, found from here both in test/support (jest) and in dist/test/support (benchmarks). */
function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + __dirname);
    dir = up;
  }
  return dir;
}

/** The CLI entry point, `bin/roundhouse.js` (it runs dist/: `npm run build` first). */
export const cliPath = path.join(repoRoot(), 'bin', 'roundhouse.js');

/** What a finished `roundhouse` process printed and how it exited. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bin/roundhouse.js` with `args` until it exits, collecting its output. */
export function runCli(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env ? { env } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** An API process and worker processes of the built CLI, on a unique Redis prefix. */
export interface Cluster {
  readonly url: string;
  readonly prefix: string;
  readonly operatorToken: string;
  readonly api: ChildProcess;
  readonly workers: ChildProcess[];
  /** Starts one more `roundhouse worker` process. */
  addWorker(): ChildProcess;
  /** Authorized JSON request to an operator endpoint. */
  operator(pathname: string, init?: RequestInit): Promise<Response>;
  /** Stops every process and deletes every key under the prefix. */
  stop(): Promise<void>;
}

function waitExit(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', () => r()));
}

/**
 * Node options for the processes a test starts, from `ROUNDHOUSE_TEST_NODE_ARGS` (space-separated), to profile
 * the server under a test's load: `ROUNDHOUSE_TEST_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p' npx jest
 * test/fuzz.test.ts` (NODE_OPTIONS refuses `--cpu-prof`).
 */
const TEST_NODE_ARGS = (process.env.ROUNDHOUSE_TEST_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Starts `roundhouse start --no-worker` and `workers` × `roundhouse worker` against the test's Redis. */
export async function startCluster(options: {
  workers: number;
  env?: Record<string, string>;
  /** Options for node itself, before the CLI (benchmarks pass `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: readonly string[];
}): Promise<Cluster> {
  const port = await freePort();
  const prefix = `rh-it-${process.pid}-${randomBytes(4).toString('hex')}`;
  const operatorToken = randomBytes(16).toString('hex');
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    REDIS_URL: testRedisUrl(),
    REDIS_PREFIX: prefix,
    OPERATOR_TOKEN: operatorToken,
    TOKEN_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'warn',
    // Every simulated device of a test checks in from 127.0.0.1: no per-address limit unless a test sets one.
    ANONYMOUS_RATE_LIMIT: '0',
    ...options.env,
  };
  const children: ChildProcess[] = [];
  const launch = (args: string[]) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? TEST_NODE_ARGS), cliPath, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  };
  const api = launch(['start', '--no-worker']);
  const workers = Array.from({ length: options.workers }, () => launch(['worker']));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (api.exitCode !== null) throw new Error(`the API process exited with ${api.exitCode}`);
    if (Date.now() > deadline) throw new Error('the API did not become ready in 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    prefix,
    operatorToken,
    api,
    workers,
    addWorker() {
      const w = launch(['worker']);
      workers.push(w);
      return w;
    },
    operator(pathname, init = {}) {
      return fetch(`${url}${pathname}`, {
        ...init,
        headers: {
          authorization: `Bearer ${operatorToken}`,
          'content-type': 'application/json',
          ...(init.headers ?? {}),
        },
      });
    },
    async stop() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(children.map(waitExit)),
        new Promise((r) => (timer = setTimeout(r, 15_000))),
      ]);
      clearTimeout(timer);
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await deleteKeys(prefix);
    },
  };
}

/** Deletes every Redis key of a prefix, BullMQ's (`{prefix}:...`) included (every primary of a cluster). */
export async function deleteKeys(prefix: string, url = testRedisUrl()): Promise<void> {
  const redis = newClient(url, { maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined);
  try {
    for (const pattern of [`${prefix}:*`, `{${prefix}}:*`]) {
      await scanKeys(redis, pattern, async (keys) => {
        await unlinkKeys(redis, keys);
      });
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * Waits until attempt 1 of `round` of plan `id` selects. The finalizer completes a round and opens the next
 * in a step of its own, so a check-in just after a round completed can get a retry window (seen under load);
 * tests that check each client in once wait for this first.
 */
export async function roundSelecting(
  operator: Pick<Cluster, 'operator'>,
  id: string,
  round: number,
  ms = 120_000,
): Promise<void> {
  await eventually(
    `round ${round} to open`,
    async () => {
      const res = await operator.operator(`/v1/plans/${id}/rounds`);
      const { rounds } = (await res.json()) as {
        rounds: { round: number; attempt: number; phase: string }[];
      };
      return rounds.some((x) => x.round === round && x.attempt === 1 && x.phase === 'selecting') || undefined;
    },
    ms,
  );
}

/** Polls until `check` returns a value, or fails after `ms`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
