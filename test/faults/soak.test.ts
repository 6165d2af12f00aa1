/**
 * A soak: 1,000 simulated clients (raw HTTP, each a device of its own) through 10 rounds of a vector-sum
 * plan, aggregated by two worker processes, on a `redis-server` of the test's own so that its memory and
 * keys are the cluster's alone. No answer may be a 5xx, every aggregate must be exact, and once the plan is
 * deleted (`DELETE /v1/plans/{id}`), Redis must hold the keys it held before the plan and no more memory.
 *
 * The baseline is taken after a warm-up plan ran and was deleted: what the first plan leaves for good
 * (BullMQ's queue keys, the population's check-in rate, the loaded scripts) is not the soak's. A key a
 * plan leaves behind shows up as a difference all the same, since the warm-up's was deleted too.
 */
import type Redis from 'ioredis';
import { vectorSumPlan } from '../support/plans';
import { Exchanges, runClients, type ClientOptions } from '../support/fault-clients';
import { startFaultCluster, startOwnRedis, type FaultCluster, type OwnRedis } from '../support/fault-harness';
import { needs } from '../support/needs';

const K = 16;
const population = `vectors${K}`;
const CLIENTS = 1000;
const ROUNDS = 10;
/**
 * What `used_memory` may differ from the baseline by, besides the BullMQ event stream (capped by BullMQ at
 * 10,000 events, so bounded; measured apart): allocator rounding and the server's own buffers.
 */
const MEMORY_SLACK = 256 * 1024;
const EVENTS_CAP = 10_000;

let redis: OwnRedis | undefined;
let cluster: FaultCluster | undefined;
let client: Redis | undefined;
afterAll(async () => {
  await cluster?.stop();
  client?.disconnect();
  await redis?.stop();
});

/**
 * BullMQ's containers of jobs by state, and its stalled-check timer: they come and go with the jobs of
 * any plan (a list exists while it holds something). A job of the plan left behind still shows as its
 * own key (`<queue>:<job id>`).
 */
const QUEUE_STATE =
  /:agg:(active|wait|paused|delayed|prioritized|failed|completed|stalled|stalled-check|marker|pc)$/;

/** The reconcile scheduler's next job (`repeat:reconcile:<due ms>`), always there, its name changing. */
const RECONCILE_NEXT = /(:agg:repeat:reconcile:)\d+$/;

/** What Redis holds: its keys (less the queue's state containers) and memory. */
interface Footprint {
  readonly keys: string[];
  /** used_memory less the BullMQ event stream's (bounded by BullMQ's cap, measured apart). */
  readonly used: number;
  /** The event stream's length. */
  readonly events: number;
}

async function footprint(r: Redis, prefix: string): Promise<Footprint> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await r.scan(cursor, 'COUNT', 1000);
    cursor = next;
    // The reconcile job scheduler always holds its next job, named by the time it is due.
    keys.push(...batch.filter((k) => !QUEUE_STATE.test(k)).map((k) => k.replace(RECONCILE_NEXT, '$1<next>')));
  } while (cursor !== '0');
  const stream = `{${prefix}}:agg:events`;
  const used = Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);
  const streamBytes = ((await r.call('MEMORY', 'USAGE', stream, 'SAMPLES', '0')) as number | null) ?? 0;
  return { keys: keys.sort(), used: used - streamBytes, events: await r.xlen(stream) };
}

/**
 * The footprint once the queue is idle (no job active, waiting or delayed: a round's finalize job is still
 * being acknowledged when the round reads completed) and the key set has stopped changing.
 */
