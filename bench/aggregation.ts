// Benchmark: aggregation throughput with one worker and with two. Uploads are queued while the queue is
// paused, then the queue is resumed and the time to aggregate them all is measured.
//   npm run bench:aggregation   (options: --clients N --floats N)
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import type { RoundInfo } from '../src/store/types';
import { vectorUpload } from '../test/support/plans';
import { checkinRaw, uploadRaw } from '../test/support/raw-client';
import { eventually, figure, startCluster, submitVectorPlan } from './support';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

async function run(workers: number, clients: number, floats: number): Promise<number> {
  const cluster = await startCluster({ workers, env: { MAX_PENDING_UPLOADS: String(clients + 1) } });
  const connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const queue = new Queue('agg', { connection, prefix: `{${cluster.prefix}}` });
  try {
    await queue.pause();
    const { id, population } = await submitVectorPlan(cluster, floats, clients);
    const body = Buffer.from(vectorUpload(new Float32Array(floats).fill(1)));
    for (let c = 0; c < clients; c++) {
      const assignment = await checkinRaw(cluster.url, population, `w${c}`);
      if (!assignment) throw new Error('no task');
      const up = await uploadRaw(assignment, body);
      if (up.status !== 202) throw new Error(`upload answered ${up.status} ${up.code}`);
    }
    const t0 = performance.now();
    await queue.resume();
    await eventually(
      'aggregation',
      async () => {
        const { rounds } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
          rounds: RoundInfo[];
        };
        return rounds.find((r) => r.round === 1 && r.phase === 'completed');
      },
      600_000,
    );
    return clients / ((performance.now() - t0) / 1000);
  } finally {
    await queue.close();
    connection.disconnect();
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const clients = arg('--clients', 300);
  const floats = arg('--floats', 100_000);
  console.log(`aggregation of ${clients} queued uploads of ${floats} float32, node ${process.version}`);
  const one = await run(1, clients, floats);
  figure('one worker', one, 'uploads/s');
  const two = await run(2, clients, floats);
  figure('two workers', two, 'uploads/s');
  console.log(`ratio two/one: ${(two / one).toFixed(2)}x`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
