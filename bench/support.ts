import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';
import { freePort, type Cluster } from '../test/support/cluster';
import { vectorSumPlan } from '../test/support/plans';

export { startCluster, eventually, type Cluster } from '../test/support/cluster';

/** Starts the bare express baseline server in its own process, like the server under test. */
export async function startBare(
  nodeArgs: readonly string[] = [],
  kind: 'express' | 'http' = 'express',
): Promise<{ url: string; stop(): void; child: ChildProcess }> {
  const port = await freePort();
  const args = [
    ...nodeArgs,
    path.join(__dirname, 'bare-server.js'),
    String(port),
    ...(kind === 'http' ? ['http'] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`bare server exited with ${c}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child, stop: () => child.kill('SIGTERM') };
}

/**
 * The options of a run from its command line: `--redis URL` (a Redis of the benchmark's own, to read its
 * INFO and SLOWLOG alone) and `--profile DIR` (every server process writes a V8 CPU profile there when it
 * stops: run the benchmark itself with `node --cpu-prof` to profile the load generator too).
 */
export function runOptions(argv: readonly string[]): {
  env: Record<string, string>;
  nodeArgs: string[];
} {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const redis = value('--redis');
  const profile = value('--profile');
  return {
    env: redis ? { REDIS_URL: redis } : {},
    nodeArgs: profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [],
  };
}

/** Prints one figure line. */
export function figure(label: string, value: number, unit: string): void {
  console.log(`${label.padEnd(44)} ${value.toFixed(1).padStart(10)} ${unit}`);
}

/** Submits a one-round vector-sum plan of `floats` floats for `clients` clients; its id and population. */
export async function submitVectorPlan(
  cluster: Cluster,
  floats: number,
  clients: number,
): Promise<{ id: string; population: string }> {
  const plan = vectorSumPlan(floats, {
    rounds: 1,
    target_clients: clients,
    selection_timeout_s: 3600,
    reporting_deadline_s: 3600,
  });
  const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
  if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  return { id, population: (plan.client_data as { collection: string }).collection };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux only; NaN elsewhere). */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces, so split after its closing parenthesis).
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat, 100 on every Linux that Node runs on. */
const CLOCK_TICKS = 100;

/** The pid of the Redis server at `url` (INFO server). */
export async function redisPid(url = 'redis://127.0.0.1:6379'): Promise<number> {
  const redis = new Redis(url);
  try {
    const info = await redis.info('server');
    return Number(/process_id:(\d+)/.exec(info)?.[1]);
  } finally {
    redis.disconnect();
  }
}

/**
 * CPU used by named groups of processes between `start()` and `stop()`, to tell where a benchmark's time
 * goes (API, workers, Redis, the load generator itself: this process). Only meaningful where nothing else
 * uses the same processes; the Redis figure counts every client of that Redis.
 */
export class CpuMeter {
  private before = new Map<string, number>();
  constructor(private readonly groups: Record<string, readonly number[]>) {}

  private read(): Map<string, number> {
    const now = new Map<string, number>();
    for (const [name, pids] of Object.entries(this.groups)) {
      now.set(
        name,
        pids.reduce((s, pid) => s + (pid === process.pid ? selfCpu() : cpuSeconds(pid)), 0),
      );
    }
    return now;
  }

  start(): void {
    this.before = this.read();
  }

  /** CPU seconds of each group since start(). */
  stop(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, s] of this.read()) out[name] = s - (this.before.get(name) ?? 0);
    return out;
  }
}

/** Jiffies the whole machine spent busy, from the first line of /proc/stat (Linux only). */
function busyJiffies(): number {
  try {
    const fields = fs
      .readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal: idle and iowait are the time no process ran.
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return total - fields[3]! - fields[4]!;
  } catch {
    return NaN;
  }
}

/**
 * How many cores the whole machine kept busy between `start()` and `stop()`, every process counted (the
 * benchmark's, Redis, and whatever else shares the machine): a deployment that keeps B of the machine's
 * C cores busy can grow by at most C / B by adding processes, whatever they are.
 */
export class MachineCpu {
  private before = busyJiffies();
  private at = performance.now();

  start(): void {
    this.before = busyJiffies();
    this.at = performance.now();
  }

  /** Cores busy on average since start(). */
  stop(): number {
    const seconds = (performance.now() - this.at) / 1000;
    return (busyJiffies() - this.before) / CLOCK_TICKS / seconds;
  }
}

function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Prints CPU ms per operation of each group, e.g. `per upload: api 2.10 ms, redis 0.80 ms`. */
export function cpuLine(what: string, cpu: Record<string, number>, operations: number): void {
  const parts = Object.entries(cpu).map(([k, s]) => `${k} ${((s * 1000) / operations).toFixed(2)} ms`);
  console.log(`    CPU per ${what}: ${parts.join(', ')}`);
}