async function settledFootprint(r: Redis, prefix: string): Promise<Footprint> {
  const q = `{${prefix}}:agg`;
  let last: Footprint | undefined;
  const until = Date.now() + 30_000;
  for (;;) {
    // The reconciler's next run is always delayed (and sometimes waiting or active): not work of the plan.
    const jobs = [
      ...(await r.lrange(`${q}:active`, 0, -1)),
      ...(await r.lrange(`${q}:wait`, 0, -1)),
      ...(await r.zrange(`${q}:delayed`, 0, -1)),
    ];
    const busy = jobs.filter((id) => !id.startsWith('repeat:reconcile:')).length;
    const now = await footprint(r, prefix);
    if (busy === 0 && last && JSON.stringify(last.keys) === JSON.stringify(now.keys)) return now;
    if (Date.now() > until) return now;
    last = busy === 0 ? now : undefined;
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** `DELETE /v1/plans/{id}`; fails the test unless it answers 2xx. */
async function deletePlan(c: FaultCluster, id: string): Promise<void> {
  const res = await c.operator(`/v1/plans/${id}`, { method: 'DELETE' });
  if (res.status >= 300)
    throw new Error(`DELETE /v1/plans/${id} answered ${res.status}: ${await res.text()}`);
}

needs('redis-server')('soak', () => {
  test(`${CLIENTS} clients x ${ROUNDS} rounds, two workers: no 5xx, exact sums, Redis back at its baseline after DELETE`, async () => {
    redis = await startOwnRedis();
    client = redis.client();
    cluster = await startFaultCluster({
      redisUrl: redis.url,
      workers: 2,
      // Pending uploads may be a whole round, so that no upload is told BUSY (a 503).
      env: { MAX_PENDING_UPLOADS: String(CLIENTS) },
    });
    const c = cluster;
    const exchanges = new Exchanges();
    const options: ClientOptions = { servers: () => [c.url], exchanges, patienceMs: 240_000 };
    const schedule = (clients: number, rounds: number) => ({
      rounds,
      target_clients: clients,
      over_selection: 1,
      min_reports: clients,
      min_clients_in_aggregate: 10,
      selection_timeout_s: 600,
      reporting_deadline_s: 600,
    });

    // Warm-up: a small plan run to its end and deleted.
    const warm = await c.submit(vectorSumPlan(K, schedule(10, 1)));
    const devices = Array.from({ length: CLIENTS }, (_, i) => `d${i}`);
    await runClients({ population, round: 1, k: K, devices: devices.slice(0, 10), options });
    await c.waitCompleted(warm, 1);
    await deletePlan(c, warm);
    const base = await settledFootprint(client, c.prefix);

    const t0 = Date.now();
    const id = await c.submit(vectorSumPlan(K, schedule(CLIENTS, ROUNDS)));
    const wrong: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const run = await runClients({ population, round, k: K, devices, options, concurrency: 64 });
      const info = await c.waitCompleted(id, round, 240_000);
      if (run.accepted !== CLIENTS || info.aggregated_clients !== CLIENTS)
        wrong.push(`round ${round}: ${run.accepted} accepted, ${info.aggregated_clients} aggregated`);
      if (JSON.stringify(info.output) !== JSON.stringify({ total: run.total, count: CLIENTS }))
        wrong.push(`round ${round}: output ${JSON.stringify(info.output)}, expected total ${run.total}`);
    }
    console.log(
      `soak: ${CLIENTS} clients x ${ROUNDS} rounds in ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
        `answers ${JSON.stringify(exchanges.summary())}`,
    );
    expect(wrong).toEqual([]);
    expect(exchanges.serverErrors()).toEqual([]);
    expect((await c.operator(`/v1/plans/${id}`).then((r) => r.json())) as unknown).toMatchObject({
      status: 'completed',
    });

    await deletePlan(c, id);
    const after = await settledFootprint(client, c.prefix);
    expect(after.keys).toEqual(base.keys);
    console.log(
      `soak: used_memory less the event stream ${base.used} B before, ${after.used} B after; ` +
        `event stream ${base.events} then ${after.events} entries`,
    );
    expect(after.used).toBeLessThanOrEqual(base.used + MEMORY_SLACK);
    expect(after.events).toBeLessThanOrEqual(EVENTS_CAP + 1000);
    expect(c.deaths()).toEqual([]);
  }, 600_000);
});
