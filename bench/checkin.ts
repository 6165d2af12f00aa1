// Benchmark: check-in requests per second against a bare express JSON endpoint, each server in its own
// process, both driven by the same generator (bench/load.ts) with the same virtual clients in the same run.
// Roundhouse answers a retry window (its one round already has its client), the common case at scale.
//   npm run bench:checkin   (options: --seconds N --connections N --runs N)
import { vectorSumPlan } from '../test/support/plans';
import { drive, expectStatus, spread, type VirtualClient } from './load';
import { cpuLine, CpuMeter, figure, redisPid, runOptions, startBare, startCluster } from './support';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

const headers = { 'content-type': 'application/json' };

async function main(): Promise<void> {
  const seconds = arg('--seconds', 5);
  const connections = arg('--connections', 32);
  const runs = arg('--runs', 3);
  console.log(
    `check-in throughput: ${connections} virtual clients, ${runs} runs of ${seconds} s each, node ${process.version}`,
  );

  // Each virtual client is one device; the body is the SDK's.
  const body = (index: number) => JSON.stringify({ device_id: `bench-device-${index}` });
  const measure = async (origin: string, path: string, warmup: boolean, cpu: CpuMeter) => {
    const script = async (client: VirtualClient) => {
      expectStatus('check-in', await client.post('checkin', path, body(client.index), headers), 200);
    };
    if (warmup) await drive({ origin, clients: connections, seconds: 1, script });
    cpu.start();
    const r = await drive({ origin, clients: connections, seconds, script });
    cpuLine('check-in', cpu.stop(), r.iterations);
    return { rps: r.rate, p50: r.latency.checkin!.p50, p99: r.latency.checkin!.p99 };
  };

  // Both servers run side by side and the runs alternate, so that whatever else shares the machine weighs
  // on both sides of each ratio alike.
  const options = runOptions(process.argv);
  const bare = await startBare(options.nodeArgs);
  // A calibration, not the baseline: how far serving a route ahead of express (as the check-in is) can go.
  const plainHttp = await startBare(options.nodeArgs, 'http');
  const plainCpu = new CpuMeter({ bare: [plainHttp.child.pid!], client: [process.pid] });
  const plain: number[] = [];
  const cluster = await startCluster({ workers: 1, ...options });
  const redis = await redisPid(options.env.REDIS_URL);
  const baseCpu = new CpuMeter({ bare: [bare.child.pid!], client: [process.pid] });
  const rhCpu = new CpuMeter({ api: [cluster.api.pid!], redis: [redis], client: [process.pid] });
  const base: number[] = [];
  const rh: number[] = [];
  try {
    const plan = vectorSumPlan(4, {
      rounds: 1,
      target_clients: 1,
      selection_timeout_s: 3600,
      reporting_deadline_s: 3600,
    });
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
    const population = (plan.client_data as { collection: string }).collection;
    const path = `/v1/populations/${population}/checkin`;
    // Takes the only task, so that every measured check-in is answered a retry window.
    await fetch(`${cluster.url}${path}`, { method: 'POST', headers, body: body(-1) });
    for (let run = 0; run < runs; run++) {
      const b = await measure(bare.url, '/checkin', run === 0, baseCpu);
      base.push(b.rps);
      figure(
        `  run ${run + 1}: bare express (p50 ${b.p50.toFixed(2)}, p99 ${b.p99.toFixed(2)} ms)`,
        b.rps,
        'req/s',
      );
      const h = await measure(plainHttp.url, '/checkin', run === 0, plainCpu);
      plain.push(h.rps);
      figure(`  run ${run + 1}: bare Node http (calibration, p50 ${h.p50.toFixed(2)} ms)`, h.rps, 'req/s');
      const r = await measure(cluster.url, path, run === 0, rhCpu);
      rh.push(r.rps);
      figure(
        `  run ${run + 1}: roundhouse retry window (p50 ${r.p50.toFixed(2)}, p99 ${r.p99.toFixed(2)} ms)`,
        r.rps,
        'req/s',
      );
    }
  } finally {
    bare.stop();
    plainHttp.stop();
    await cluster.stop();
  }
  const b = spread(base);
  const a = spread(rh);
  figure('bare express JSON endpoint (baseline), mean', b.mean, `req/s (sd ${b.sd.toFixed(1)})`);
  figure('roundhouse check-in (retry window), mean', a.mean, `req/s (sd ${a.sd.toFixed(1)})`);
  const p = spread(plain);
  figure(
    'bare Node http (calibration), mean',
    p.mean,
    `req/s (sd ${p.sd.toFixed(1)}; ${(p.mean / b.mean).toFixed(2)}x bare express)`,
  );
  const ratios = rh.map((x, i) => x / base[i]!);
  console.log(
    `ratio roundhouse/baseline: ${(a.mean / b.mean).toFixed(2)}x  (per run: ${ratios.map((x) => x.toFixed(2)).join(', ')})`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
