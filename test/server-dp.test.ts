import { bundleLeaves, decodeBundle, writeBundle, type BundleTensor } from '../src/codec';
import { initBackend } from '../src/compute/backend';
import { tensorsOf } from '../src/compute/value';
import { epsilonAfter } from '../src/dp/accountant';
import type { Plan } from '../src/generated/plan';
import { checkPlan, type CheckedPlan } from '../src/plan/validate';
import type { PlanSummary, RoundInfo } from '../src/store/types';
import { RoundhouseClient } from '../src/client/client';
import { MemoryExampleStore } from '../src/client/example-store';
import { buildDpTestPlan, buildSecureDpTestPlan } from './support/dp-plans';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { assignedRaw, uploadRaw, type RawAssignment } from './support/raw-client';

// Differential privacy through a real server (API, one worker process, real Redis): hostile records are
// clipped by the server, noise is added, the epsilon spent is stored with each round and shown by the API,
// `roundhouse status` data and the metrics, adaptive clipping reaches clients through the broadcast, and a
// plan stops at its budget with the reason.
describe('differential privacy on the server', () => {
  let cluster: Cluster;
  let populations = 0;
  beforeAll(async () => {
    await initBackend();
    cluster = await startCluster({ workers: 1 });
  });
  afterAll(() => cluster?.stop());

  async function submit(plan: Plan): Promise<{ id: string; population: string; checked: CheckedPlan }> {
    const population = `dp-${process.pid}-${++populations}`;
    const body: Plan = { ...plan, population };
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(201);
    return { id: ((await res.json()) as { id: string }).id, population, checked: checkPlan(body) };
  }
  async function planOf(id: string): Promise<PlanSummary> {
    return (await (await cluster.operator(`/v1/plans/${id}`)).json()) as PlanSummary;
  }
  async function rounds(id: string): Promise<RoundInfo[]> {
    return ((await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as { rounds: RoundInfo[] })
      .rounds;
  }
  /** An upload whose record is `record` (and indicator `indicator`), as an attacker would craft it. */
  function crafted(checked: CheckedPlan, record: number[], indicator = 0.5): Uint8Array {
    const type = checked.signatures.work!.result;
    const tensors: BundleTensor[] = bundleLeaves(type).map(({ name, leaf }) => {
      const path = leaf.path.slice(1).join('/');
      const data = Float32Array.from(path === 'record' ? record : [indicator]);
      return { name, dtype: 'float32', shape: leaf.type.shape.map((d) => d ?? 1), data };
    });
    return writeBundle(tensors);
  }
  async function clipInBroadcast(
    a: RawAssignment & { broadcast_url?: string },
    checked: CheckedPlan,
  ): Promise<number> {
    const res = await fetch(a.broadcast_url!, { headers: { authorization: `Bearer ${a.token}` } });
    expect(res.status).toBe(200);
    const C = decodeBundle(new Uint8Array(await res.arrayBuffer()), checked.types.C);
    return tensorsOf(C)[0]!.dataSync()[0]!;
  }

  it('clips hostile records, adds noise, charges each round and stops at the budget', async () => {
    const z = 0.8;
    const delta = 1e-5;
    const a = { samplingRate: 1, noiseMultiplier: z, delta };
    const e = [1, 2, 3, 4].map((n) => epsilonAfter(n, a).epsilon);
    const { id, population, checked } = await submit(
      buildDpTestPlan({
        rounds: 10,
        targetClients: 2,
        schedule: { over_selection: 1, selection_timeout_s: 300, reporting_deadline_s: 300 },
        dp: { clip: { norm: 1 }, noise_multiplier: z, target: { epsilon: (e[2]! + e[3]!) / 2, delta } },
      }),
    );
    expect((await planOf(id)).dp).toMatchObject({ epsilon: 0, rounds: 0, clip: 1, noise_multiplier: z });
    for (let round = 1; round <= 3; round++) {
      const tasks = [
        await assignedRaw(cluster.url, population, `r${round}-a`),
        await assignedRaw(cluster.url, population, `r${round}-b`),
      ];
      expect(tasks.map((t) => t.round)).toEqual([round, round]);
      expect(await clipInBroadcast(tasks[0]!, checked)).toBe(1);
      // A record of norm 1000: the server scales it to norm 1 before anything sums it.
      for (const t of tasks) expect((await uploadRaw(t, crafted(checked, [1000, 0, 0, 0]))).status).toBe(202);
      const done = await eventually(`round ${round} completed`, async () =>
        (await rounds(id)).find((r) => r.round === round && r.phase === 'completed'),
      );
      const record = (done.output as { record: number[] }).record;
      // Two clipped records sum to 2 in the first coordinate; the noise has std 0.8 (6 sigma either side).
      expect(Math.abs(record[0]! - 2)).toBeLessThan(6 * z);
      expect(done.dp).toEqual({ clip: 1, epsilon: expect.closeTo(e[round - 1]!, 9) as number, next_clip: 1 });
    }
    const stopped = await eventually('the plan stopped at its budget', async () => {
      const p = await planOf(id);
      return p.status === 'completed' ? p : undefined;
    });
    expect(stopped.reason).toMatch(/^privacy budget: round 4 would take epsilon to .* past the target/);
    expect(stopped.dp).toMatchObject({ rounds: 3, epsilon: expect.closeTo(e[2]!, 9) as number });
    expect((await rounds(id)).map((r) => r.round)).toEqual([1, 2, 3]);
    const metrics = await (await fetch(`${cluster.url}/metrics`)).text();
    const spent = new RegExp(`roundhouse_plan_dp_epsilon\\{plan="${id}",of="spent"\\} ([0-9.e+-]+)`).exec(
      metrics,
    );
    expect(Number(spent?.[1])).toBeCloseTo(e[2]!, 6);
  });

  it('sends each round its adaptive clip through the broadcast', async () => {
    const { id, population, checked } = await submit(
      buildDpTestPlan({
        rounds: 2,
        targetClients: 2,
        schedule: { over_selection: 1, selection_timeout_s: 300, reporting_deadline_s: 300 },
        dp: {
          clip: {
            adaptive: {
              initial_norm: 0.5,
              learning_rate: 0.2,
              target_quantile: 0.5,
              clipped_count_stddev: 1,
            },
          },
          noise_multiplier: 0.5,
          target: { epsilon: 100, delta: 1e-5 },
        },
      }),
    );
    const clips: number[] = [];
    for (let round = 1; round <= 2; round++) {
      const tasks = [
        await assignedRaw(cluster.url, population, `ad${round}-a`),
        await assignedRaw(cluster.url, population, `ad${round}-b`),
      ];
      clips.push(await clipInBroadcast(tasks[0]!, checked));
      // Both records are over the clip: an honest client says -0.5; the server clips a lying 7 to 0.5.
      expect((await uploadRaw(tasks[0]!, crafted(checked, [5, 0, 0, 0], -0.5))).status).toBe(202);
      expect((await uploadRaw(tasks[1]!, crafted(checked, [5, 0, 0, 0], 7))).status).toBe(202);
      await eventually(`round ${round} completed`, async () =>
        (await rounds(id)).find((r) => r.round === round && r.phase === 'completed'),
      );
    }
    const [r1, r2] = await rounds(id);
    expect(clips[0]).toBeCloseTo(0.5, 6);
    expect(r1!.dp!.clip).toBe(0.5);
    expect(r2!.dp!.clip).toBe(r1!.dp!.next_clip);
    expect(clips[1]).toBeCloseTo(r1!.dp!.next_clip!, 5);
    // b is the noisy unclipped fraction (true value 0.5 with the lie clipped), in [0, 1].
    expect(r1!.dp!.unclipped_fraction).toBeGreaterThanOrEqual(0);
    expect(r1!.dp!.unclipped_fraction).toBeLessThanOrEqual(1);
    expect(r1!.dp!.next_clip).toBeCloseTo(0.5 * Math.exp(-0.2 * (r1!.dp!.unclipped_fraction! - 0.5)), 9);
  });

  it('adds the noise to the unmasked sum of a secure record (SecAgg+, SDK clients)', async () => {
    const scale = 1000;
    const z = 0.01;
    const { id, population } = await submit(
      buildSecureDpTestPlan({
        scale,
        rounds: 2,
        targetClients: 3,
        protocol: 'secagg+',
        schedule: { over_selection: 1, min_reports: 3, selection_timeout_s: 300, reporting_deadline_s: 600 },
        dp: { clip: { norm: 1 }, noise_multiplier: z, target: { delta: 1e-5 } },
      }),
    );
    const norms = [0.5, 0.75, 4];
    for (let round = 1; round <= 2; round++) {
      const outcomes = await Promise.all(
        norms.map((n) =>
          new RoundhouseClient({
            server: cluster.url,
            population,
            store: new MemoryExampleStore({ norms: { count: 1, leaves: [Float32Array.of(n)] } }),
          }).runOnce(),
        ),
      );
      expect(outcomes.map((o) => o.kind)).toEqual(['completed', 'completed', 'completed']);
      const done = await eventually(`round ${round} completed`, async () =>
        (await rounds(id)).find((r) => r.round === round && r.phase === 'completed'),
      );
      expect(done.secure_aggregation).toMatchObject({ protocol: 'secagg+', unmasked: 3 });
      const out = done.output as { record: number[]; clients: number };
      // The clients clip 4 to 1: the sum is 2.25; the noise has std 0.01 x (1000 + 1) / 1000 units.
      expect(out.clients).toBe(3);
      expect(Math.abs(out.record[0]! - 2.25)).toBeLessThan(6 * z * 1.001);
      expect(done.dp).toEqual({ clip: 1, epsilon: expect.any(Number) as number, next_clip: 1 });
    }
    expect((await planOf(id)).dp).toMatchObject({ rounds: 2 });
  });

  it('refuses a plan whose first round is over its budget, with the reason', async () => {
    const plan = buildDpTestPlan({
      dp: { clip: { norm: 1 }, noise_multiplier: 0.3, target: { epsilon: 0.5, delta: 1e-5 } },
    });
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { code: string; details: { path: string }[] } };
    expect(body.error.code).toBe('PLAN_OUT_OF_BOUNDS');
    expect(body.error.details[0]!.path).toBe('/dp/target/epsilon');
  });
});
