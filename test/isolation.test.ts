import type { PlanSummary, RoundInfo } from '../src/store/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { named, stateSumPlan } from './support/isolation-plans';
import { vectorSumPlan, vectorUpload } from './support/plans';
import { checkinRaw, uploadRaw } from './support/raw-client';

// Isolation of plan code against a real server: an API process and a worker process of the built CLI, with
// test fault injection on (plans named `fault-<kind>-<task>` break their isolate in that task).
const schedule = (rounds: number, clients: number) => ({
  rounds,
  target_clients: clients,
  over_selection: 1,
  min_reports: clients,
  selection_timeout_s: 300,
  reporting_deadline_s: 300,
});

describe('plan isolation', () => {
  let cluster: Cluster;
  let clientSeq = 0;
  beforeAll(async () => {
    cluster = await startCluster({
      workers: 1,
      env: {
        ISOLATE_TEST_FAULTS: '1',
        ISOLATE_TIMEOUT_MS: '2000',
        ISOLATE_MAX_WASM_MB: '128',
        MAX_ROUND_ATTEMPTS: '3',
      },
    });
  });
  afterAll(() => cluster?.stop());

  async function submit(plan: Record<string, unknown>): Promise<{ id: string; population: string }> {
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    return { id, population: (plan.client_data as { collection: string }).collection };
  }
  const plan = async (id: string) =>
    (await (await cluster.operator(`/v1/plans/${id}`)).json()) as PlanSummary;
  const rounds = async (id: string) =>
    ((await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as { rounds: RoundInfo[] }).rounds;
  const state = async (id: string) =>
    new Uint8Array(await (await cluster.operator(`/v1/plans/${id}/state`)).arrayBuffer());
  const attempt = (id: string, round: number, n: number, phases: RoundInfo['phase'][]) =>
    eventually(`round ${round}.${n} of ${id} to be ${phases.join('/')}`, async () => {
      const r = (await rounds(id)).find((x) => x.round === round && x.attempt === n);
      return r && phases.includes(r.phase) ? r : undefined;
    });
  /** One client checks in and uploads `values`; the upload's status. */
  async function client(population: string, values: Float32Array): Promise<number> {
    const a = await checkinRaw(cluster.url, population, `c${++clientSeq}`);
    if (!a) throw new Error(`no task in ${population}`);
    return (await uploadRaw(a, vectorUpload(values), { retryBusy: true })).status;
  }

  test('a plan that aborts its backend fails only its own rounds, then fails; a good plan beside it is exact', async () => {
    const good = await submit(vectorSumPlan(4, schedule(3, 3)));
    // Another size, hence another population: check-ins of one never land in the other.
    const bad = await submit(named(vectorSumPlan(5, schedule(3, 2)), 'fault-abort-fold'));
    for (let n = 1; n <= 3; n++) {
      // The bad plan's first upload of attempt n aborts the WASM backend of the isolate folding it.
      expect(await client(bad.population, new Float32Array(5).fill(1))).toBe(202);
      const failed = await attempt(bad.id, 1, n, ['failed', 'completed']);
      expect(failed.phase).toBe('failed');
      expect(failed.error).toMatch(/^fold: the backend faulted/);
      expect(failed.output).toBeNull();

      // Meanwhile the good plan's round n aggregates exactly, on the same worker and isolate pool.
      const values = [1, 2, 3].map((c) => Float32Array.from({ length: 4 }, (_, j) => c * 10 + j + n));
      for (const v of values) expect(await client(good.population, v)).toBe(202);
      const done = await attempt(good.id, n, 1, ['completed', 'failed']);
      expect(done).toMatchObject({ phase: 'completed', aggregated_clients: 3 });
      const total = values.reduce((s, v) => s + v.reduce((a, b) => a + b, 0), 0);
      expect(done.output).toEqual({ total, count: 3 });
    }
    // MAX_ROUND_ATTEMPTS is 3: the bad plan stops, with the reason.
    const stopped = await eventually('the bad plan to fail', async () => {
      const p = await plan(bad.id);
      return p.status === 'failed' ? p : undefined;
    });
    expect(stopped.error).toMatch(
      /round 1 failed 3 attempts \(MAX_ROUND_ATTEMPTS 3\); the last: fold: the backend faulted/,
    );
    expect((await rounds(bad.id)).map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect((await plan(good.id)).status).toBe('completed');
    expect((await fetch(`${cluster.url}/readyz`)).status).toBe(200);
  });

  test('a finalize that runs past ISOLATE_TIMEOUT_MS fails the round with the reason; the state is kept', async () => {
    const slow = await submit(named(vectorSumPlan(3, schedule(1, 2)), 'fault-hang-finalize'));
    const before = await state(slow.id);
    for (let c = 0; c < 2; c++) expect(await client(slow.population, new Float32Array(3).fill(c))).toBe(202);
    const failed = await attempt(slow.id, 1, 1, ['failed', 'completed']);
    expect(failed.phase).toBe('failed');
    expect(failed.error).toMatch(/^finalize: the evaluation took longer than 2000 ms/);
    expect(await state(slow.id)).toEqual(before);
    await attempt(slow.id, 1, 2, ['selecting']);
    await cluster.operator(`/v1/plans/${slow.id}/cancel`, { method: 'POST' });
  });

  test('a next state that is not finite fails the round and keeps the state; the next attempt completes', async () => {
    const poisoned = await submit(stateSumPlan(2, schedule(1, 2)));
    const before = await state(poisoned.id);
    // Two deltas of 3.4e38 sum to +Inf in float32: the state w would become Inf.
    for (let c = 0; c < 2; c++)
      expect(await client(poisoned.population, Float32Array.of(3.4e38, 1))).toBe(202);
    const failed = await attempt(poisoned.id, 1, 1, ['failed', 'completed']);
    expect(failed.phase).toBe('failed');
    expect(failed.error).toMatch(/non-finite value at S\/w\[0\]; the state is kept/);
    expect(await state(poisoned.id)).toEqual(before);

    await attempt(poisoned.id, 1, 2, ['selecting']);
    expect(await client(poisoned.population, Float32Array.of(1, 2))).toBe(202);
    expect(await client(poisoned.population, Float32Array.of(3, 4))).toBe(202);
    const done = await attempt(poisoned.id, 1, 2, ['completed', 'failed']);
    expect(done).toMatchObject({ phase: 'completed', output: { total: 10, count: 2 } });
    expect(await state(poisoned.id)).not.toEqual(before);
  });

  test('a round that cannot open (its prepare crashes the isolate) is recorded failed until the plan fails', async () => {
    const p = await submit(named(vectorSumPlan(8, schedule(2, 1)), 'fault-crash-materials-from2'));
    expect(await client(p.population, new Float32Array(8).fill(2))).toBe(202);
    const done = await attempt(p.id, 1, 1, ['completed', 'failed']);
    expect(done).toMatchObject({ phase: 'completed', output: { total: 16, count: 1 } });
    const stopped = await eventually('the plan to fail', async () => {
      const s = await plan(p.id);
      return s.status === 'failed' ? s : undefined;
    });
    expect(stopped.error).toMatch(
      /^round 2 failed 3 attempts .*opening the round: materials: the isolate exited/,
    );
    const r2 = (await rounds(p.id)).filter((r) => r.round === 2);
    expect(r2.map((r) => [r.attempt, r.phase])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'failed'],
    ]);
  });

  test('a plan whose initialize crashes its isolate is refused at submit with 422 EVAL_FAULT', async () => {
    const res = await cluster.operator('/v1/plans', {
      method: 'POST',
      body: JSON.stringify(named(vectorSumPlan(6, schedule(1, 2)), 'fault-crash-initialize')),
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('EVAL_FAULT');
    // The API process is untouched.
    expect((await fetch(`${cluster.url}/readyz`)).status).toBe(200);
    await submit(vectorSumPlan(7, schedule(1, 1)));
  });
});
