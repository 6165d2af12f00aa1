import sumPlan from '../../test/fixtures/sum-plan.json';
import { named, stateSumPlan } from '../../test/support/isolation-plans';
import { vectorUpload } from '../../test/support/plans';
import { bundleLeaves, writeBundle } from '../codec';
import { loadConfig, type IsolateConfig } from '../config';
import { AppError } from '../errors';
import { createLogger } from '../log/logger';
import { checkPlan } from '../plan/validate';
import type { PlanEvaluator, PlanRef } from './contract';
import { IsolatePool } from './isolate-pool';
import { LocalEvaluator } from './local-evaluator';

// Real worker-thread isolates from dist/ (`npm test` builds first), with small limits so that faults come
// quickly; test fault injection is on (plans named `fault-<kind>-<task>`).
const base = loadConfig({});
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const isolates: IsolateConfig = {
  poolSize: 2,
  // Generous: a good task queued behind a fault, on a fresh isolate of a loaded machine, must fit in it.
  timeoutMs: 10_000,
  maxHeapMb: 64,
  maxWasmMb: 64,
  testFaults: true,
};
const pools: IsolatePool[] = [];
const pool = (over: Partial<IsolateConfig> = {}, entry?: string) => {
  const p = new IsolatePool({
    config: { ...isolates, ...over },
    limits: base.limits,
    log,
    ...(entry ? { entry } : {}),
  });
  pools.push(p);
  return p;
};
afterAll(() => Promise.all(pools.map((p) => p.close())));

const params = { bitwidth: [], max_input: [], modulus: [] };
let seq = 0;
const ref = (document: unknown): PlanRef => ({ id: `p${++seq}`, document });

/** A sum-plan upload: work's result `<U = <sum>, <>, <>, <>>`. */
function sumUpload(x: number): Uint8Array {
  const uploadType = checkPlan(sumPlan, base.limits).signatures.work!.result;
  const [leaf] = bundleLeaves(uploadType);
  return writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(x) }]);
}

/** One round of the sum plan through an evaluator: initialize, materials, two folds, finalize. */
async function sumRound(e: PlanEvaluator, plan: PlanRef = ref(sumPlan)) {
  const state = await e.initialize(plan);
  const m = await e.materials(plan, state, 1);
  const first = await e.fold(plan, {
    round: 1,
    secureParams: m.secureParams,
    partial: undefined,
    uploads: [
      { task: 'a', bytes: sumUpload(1.5) },
      { task: 'bad', bytes: Uint8Array.of(1, 2, 3) },
    ],
  });
  const second = await e.fold(plan, {
    round: 1,
    secureParams: m.secureParams,
    partial: first.partial,
    uploads: [
      { task: 'b', bytes: sumUpload(2.25) },
      { task: 'gone', bytes: undefined },
    ],
  });
  const done = await e.finalize(plan, {
    round: 1,
    secureParams: m.secureParams,
    partials: [second.partial],
    state,
    minAggregate: 2,
  });
  return { first, second, done };
}

test('the four tasks give in isolates what they give in-process', async () => {
  const isolated = await sumRound(pool());
  const local = await sumRound(new LocalEvaluator(base.limits));
  expect(isolated.first).toMatchObject({ clients: 1, rejected: ['bad'], gone: [] });
  expect(isolated.second).toMatchObject({ clients: 2, rejected: [], gone: ['gone'] });
  expect(isolated.done).toMatchObject({ ok: true, output: { sum: 3.75, count: 2 }, clients: 2 });
  expect(isolated.done).toEqual(local.done);
});

test('a plan error is an AppError with its code, and the isolate serves on', async () => {
  const p = pool({ poolSize: 1 });
  const plan = ref(sumPlan);
  await expect(p.materials(plan, Uint8Array.of(9, 9), 1)).rejects.toMatchObject({ code: 'BUNDLE_MALFORMED' });
  // The API answers the same body whether the error came from an isolate or in-process (roundhouse validate).
  const answer = (e: PlanEvaluator) =>
    e.materials(plan, Uint8Array.of(9, 9), 1).then(
      () => undefined,
      (err: AppError) => err.toJSON(),
    );
  const local = await answer(new LocalEvaluator(base.limits));
  expect(local?.error.details.length).toBeGreaterThan(0);
  expect(await answer(p)).toEqual(local);
  await expect(sumRound(p)).resolves.toMatchObject({ done: { ok: true } });
});

