// Benchmark: check-in requests per second against a bare express JSON endpoint measured in the same run,
// each server in its own process, loaded by autocannon from this one.
//   npm run bench:checkin   (options: --seconds N --connections N)
import { figure, load, startBare, startCluster } from './support';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

async function main(): Promise<void> {
  const seconds = arg('--seconds', 10);
  const connections = arg('--connections', 32);
  const body = JSON.stringify({ client_id: 'bench-client' });
  const headers = { 'content-type': 'application/json' };
  console.log(`check-in throughput: ${connections} connections, ${seconds} s each, node ${process.version}`);

  const bare = await startBare();
  const base = await load({ url: `${bare.url}/checkin`, body, headers, connections, seconds });
  bare.stop();
  figure('bare express JSON endpoint (baseline)', base.rps, 'req/s');

  const cluster = await startCluster({ workers: 1 });
  try {
    // A population whose round has all the clients it needs: check-ins get retry windows, the common case.
    const plan = (await import('../test/support/plans')).vectorSumPlan(4, {
      rounds: 1,
      target_clients: 1,
      selection_timeout_s: 3600,
      reporting_deadline_s: 3600,
    });
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
    const population = (plan.client_data as { collection: string }).collection;
    const url = `${cluster.url}/v1/populations/${population}/checkin`;
    await fetch(url, { method: 'POST', headers, body }); // takes the only task
    const rh = await load({ url, body, headers, connections, seconds });
    figure('roundhouse check-in (retry window)', rh.rps, 'req/s');
    figure('roundhouse check-in p99 latency', rh.p99, 'ms');
    console.log(`ratio roundhouse/baseline: ${(rh.rps / base.rps).toFixed(2)}x  (non-2xx: ${rh.non2xx})`);
  } finally {
    await cluster.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
