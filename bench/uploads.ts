// Benchmark: uploads of 100k-float updates accepted, validated, queued and aggregated per second
// (check-in + upload per client, until the round has aggregated them all), against a raw POST of the same
// bytes to a no-op express handler measured in the same run.
//   npm run bench:uploads   (options: --clients N --concurrency N --floats N)
import { vectorUpload } from '../test/support/plans';
import { checkinRaw, uploadRaw } from '../test/support/raw-client';
import { eventually, figure, load, startBare, startCluster, submitVectorPlan } from './support';
import type { RoundInfo } from '../src/store/types';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

async function main(): Promise<void> {
  const floats = arg('--floats', 100_000);
  const clients = arg('--clients', 400);
  const concurrency = arg('--concurrency', 16);
  const body = Buffer.from(vectorUpload(new Float32Array(floats).fill(1)));
  console.log(
    `uploads of ${floats} float32 (${(body.length / 1024).toFixed(0)} KiB), ${clients} clients, ${concurrency} at a time, node ${process.version}`,
  );

  const bare = await startBare();
  const base = await load({
    url: `${bare.url}/upload`,
    body,
    headers: { 'content-type': 'application/octet-stream' },
    connections: concurrency,
    seconds: 10,
  });
  bare.stop();
  figure('raw POST to a no-op handler (baseline)', base.rps, 'req/s');

  const cluster = await startCluster({ workers: 2 });
  try {
    const { id, population } = await submitVectorPlan(cluster, floats, clients);
    let next = 0;
    let busy = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < clients) {
          const c = next++;
          const assignment = await checkinRaw(cluster.url, population, `b${c}`);
          if (!assignment) throw new Error('no task');
          const up = await uploadRaw(assignment, body, { retryBusy: true });
          busy += up.busy;
          if (up.status !== 202) throw new Error(`upload answered ${up.status} ${up.code}`);
        }
      }),
    );
    const accepted = performance.now();
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
    const done = performance.now();
    const rate = clients / ((done - t0) / 1000);
    figure('roundhouse uploads accepted', clients / ((accepted - t0) / 1000), 'uploads/s');
    figure('roundhouse uploads aggregated (end to end)', rate, 'uploads/s');
    console.log(
      `ratio aggregated/baseline: ${(rate / base.rps).toFixed(2)}x  (${busy} uploads told to wait)`,
    );
  } finally {
    await cluster.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