describe.each([
  ['hang', new RegExp(`took longer than ${isolates.timeoutMs} ms`)],
  ['crash', /exited/],
  ['oom', /heap memory/],
  ['abort', /backend faulted/],
])('an isolate that faults (%s)', (kind, reason) => {
  test('fails only the task in flight; the next task runs on a fresh isolate', async () => {
    const p = pool({ poolSize: 1 });
    const bad = ref(named(sumPlan, `fault-${kind}-fold`));
    const state = await p.initialize(bad);
    const { secureParams } = await p.materials(bad, state, 1);
    const failed = p.fold(bad, { round: 1, secureParams, partial: undefined, uploads: [] });
    // A good plan's task queued behind it is untouched.
    const good = sumRound(p);
    await expect(failed).rejects.toMatchObject({
      code: 'EVAL_FAULT',
      message: expect.stringMatching(reason),
    });
    await expect(good).resolves.toMatchObject({ done: { ok: true, output: { sum: 3.75, count: 2 } } });
  });
});

test('a next state that is not finite fails the round and releases nothing', async () => {
  const p = pool();
  const plan = ref(stateSumPlan(2, { rounds: 1, target_clients: 2 }));
  const state = await p.initialize(plan);
  const { secureParams } = await p.materials(plan, state, 1);
  const folded = await p.fold(plan, {
    round: 1,
    secureParams,
    partial: undefined,
    uploads: [
      { task: 'x', bytes: vectorUpload(Float32Array.of(3.4e38, 1)) },
      { task: 'y', bytes: vectorUpload(Float32Array.of(3.4e38, 1)) },
    ],
  });
  expect(folded.clients).toBe(2);
  const done = await p.finalize(plan, {
    round: 1,
    secureParams,
    partials: [folded.partial],
    state,
    minAggregate: 2,
  });
  expect(done).toEqual({
    ok: false,
    error: expect.stringMatching(/non-finite value at S\/w\[0\]; the state is kept/),
  });
});

test('an aggregate below the minimum fails the round', async () => {
  const p = pool();
  const plan = ref(sumPlan);
  const state = await p.initialize(plan);
  const done = await p.finalize(plan, {
    round: 1,
    secureParams: params,
    partials: [],
    state,
    minAggregate: 2,
  });
  expect(done).toEqual({ ok: false, error: expect.stringMatching(/0 clients in the aggregate/) });
});

test('with no isolate able to start, tasks and readiness fail with NOT_READY', async () => {
  const p = pool({}, '/nonexistent/isolate-entry.js');
  await expect(p.ready()).rejects.toMatchObject({ code: 'NOT_READY' });
  const err = await p.initialize(ref(sumPlan)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AppError);
  expect(err).toMatchObject({ code: 'NOT_READY', status: 503 });
});

test('tasks beyond the pool size wait for an isolate', async () => {
  const p = pool({ poolSize: 2 });
  const results = await Promise.all(Array.from({ length: 5 }, () => sumRound(p)));
  for (const r of results) expect(r.done).toMatchObject({ ok: true, output: { sum: 3.75, count: 2 } });
});

test('an isolate that let a plan go asks for it again, and the task runs with the bytes it got', async () => {
  const p = pool({ poolSize: 1 });
  const first = ref(sumPlan);
  const state = await p.initialize(first);
  const { secureParams } = await p.materials(first, state, 1);
  // Isolates keep the 32 most recent plans: 32 others push the first one out.
  for (let i = 0; i < 32; i++) await p.initialize(ref(sumPlan));
  // The upload's buffer moves into the isolate with the first message, before it asks for the plan.
  const folded = await p.fold(first, {
    round: 1,
    secureParams,
    partial: undefined,
    uploads: [{ task: 'a', bytes: sumUpload(4) }],
  });
  expect(folded).toMatchObject({ clients: 1, rejected: [] });
});
