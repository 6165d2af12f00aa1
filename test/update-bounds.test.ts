import { bundleLeaves, decodeBundle, writeBundle, type BundleTensor } from '../src/codec';
import { initBackend } from '../src/compute/backend';
import type { TffType } from '../src/compute/types';
import { tensorsOf } from '../src/compute/value';
import type { Plan } from '../src/generated/plan';
import { checkPlan, type CheckedPlan } from '../src/plan/validate';
import { PLAN_LIBRARY } from '../src/plans';
import type { RoundInfo } from '../src/store/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { checkinRaw, uploadRaw, type RawAssignment } from './support/raw-client';

// The three poisoning attacks of issue 7 against a real server (API and one worker process, real Redis):
// an int32 sum pushed to 2^31-1, a FedAvg claim of ~2^31 examples, and FedAvg deltas of 3.4e38. Uploads
// are crafted bytes, as an attacker would send them.
const INT32_MAX = 2 ** 31 - 1;

describe('updates cannot poison beyond their weight', () => {
  let cluster: Cluster;
  let populations = 0;
  beforeAll(async () => {
    await initBackend();
    cluster = await startCluster({ workers: 1 });
  });
  afterAll(() => cluster?.stop());

  /** Submits a plan under a population of its own; its id and checked form. */
  async function submit(plan: Plan): Promise<{ id: string; population: string; checked: CheckedPlan }> {
    const population = `poison-${process.pid}-${++populations}`;
    const body: Plan = { ...plan, population };
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(201);
    return { id: ((await res.json()) as { id: string }).id, population, checked: checkPlan(body) };
  }
  async function checkin(population: string, client: string): Promise<RawAssignment> {
    const a = await checkinRaw(cluster.url, population, client);
    if (!a) throw new Error(`${client} got no task`);
    return a;
  }
  async function upload(a: RawAssignment, bytes: Uint8Array): Promise<{ status: number; code?: string }> {
    const { status, code } = await uploadRaw(a, bytes);
    return { status, code };
  }
  /** Uploads `bytes` for `a` and expects a plain 202. */
  async function expectAccepted(a: RawAssignment, bytes: Uint8Array): Promise<void> {
    expect(await upload(a, bytes)).toEqual({ status: 202, code: undefined });
  }
  async function round(id: string, done: (r: RoundInfo) => boolean): Promise<RoundInfo> {
    return eventually(`plan ${id}'s round`, async () => {
      const res = await cluster.operator(`/v1/plans/${id}/rounds`);
      return ((await res.json()) as { rounds: RoundInfo[] }).rounds.find(done);
    });
  }
  async function state(id: string, S: TffType): Promise<Float32Array[]> {
    const res = await cluster.operator(`/v1/plans/${id}/state`);
    expect(res.status).toBe(200);
    const value = decodeBundle(new Uint8Array(await res.arrayBuffer()), S, { requireFinite: false });
    return tensorsOf(value).map((t) => Float32Array.from(t.dataSync()));
  }

  /** An upload of work's result type with each U leaf filled by `fill(path)`; the Vs are empty here. */
  function crafted(checked: CheckedPlan, fill: (path: string) => number): Uint8Array {
    const type = checked.signatures.work!.result;
    const tensors: BundleTensor[] = bundleLeaves(type).map(({ name, leaf }) => {
      const shape = leaf.type.shape.map((d) => d ?? 1);
      const n = shape.reduce((a, b) => a * b, 1);
      const v = fill(leaf.path.slice(1).join('/'));
      const data = leaf.type.dtype === 'float32' ? new Float32Array(n).fill(v) : new Int32Array(n).fill(v);
      return { name, dtype: leaf.type.dtype, shape, data };
    });
    return writeBundle(tensors);
  }

  const sumPlan = (boundMode: 'clip' | 'reject', targetClients: number): Plan =>
    PLAN_LIBRARY['federated-sum']!.build({
      targetClients,
      maxValue: 100,
      minValue: 0,
      boundMode,
      selectionTimeout: 300,
      reportingDeadline: 300,
    });

  test('reject: an upload of 2^31-1 to a sum is refused, naming the bound, and 10 + 10 stays 20', async () => {
    const { id, population, checked } = await submit(sumPlan('reject', 2));
    const [attacker, a, b] = [
      await checkin(population, 'attacker'),
      await checkin(population, 'a'),
      await checkin(population, 'b'),
    ];
    const res = await fetch(attacker.upload_url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${attacker.token}`,
        'content-type': 'application/octet-stream',
        'x-device-credential': attacker.device!,
      },
      body: Buffer.from(crafted(checked, () => INT32_MAX)),
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; details: { message: string }[] } };
    expect(error.code).toBe('UPDATE_OUT_OF_BOUNDS');
    expect(error.details[0]!.message).toMatch(
      /2147483647, outside \[0, 100\] \(\/update_bounds\/ranges\/0\)/,
    );
    // Each task's own upload: the duplicate check is per task, so both may send the same bytes.
    const ten = crafted(checked, () => 10);
    await expectAccepted(a, ten);
    await expectAccepted(b, ten);
    const done = await round(id, (r) => r.phase === 'completed');
    expect(done.output).toEqual({ sum: 20 });
    // The attacker's one upload, refused at the API; the worker refuses nothing more.
    expect(done.rejected).toBe(1);
  });

  test('clip: an upload of 2^31-1 counts as the declared maximum; its honest retry is a duplicate', async () => {
    const { id, population, checked } = await submit(sumPlan('clip', 3));
    const [attacker, a, b] = [
      await checkin(population, 'attacker'),
      await checkin(population, 'a'),
      await checkin(population, 'b'),
    ];
    const evil = crafted(checked, () => INT32_MAX);
    await expectAccepted(attacker, evil);
    // The duplicate check hashes the bytes as sent, not the clipped bytes stored.
    expect(await upload(attacker, evil)).toEqual({ status: 409, code: 'UPLOAD_DUPLICATE' });
    // Each task's own upload: the duplicate check is per task, so both may send the same bytes.
    const ten = crafted(checked, () => 10);
    await expectAccepted(a, ten);
    await expectAccepted(b, ten);
    const done = await round(id, (r) => r.phase === 'completed');
    expect(done.output).toEqual({ sum: 120 });
  });

  test('without bounds, a sum that would wrap fails the round with the overflow as its reason', async () => {
    const { update_bounds: _bounds, ...unbounded } = sumPlan('clip', 3);
    const { id, population, checked } = await submit({
      ...unbounded,
      schedule: { ...unbounded.schedule, rounds: 1 },
    });
    const tasks = [
      await checkin(population, 'attacker'),
      await checkin(population, 'a'),
      await checkin(population, 'b'),
    ];
    const [max, ten] = [crafted(checked, () => INT32_MAX), crafted(checked, () => 10)];
    await expectAccepted(tasks[0]!, max);
    await expectAccepted(tasks[1]!, ten);
    await expectAccepted(tasks[2]!, ten);
    const failed = await round(id, (r) => r.round === 1 && r.attempt === 1 && r.phase === 'failed');
    expect(failed.output ?? null).toBeNull();
    expect(failed.error).toMatch(/int32 overflow|EVAL_INT_OVERFLOW/);
  });

  const fedAvgPlan = (options: Record<string, unknown>): Plan =>
    PLAN_LIBRARY.fedavg!.build({
      layers: [4, 2],
      rounds: 2,
      targetClients: 2,
      selectionTimeout: 300,
      reportingDeadline: 300,
      ...options,
    });

  test('FedAvg --max-examples: a claim of ~2^31 examples moves the weights by one capped client share', async () => {
    // maxNorm 1 and maxExamples 10: the attacker's weighted delta is scaled to norm 10, then averaged over
    // a total weight of 20 (its capped 10 and the honest client's 10), so the model moves by 0.5 in norm.
    const { id, population, checked } = await submit(fedAvgPlan({ maxExamples: 10, maxNorm: 1 }));
    const S = checked.types.S;
    const before = await state(id, S);
    const [attacker, honest] = [await checkin(population, 'attacker'), await checkin(population, 'honest')];
    // The attack of issue 7: every weight's delta -100 x 2^31 with 2^31-1 examples moved each weight by +100.
    const claim = (path: string) =>
      path === 'examples' ? INT32_MAX : path === 'loss_sum' ? 1 : -100 * INT32_MAX;
    await expectAccepted(attacker, crafted(checked, claim));
    const zero = (path: string) => (path === 'examples' ? 10 : 0);
    await expectAccepted(honest, crafted(checked, zero));
    const done = await round(id, (r) => r.round === 1 && r.phase === 'completed');
    expect(done.output).toMatchObject({ examples: 20, clients: 2 });
    const after = await state(id, S);
    // The model is the first two tensors of S (w0, b0); round and optimizer state follow.
    let squares = 0;
    for (let k = 0; k < 2; k++) {
      after[k]!.forEach((v, i) => {
        const moved = v - before[k]![i]!;
        expect(moved).toBeGreaterThan(0);
        squares += moved * moved;
      });
    }
    expect(Math.sqrt(squares)).toBeLessThanOrEqual(0.5 + 1e-5);
    expect(Math.sqrt(squares)).toBeGreaterThan(0.5 - 1e-4);
  });

  test('FedAvg --weighting uniform: every client weighs 1, whatever it claims', async () => {
    const { id, population, checked } = await submit(fedAvgPlan({ weighting: 'uniform', maxNorm: 1 }));
    const S = checked.types.S;
    const before = await state(id, S);
    const [attacker, honest] = [await checkin(population, 'attacker'), await checkin(population, 'honest')];
    const claim = (path: string) => (path === 'examples' ? INT32_MAX : path === 'loss_sum' ? 1 : -1e30);
    await expectAccepted(attacker, crafted(checked, claim));
    await expectAccepted(
      honest,
      crafted(checked, (p) => (p === 'examples' ? 5 : 0)),
    );
    await round(id, (r) => r.round === 1 && r.phase === 'completed');
    const after = await state(id, S);
    let squares = 0;
    for (let k = 0; k < 2; k++) after[k]!.forEach((v, i) => (squares += (v - before[k]![i]!) ** 2));
    // Norm 1 (the bound, weight 1) over 2 clients.
    expect(Math.sqrt(squares)).toBeCloseTo(0.5, 4);
  });

  test('FedAvg: deltas of 3.4e38 from two tasks are clipped by the norm bound and the state stays finite', async () => {
    // The library defaults: max-norm 100, max-examples 1000.
    const { id, population, checked } = await submit(fedAvgPlan({}));
    const S = checked.types.S;
    const tasks = [await checkin(population, 'x'), await checkin(population, 'y')];
    const huge = (path: string) => (path === 'examples' ? 1 : path === 'loss_sum' ? 3.4e38 : 3.4e38);
    for (const t of tasks) await expectAccepted(t, crafted(checked, huge));
    const done = await round(id, (r) => r.round === 1 && r.phase === 'completed');
    expect(done.output).toMatchObject({ examples: 2, clients: 2 });
    expect(Number.isFinite((done.output as { train_loss: number }).train_loss)).toBe(true);
    const after = await state(id, S);
    expect(after.every((t) => t.every(Number.isFinite))).toBe(true);
    // The next round opens and works from that state.
    await round(id, (r) => r.round === 2);
  });
});
