/**
 * Ctrl-C and SIGTERM stop the long-running commands (`start`, `worker`, `demo`) quickly with a plan open,
 * log that they stopped, stop a private redis-server, and exit as a shell reports the signal (130, 143).
 * Real processes of the built CLI (`npm run build` first).
 *
 * The time bound is wide for a loaded machine but far below what a worker waiting out BullMQ's blocking
 * fetch took (about 8 to 10 s once a plan's deadline jobs are queued).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deleteKeys, freePort } from './support/cluster';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'roundhouse.js');
const STOP_BOUND_MS = 5000;

/** A child of the built CLI whose output is collected. */
interface Proc {
  readonly child: ChildProcess;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

const started: Proc[] = [];
const prefixes: string[] = [];

function launch(args: string[], env: Record<string, string>): Proc {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(PORT|HOST|PUBLIC_URL|REDIS_URL|REDIS_PREFIX|OPERATOR_TOKEN|TOKEN_SECRET|ROUNDHOUSE_)/.test(k))
      base[k] = v;
  }
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const proc = { child, exit, output: () => out };
  started.push(proc);
  return proc;
}

async function until<T>(what: string, proc: Proc, check: () => Promise<T | undefined> | T | undefined) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`exited before ${what}:\n${proc.output()}`);
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`no ${what} in 60 s:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ready(url: string): Promise<true | undefined> {
  try {
    return (await fetch(`${url}/readyz`)).ok ? true : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `signal` and answers the exit and how long it took. */
async function stop(proc: Proc, signal: NodeJS.Signals) {
  const t0 = Date.now();
  proc.child.kill(signal);
  const exit = await proc.exit;
  return { ...exit, ms: Date.now() - t0 };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of the private redis-server a process logged that it started. */
function privateRedisPid(log: string): number | undefined {
  for (const line of log.split('\n')) {
    if (!line.includes('started a private redis-server')) continue;
    return (JSON.parse(line) as { pid: number }).pid;
  }
  return undefined;
}

/** Starts `roundhouse start` on a free port and submits a plan, so that its deadline jobs are queued. */
async function startWithPlan(env: Record<string, string>, args: string[] = []) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const token = randomBytes(16).toString('hex');
  const prefix = `rhtest-shutdown-${randomBytes(4).toString('hex')}`;
  prefixes.push(prefix);
  const env_ = {
    HOST: '127.0.0.1',
    PORT: String(port),
    OPERATOR_TOKEN: token,
    REDIS_PREFIX: prefix,
    LOG_LEVEL: 'info',
    ...env,
  };
  const proc = launch(['start', ...args], env_);
  await until('readiness', proc, () => ready(url));
  const plan = fs.readFileSync(path.join(root, 'test', 'fixtures', 'sum-plan.json'), 'utf8');
  const res = await fetch(`${url}/v1/plans`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: plan,
  });
  expect(res.status).toBe(201);
  return { proc, url, env: env_ };
}

afterAll(async () => {
  for (const p of started)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(started.map((p) => p.exit));
  for (const prefix of prefixes) await deleteKeys(prefix);
});

describe('interrupting the long-running commands', () => {
  test('start with a private redis-server: SIGINT stops it quickly, logs "stopped", stops Redis, exits 130', async () => {
    const { proc } = await startWithPlan({ REDIS_URL: 'private' });
    const redisPid = privateRedisPid(proc.output());
    expect(redisPid).toBeDefined();
    expect(alive(redisPid!)).toBe(true);
    // The worker is blocked on the queue by now (the plan's deadline jobs wait in it).
    await new Promise((r) => setTimeout(r, 1500));

    const exit = await stop(proc, 'SIGINT');
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 130, signal: null });
    expect(proc.output()).toContain('"msg":"stopped"');
    expect(exit.ms).toBeLessThan(STOP_BOUND_MS);
    expect(alive(redisPid!)).toBe(false);
  }, 90_000);

  test('worker: SIGTERM stops it quickly with a plan open, logs "stopped", exits 143', async () => {
    const api = await startWithPlan({ REDIS_URL: 'redis://127.0.0.1:6379' }, ['--no-worker']);
    const worker = launch(['worker'], api.env);
    await until('the worker', worker, () =>
      worker.output().includes('aggregation worker started') ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1500));

    const exit = await stop(worker, 'SIGTERM');
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 143, signal: null });
    expect(worker.output()).toContain('"msg":"stopped"');
    expect(exit.ms).toBeLessThan(STOP_BOUND_MS);

    const apiExit = await stop(api.proc, 'SIGTERM');
    expect(apiExit.code).toBe(143);
    expect(apiExit.ms).toBeLessThan(STOP_BOUND_MS);
  }, 90_000);

  test('demo with a private redis-server: SIGINT stops clients, server and Redis quickly, exits 130', async () => {
    const demo = launch(['demo', '--clients', '12', '--log-level', 'info'], { REDIS_URL: 'private' });
    // Once the plan is submitted the simulated clients run and the queue holds its deadline jobs.
    await until('the demo plan', demo, () =>
      /demo: server .* plan p/.test(demo.output()) ? true : undefined,
    );
    const redisPid = privateRedisPid(demo.output());
    expect(redisPid).toBeDefined();
    await new Promise((r) => setTimeout(r, 3000));

    const exit = await stop(demo, 'SIGINT');
    expect({ code: exit.code, signal: exit.signal, log: exit.code === 130 ? '' : demo.output() }).toEqual({
      code: 130,
      signal: null,
      log: '',
    });
    expect(demo.output()).toContain('demo: stopped (SIGINT)');
    expect(exit.ms).toBeLessThan(STOP_BOUND_MS);
    expect(alive(redisPid!)).toBe(false);
  }, 90_000);
});
