// Benchmark: uploads of 100k-float updates accepted, validated, queued and aggregated per second, end to
// end (each virtual client checks in, then uploads under the token it got; the figure counts the round's
// uploads over the time until the round has aggregated them all and completed), against a raw POST of the
// same bytes to a no-op express handler. Both sides are driven by the same generator (bench/load.ts) with
// the same number of virtual clients, in the same run.
//   npm run bench:uploads   (options: --clients N (uploads per round) --concurrency N --floats N --runs N
//                            --workers N --seconds N (baseline)
//                            --calibrate --redis URL --profile DIR)
import { vectorUpload } from '../test/support/plans';
import type { RoundInfo } from '../src/store/types';
import { drive, expectStatus, spread, type VirtualClient } from './load';
import {
  cpuLine,
  CpuMeter,
  figure,
  redisPid,
  runOptions,
  startBare,
  startCluster,
  submitVectorPlan,
  type Cluster,
} from './support';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

/** Uploads of the uncounted warm-up round. */
const WARM_UP_UPLOADS = 200;

const OCTETS = { 'content-type': 'application/octet-stream' };
const JSON_TYPE = { 'content-type': 'application/json' };

/** One device's check-in and upload; retries a 503 BUSY (or the reset of a refused body) as a client would. */
async function checkinAndUpload(
  client: VirtualClient,
  population: string,
  device: string,
  body: Buffer,
): Promise<number> {
  const checkin = expectStatus(
    'check-in',
    await client.post(
      'checkin',
      `/v1/populations/${population}/checkin`,
      JSON.stringify({ device_id: device }),
      JSON_TYPE,
    ),
    200,
  );
  const { assignment } = JSON.parse(checkin.body.toString('utf8')) as {
    assignment?: { upload_url: string; token: string };
  };
  if (!assignment) throw new Error(`device ${device} got no task: ${checkin.body.toString('utf8')}`);
  const path = new URL(assignment.upload_url).pathname;
  const headers = { ...OCTETS, authorization: `Bearer ${assignment.token}`, 'x-device-credential': device };
  let busy = 0;
  for (;;) {
    let status: number;
    let retryAfter = 1;
    try {
      const up = await client.post('upload', path, body, headers);
      status = up.status;
      retryAfter = Number(up.headers['retry-after'] ?? 1);
      if (status === 202) return busy;
      expectStatus('upload', up, 503);
    } catch (e) {
      // A 503 BUSY refusal closes the connection while the body is still being sent: a reset.
      const code = (e as { code?: string }).code;
      if (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET' && code !== 'EPIPE') throw e;
    }
    busy += 1;
    await new Promise((r) => setTimeout(r, retryAfter * 50));
  }
}

async function roundhouseRun(
  cluster: Cluster,
  run: number,
  floats: number,
  clients: number,
  concurrency: number,
  body: Buffer,
): Promise<{
  rate: number;
  tailMs: number;
  accepted: number;
  busy: number;
  checkinMs: number;
  uploadMs: number;
}> {
  const { id, population } = await submitVectorPlan(cluster, floats, clients);
  let busy = 0;
  const t0 = performance.now();
  const load = await drive({
    origin: cluster.url,
    clients: concurrency,
    iterations: clients,
    script: async (client, n) => {
      busy += await checkinAndUpload(client, population, `r${run}-d${n}`, body);
    },
  });
  // Polled every 10 ms (test/support's `eventually` waits 100 ms, a visible part of a round of seconds).
  const limit = performance.now() + 600_000;
  for (;;) {
    const { rounds } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
      rounds: RoundInfo[];
    };
    if (rounds.some((r) => r.round === 1 && r.phase === 'completed')) break;
    if (performance.now() > limit) throw new Error('the round did not complete in 10 minutes');
    await new Promise((r) => setTimeout(r, 10));
  }
  const done = performance.now();
  return {
    rate: clients / ((done - t0) / 1000),
    tailMs: done - t0 - load.elapsedMs,
    accepted: load.rate,
    busy,
    checkinMs: load.latency.checkin!.mean,
    uploadMs: load.latency.upload!.mean,
  };
}

