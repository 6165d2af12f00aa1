import { bundleLeaves, writeBundle } from '../src/codec';
import type { TffType } from '../src/compute/types';
import type { RoundInfo } from '../src/store/types';
import { SecAggClientRound } from '../src/secagg/protocol-client';
import type { SecAggStep } from '../src/secagg/protocol';
import { maskedUploadType } from '../src/secagg/upload-type';
import { HELD_POLLS_PER_HOLDER } from '../src/api/held-polls';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { apiMetric } from './support/metrics';
import { assignedRaw, uploadRaw, type RawAssignment } from './support/raw-client';
import { threeSumsOf, threeSumsPlan, THREE_SUMS } from './support/secure-plans';

// Hostile and confused messages at every step of a SecAgg round, over raw HTTP: each gets a 4xx with its
// code, nothing of it is stored, and the honest exchange that follows still gives the exact sums.

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ workers: 1 });
});
afterAll(() => cluster?.stop());

type Task = RawAssignment & { secure_aggregation: { url: string } };

async function call(
  t: Task,
  path: string,
  body?: unknown,
  token = t.token,
): Promise<{ status: number; code?: string; json: unknown }> {
  const res = await fetch(`${t.secure_aggregation.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'x-device-credential': t.device!,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const json = (await res.json()) as { error?: { code: string } };
  expect(res.status).toBeLessThan(500);
  return { status: res.status, code: json.error?.code, json };
}

const step = async (t: Task) => (await call(t, '')).json as SecAggStep;

async function stepOf<K extends SecAggStep['step']>(
  t: Task,
  want: K,
): Promise<Extract<SecAggStep, { step: K }>> {
  return eventually(`step ${want}`, async () => {
    const s = await step(t);
    return s.step === want ? (s as Extract<SecAggStep, { step: K }>) : undefined;
  });
}

test('every step refuses what does not belong to it, and the round still completes exactly', async () => {
  const population = `secagg-hostile-${process.pid}`;
  const plan = threeSumsPlan(
    population,
    { rounds: 1, target_clients: 3, over_selection: 1, min_reports: 3, reporting_deadline_s: 300 },
    { protocol: 'secagg+', degree: 3, threshold: 2 },
  );
  const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const clientPlan = (await (await fetch(`${cluster.url}/v1/plans/${id}/client-plan`)).json()) as {
    upload_type: TffType;
  };
  const masked = maskedUploadType(clientPlan.upload_type);
  const leaves = bundleLeaves(masked);
  const bundle = (lanes: Int32Array[]) =>
    writeBundle(
      leaves.map((l, k) => ({ name: l.name, dtype: 'int32' as const, shape: [2, 1], data: lanes[k]! })),
    );
  const tasks = [] as Task[];
  for (let i = 0; i < 3; i++)
    tasks.push((await assignedRaw(cluster.url, population, `hostile-${i}`)) as Task);
  const [a, b] = tasks as [Task, Task, Task];
  expect(a.secure_aggregation.url).toMatch(/\/v1\/tasks\/[A-Za-z0-9_-]{22}\/secagg$/);

  // Tokens: none, forged, another task's.
  expect(await call(a, '', undefined, 'nope')).toMatchObject({ status: 401, code: 'TOKEN_INVALID' });
  expect(await call(a, '', undefined, b.token)).toMatchObject({ status: 403, code: 'TOKEN_TASK_MISMATCH' });

  // R0: malformed keys, a low-order key, other keys the second time.
  expect(await step(a)).toEqual({ step: 'advertise' });
  expect(await call(a, '/keys', { keys: { c: 'short', s: 'short' } })).toMatchObject({
    status: 400,
    code: 'REQUEST_INVALID',
  });
  expect(await call(a, '/keys', '{"keys":')).toMatchObject({ status: 400 });
  const zero = 'A'.repeat(43); // 32 zero bytes: a point of low order
  expect(await call(a, '/keys', { keys: { c: zero, s: zero } })).toMatchObject({
    status: 400,
    code: 'SECAGG_BAD_MESSAGE',
  });
  const rounds = tasks.map(() => new SecAggClientRound());
  expect(await call(a, '/keys', rounds[0]!.advertise())).toMatchObject({ status: 200, json: { index: 0 } });
  expect(await call(a, '/keys', new SecAggClientRound().advertise())).toMatchObject({
    status: 409,
    code: 'SECAGG_KEYS_CHANGED',
  });
  // Shares before the cohort is fixed, an upload before the exchange is over.
  expect(await call(a, '/shares', { shares: [{ to: 0, ct: 'x'.repeat(136) }] })).toMatchObject({
    status: 409,
    code: 'SECAGG_PHASE',
  });
  // A well-formed masked bundle, but before the key exchange is over.
  const zeros = () => Int32Array.of(0, 0);
  expect(await uploadRaw(a, bundle([zeros(), zeros(), zeros()]))).toMatchObject({
    status: 409,
    code: 'SECAGG_TOO_EARLY',
  });
  for (let i = 1; i < 3; i++)
    expect((await call(tasks[i]!, '/keys', rounds[i]!.advertise())).status).toBe(200);

  // R1: recipients other than the neighbourhood, an envelope of the wrong size, then the real ones; again.
  const r1 = await Promise.all(tasks.map((t) => stepOf(t, 'share')));
  expect(r1[0]).toMatchObject({ index: 0, n: 3, degree: 3, threshold: 2 });
  const shares = await Promise.all(r1.map((m, i) => rounds[i]!.shareKeys(m)));
  expect(await call(a, '/shares', { shares: shares[0]!.shares.slice(1) })).toMatchObject({ status: 400 });
  const resized = shares[0]!.shares.map((s) => ({ ...s, ct: s.ct.slice(4) }));
  expect(await call(a, '/shares', { shares: resized })).toMatchObject({
    status: 400,
    code: 'SECAGG_BAD_MESSAGE',
  });
  for (let i = 0; i < 3; i++) expect((await call(tasks[i]!, '/shares', shares[i])).status).toBe(200);
  expect(await call(a, '/shares', shares[0])).toMatchObject({ status: 409, code: 'SECAGG_ALREADY_SENT' });

  // R2: an unmasked bundle, a residue past its modulus, then the masked inputs.
  const r2 = await Promise.all(tasks.map((t) => stepOf(t, 'upload')));
  const sums = [250, 17, 99];
  const uploads = r2.map((m, i) => {
    const x = threeSumsOf(sums[i]!);
    const out = rounds[i]!.maskInput(
      m,
      { bitwidth: [[x.v1]], max_input: [[x.v2]], modulus: [[x.v3]] },
      m.secure_params,
      m.n_max,
    );
    if (out.status !== 'masked') throw new Error(out.error.message);
    return bundle([out.lanes.bitwidth[0]!, out.lanes.max_input[0]!, out.lanes.modulus[0]!]);
  });
  expect(
    await uploadRaw(
      a,
      writeBundle(
        bundleLeaves(clientPlan.upload_type).map((l) => ({
          name: l.name,
          dtype: 'int32' as const,
          shape: [],
          data: Int32Array.of(1),
        })),
      ),
    ),
  ).toMatchObject({ status: 400, code: 'BUNDLE_TYPE_MISMATCH' });
  expect(
    await uploadRaw(a, bundle([Int32Array.of(2 ** 30, 0), Int32Array.of(0, 0), Int32Array.of(0, 0)])),
  ).toMatchObject({
    status: 400,
    code: 'SECURE_SUM_OUT_OF_RANGE',
  });
  for (let i = 0; i < 3; i++) expect((await uploadRaw(tasks[i]!, uploads[i]!)).status).toBe(202);

  // R3: a share of the wrong kind, one missing, one of the wrong size; then the real ones; again.
  const r3 = await Promise.all(tasks.map((t) => stepOf(t, 'unmask')));
  expect(r3[0]).toEqual({ step: 'unmask', survivors: [0, 1, 2], dropped: [] });
  const answers = r3.map((m, i) => rounds[i]!.unmask(m));
  const flipped = answers[0]!.shares.map((s, k) => (k === 0 ? { ...s, kind: 's' as const } : s));
  expect(await call(a, '/unmask', { shares: flipped })).toMatchObject({
    status: 400,
    code: 'SECAGG_WRONG_SHARE',
  });
  expect(await call(a, '/unmask', { shares: answers[0]!.shares.slice(1) })).toMatchObject({
    status: 400,
    code: 'SECAGG_WRONG_SHARE',
  });
  const short = answers[0]!.shares.map((s) => ({ ...s, share: s.share.slice(8) }));
  expect(await call(a, '/unmask', { shares: short })).toMatchObject({
    status: 400,
    code: 'SECAGG_BAD_MESSAGE',
  });
  for (let i = 0; i < 3; i++) expect((await call(tasks[i]!, '/unmask', answers[i])).status).toBe(200);
  expect(await call(a, '/unmask', answers[0])).toMatchObject({ status: 409, code: 'SECAGG_ALREADY_SENT' });

  const done = await eventually('the round to complete', async () => {
    const { rounds: all } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
      rounds: RoundInfo[];
    };
    const r = all.find((x) => x.round === 1);
    if (r?.phase === 'failed') throw new Error(`failed: ${r.error}`);
    return r?.phase === 'completed' ? r : undefined;
  });
  const x = sums.map(threeSumsOf);
  expect(done.output).toEqual({
    v1: x.reduce((s, v) => s + v.v1, 0),
    v2: x.reduce((s, v) => s + v.v2, 0),
    v3: x.reduce((s, v) => s + v.v3, 0) % THREE_SUMS.modulus,
  });
  expect(done.secure_aggregation).toEqual({ protocol: 'secagg+', advertised: 3, shared: 3, unmasked: 3 });
  expect(await step(a)).toEqual({ step: 'done' });
}, 180_000);

test('a held poll (wait) answers as soon as the exchange moves on, and asks again at once when held to its end', async () => {
  const population = `secagg-held-${process.pid}`;
  const plan = threeSumsPlan(
    population,
    { rounds: 1, target_clients: 2, over_selection: 1, min_reports: 2, reporting_deadline_s: 300 },
    { protocol: 'secagg+', degree: 1, threshold: 1 },
  );
  const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
  expect(created.status).toBe(201);
  const a = (await assignedRaw(cluster.url, population, 'held-a')) as Task;
  const b = (await assignedRaw(cluster.url, population, 'held-b')) as Task;
  // A query wait that is not a count is refused.
  expect(await call(a, '?wait=soon')).toMatchObject({ status: 400, code: 'REQUEST_INVALID' });
  // Without keys there is nothing to wait for: advertise, held or not.
  expect((await call(a, '?wait=5')).json).toEqual({ step: 'advertise' });
  expect((await call(a, '/keys', new SecAggClientRound().advertise())).status).toBe(200);
  // a has advertised, b not: a waits. Held for 1 s with nothing moving, it is told to ask again at once.
  expect((await call(a, '?wait=1')).json).toEqual({ step: 'wait', retry_after_ms: 0 });
  // Not held, it is told to come back later, as clients that do not hold polls are.
  expect((await call(a, '')).json).toEqual({ step: 'wait', retry_after_ms: 500 });
  // Held for up to 30 s: b's advertisement ends selection, and each held poll answers with a's share step
  // (a poll that timed out would answer wait). One task holds at most HELD_POLLS_PER_HOLDER at once: the
  // next is answered at once, as an unheld poll is, and counted.
  const unheld = () => apiMetric(cluster.url, `roundhouse_polls_unheld_total{bound="holder"}`);
  const unheld0 = await unheld();
  // Five polls of the task at once: four are held, whichever comes last is answered at once.
  let answered = 0;
  const polls = Array.from({ length: HELD_POLLS_PER_HOLDER + 1 }, () =>
    call(a, '?wait=30').then((r) => {
      answered += 1;
      return r;
    }),
  );
  expect((await Promise.race(polls)).json).toEqual({ step: 'wait', retry_after_ms: 500 });
  expect(answered).toBe(1);
  expect(await unheld()).toBe(unheld0 + 1);
  const held = await apiMetric(cluster.url, 'roundhouse_held_polls');
  expect(held).toBeGreaterThanOrEqual(HELD_POLLS_PER_HOLDER);
  expect((await call(b, '/keys', new SecAggClientRound().advertise())).status).toBe(200);
  const all = (await Promise.all(polls)).map((r) => r.json as { step: string });
  expect(all.filter((j) => j.step === 'share' && (j as { n?: number }).n === 2)).toHaveLength(
    HELD_POLLS_PER_HOLDER,
  );
  // Released once answered.
  expect(await apiMetric(cluster.url, 'roundhouse_held_polls')).toBeLessThanOrEqual(
    held - HELD_POLLS_PER_HOLDER,
  );
});
