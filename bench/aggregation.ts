// Benchmark: aggregation throughput with one worker and with two. Uploads are queued while the queue is
// paused, then the queue is resumed and the time until the round has aggregated them all and completed is
// measured. Both deployments run side by side (an idle one blocks on Redis and costs nothing) and the runs
// alternate, so that whatever else shares the machine weighs on both sides of the ratio alike. Each run also
// prints how many of the machine's cores were busy (/proc/stat, every process): what one worker's runs leave
// idle bounds what a second process can add here.
//   npm run bench:aggregation   (options: --clients N --floats N --runs N --profile DIR)
import { availableParallelism } from 'node:os';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import type { RoundInfo } from '../src/store/types';
import { vectorUpload } from '../test/support/plans';
import { checkinRaw, uploadRaw } from '../test/support/raw-client';
import { spread } from './load';
import {
  cpuLine,
  CpuMeter,
  figure,
  MachineCpu,
  redisPid,
  runOptions,
  startCluster,
  submitVectorPlan,
  type Cluster,
} from './support';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

interface Deployment {
  readonly workers: number;
  readonly cluster: Cluster;
  readonly queue: Queue;
  readonly cpu: CpuMeter;
}

async function deploy(
  workers: number,
  clients: number,
  redis: Redis,
  redisProcess: number,
  { env, nodeArgs }: ReturnType<typeof runOptions>,
): Promise<Deployment> {
  const cluster = await startCluster({
    workers,
    nodeArgs,
    env: { ...env, MAX_PENDING_UPLOADS: String(clients + 1) },
  });
  const queue = new Queue('agg', { connection: redis, prefix: `{${cluster.prefix}}` });
  const cpu = new CpuMeter({
    workers: cluster.workers.map((w) => w.pid!),
    api: [cluster.api.pid!],
    redis: [redisProcess],
  });
  return { workers, cluster, queue, cpu };
}

/** Queues `clients` uploads of one round with the queue paused, then times their aggregation. */
async function run(
  d: Deployment,
  run: number,
  clients: number,
  body: Buffer,
  floats: number,
  counted = true,
): Promise<{ rate: number; busy: number }> {
  const { cluster, queue } = d;
  await queue.pause();
  const { id, population } = await submitVectorPlan(cluster, floats, clients);
  for (let c = 0; c < clients; c++) {
    const assignment = await checkinRaw(cluster.url, population, `r${run}-w${c}`);
    if (!assignment) throw new Error('no task');
    const up = await uploadRaw(assignment, body);
    if (up.status !== 202) throw new Error(`upload answered ${up.status} ${up.code}`);
  }
  const machine = new MachineCpu();
  d.cpu.start();
  machine.start();
  const t0 = performance.now();
  await queue.resume();
  // Polled every 10 ms: a run lasts about a second, so a coarser poll would show in the figure.
  const limit = t0 + 600_000;
  for (;;) {
    const { rounds } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
      rounds: RoundInfo[];
    };
    const round = rounds.find((r) => r.round === 1);
    if (round?.phase === 'completed') break;
    if (round?.phase === 'failed') throw new Error(`the round failed: ${JSON.stringify(round)}`);
    if (performance.now() > limit) throw new Error('the round did not complete in 10 minutes');
    await new Promise((r) => setTimeout(r, 10));
  }
  const rate = clients / ((performance.now() - t0) / 1000);
  const busy = machine.stop();
  const cpu = d.cpu.stop();
  if (counted) {
    cpuLine('upload aggregated', cpu, clients);
    console.log(`    machine: ${busy.toFixed(2)} of ${cores} cores busy (every process, this one included)`);
  }
  return { rate, busy };
}

const cores = availableParallelism();
/** Uploads of each deployment's uncounted warm-up round. */
const WARM_UP_UPLOADS = 64;

async function main(): Promise<void> {
  const clients = arg('--clients', 300);
  const floats = arg('--floats', 100_000);
  const runs = arg('--runs', 3);
  console.log(
    `aggregation of ${clients} queued uploads of ${floats} float32, ${runs} alternating runs, node ${process.version}`,
  );
  const body = Buffer.from(vectorUpload(new Float32Array(floats).fill(1)));
  const options = runOptions(process.argv);
  const url = options.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const redisProcess = await redisPid(url);
  const deployments: Deployment[] = [];
  const rates = new Map<number, number[]>([
    [1, []],
    [2, []],
  ]);
  /** Cores the machine kept busy during each one-worker run. */
  const oneBusy: number[] = [];
  try {
    deployments.push(await deploy(1, clients, redis, redisProcess, options));
    deployments.push(await deploy(2, clients, redis, redisProcess, options));
    // One uncounted warm-up round per deployment (JIT, the plan isolates and WASM of every worker).
    for (const d of deployments) await run(d, -1, Math.min(clients, WARM_UP_UPLOADS), body, floats, false);
    for (let r = 0; r < runs; r++) {
      for (const d of deployments) {
        const { rate, busy } = await run(d, r, clients, body, floats);
        rates.get(d.workers)!.push(rate);
        if (d.workers === 1) oneBusy.push(busy);
        figure(`  run ${r + 1}: ${d.workers === 1 ? 'one worker' : 'two workers'}`, rate, 'uploads/s');
      }
    }
  } finally {
    for (const d of deployments) {
      await d.queue.close();
      await d.cluster.stop();
    }
    redis.disconnect();
  }
  const one = spread(rates.get(1)!);
  const two = spread(rates.get(2)!);
  figure('one worker, mean', one.mean, `uploads/s (sd ${one.sd.toFixed(1)})`);
  figure('two workers, mean', two.mean, `uploads/s (sd ${two.sd.toFixed(1)})`);
  const ratios = rates.get(2)!.map((x, i) => x / rates.get(1)![i]!);
  console.log(
    `ratio two/one: ${(two.mean / one.mean).toFixed(2)}x  (per run: ${ratios.map((x) => x.toFixed(2)).join(', ')})`,
  );
  // One worker's runs already kept this many cores busy: a second process can add at most what is left.
  const busy = spread(oneBusy).mean;
  console.log(
    `ceiling on this machine: ${cores} cores / ${busy.toFixed(2)} busy with one worker = ${(cores / busy).toFixed(2)}x`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