async function main(): Promise<void> {
  const floats = arg('--floats', 100_000);
  const clients = arg('--clients', 1000);
  const concurrency = arg('--concurrency', 16);
  const runs = arg('--runs', 3);
  const workers = arg('--workers', 2);
  const seconds = arg('--seconds', 5);
  // Also measures the fold-where-the-bytes-arrive ceiling (bench/bare-server.ts, POST /fold).
  const calibrate = process.argv.includes('--calibrate');
  const body = Buffer.from(vectorUpload(new Float32Array(floats).fill(1)));
  console.log(
    `uploads of ${floats} float32 (${(body.length / 1024).toFixed(0)} KiB), ${clients} uploads per round, ` +
      `${concurrency} virtual clients, ${workers} workers, ${runs} runs, node ${process.version}`,
  );

  // Both servers run side by side and the runs alternate, so that whatever else shares the machine weighs
  // on both sides of each ratio alike.
  const options = runOptions(process.argv);
  const bare = await startBare(options.nodeArgs);
  const cluster = await startCluster({ workers, ...options });
  const redis = await redisPid(options.env.REDIS_URL);
  const baseCpu = new CpuMeter({ bare: [bare.child.pid!], client: [process.pid] });
  const rhCpu = new CpuMeter({
    api: [cluster.api.pid!],
    workers: cluster.workers.map((w) => w.pid!),
    redis: [redis],
    client: [process.pid],
  });
  const base: number[] = [];
  const rh: number[] = [];
  const folds: number[] = [];
  const checkinFolds: number[] = [];
  const foldPost = async (client: VirtualClient) => {
    expectStatus('folded POST', await client.post('fold', '/fold', body, OCTETS), 202);
  };
  // The same with the bare check-in in front, as every device's upload has one: the ceiling of any design
  // whose devices check in and whose server folds their bytes.
  const checkinFoldPost = async (client: VirtualClient) => {
    expectStatus('bare check-in', await client.post('checkin', '/checkin', '{}', JSON_TYPE), 200);
    await foldPost(client);
  };
  const rawPost = async (client: VirtualClient) => {
    expectStatus('raw POST', await client.post('upload', '/upload', body, OCTETS), 202);
  };
  try {
    // Each side gets one uncounted warm-up before the first run (JIT, the workers' plan isolates and
    // WASM, the pools of connections): the figures are of servers that have served before, as in production.
    await drive({ origin: bare.url, clients: concurrency, seconds: 1, script: rawPost });
    await roundhouseRun(cluster, -1, floats, Math.min(clients, WARM_UP_UPLOADS), concurrency, body);
    for (let run = 0; run < runs; run++) {
      baseCpu.start();
      const b = await drive({
        origin: bare.url,
        clients: concurrency,
        seconds,
        script: rawPost,
      });
      const bcpu = baseCpu.stop();
      base.push(b.rate);
      figure(`  run ${run + 1}: raw POST (p50 ${b.latency.upload!.p50.toFixed(2)} ms)`, b.rate, 'req/s');
      cpuLine('raw POST', bcpu, b.iterations);
      if (calibrate) {
        baseCpu.start();
        const f = await drive({ origin: bare.url, clients: concurrency, seconds, script: foldPost });
        figure(`  run ${run + 1}: calibration, parse + check + HMAC + fold in express`, f.rate, 'req/s');
        cpuLine('folded POST', baseCpu.stop(), f.iterations);
        folds.push(f.rate);
        baseCpu.start();
        const cf = await drive({ origin: bare.url, clients: concurrency, seconds, script: checkinFoldPost });
        figure(`  run ${run + 1}: calibration, bare check-in + the fold above`, cf.rate, 'uploads/s');
        cpuLine('check-in + folded POST', baseCpu.stop(), cf.iterations);
        checkinFolds.push(cf.rate);
      }
      rhCpu.start();
      const r = await roundhouseRun(cluster, run, floats, clients, concurrency, body);
      const rcpu = rhCpu.stop();
      rh.push(r.rate);
      figure(
        `  run ${run + 1}: aggregated (accepted ${r.accepted.toFixed(0)}/s, then ${r.tailMs.toFixed(0)} ms to complete, busy ${r.busy}, ` +
          `check-in ${r.checkinMs.toFixed(2)} ms, upload ${r.uploadMs.toFixed(2)} ms)`,
        r.rate,
        'uploads/s',
      );
      cpuLine('check-in + upload, aggregated', rcpu, clients);
    }
  } finally {
    bare.stop();
    await cluster.stop();
  }
  const b = spread(base);
  const a = spread(rh);
  figure('raw POST of the same bytes (baseline), mean', b.mean, `req/s (sd ${b.sd.toFixed(1)})`);
  figure('roundhouse uploads aggregated end to end, mean', a.mean, `uploads/s (sd ${a.sd.toFixed(1)})`);
  if (calibrate) {
    const f = spread(folds);
    console.log(`ratio fold-in-express calibration/baseline: ${(f.mean / b.mean).toFixed(2)}x`);
    const cf = spread(checkinFolds);
    console.log(`ratio check-in + fold calibration/baseline: ${(cf.mean / b.mean).toFixed(2)}x`);
  }
  const ratios = rh.map((x, i) => x / base[i]!);
  console.log(
    `ratio aggregated/baseline: ${(a.mean / b.mean).toFixed(2)}x  (per run: ${ratios.map((x) => x.toFixed(2)).join(', ')})`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
