import { Writable } from 'node:stream';
import pino from 'pino';
import sumPlan from '../../test/fixtures/sum-plan.json';
import { bundleLeaves, writeBundle } from '../codec';
import { loadConfig } from '../config';
import { LocalEvaluator } from '../isolate/local-evaluator';
import { newTaskId } from '../store/ids';
import { openTestStore, type TestStore } from '../store/testing';
import type { RoundRef } from '../store/types';
import type { Jobs } from './contracts';
import { RoundEngine, planRef } from './engine';
import { StorePlanCache } from './plan-cache';

// Finalize checks that every covered upload is accounted for (clients of the partials + dropped) and fails
// the attempt loudly when not. The mismatch is forged as two processes sharing one worker id made it before
// leases: each commits its own partial under the id, the last write wins, and covered uploads vanish.
const config = loadConfig({});
const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
const log = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      done();
    },
  }),
);
const jobs: Jobs = {
  accumulate: () => Promise.resolve(),
  finalize: () => Promise.resolve(),
  deadlines: () => Promise.resolve(),
  forget: () => Promise.resolve(),
  close: () => Promise.resolve(),
};
let t: TestStore;
let engine: RoundEngine;
let plans: StorePlanCache;
const evaluator = new LocalEvaluator(config.limits);

beforeAll(() => {
  t = openTestStore('aggregation-check');
  plans = new StorePlanCache(t.store, config.limits);
  engine = new RoundEngine({ store: t.store, jobs, plans, evaluator, config, log });
});
afterAll(() => t.close());

/** A plan of `clients` clients; each uploads, and a worker's fold of each upload alone, uncommitted. */
async function round(clients: number) {
  const schedule = { rounds: 1, target_clients: clients, over_selection: 1, min_reports: clients };
  const { id } = await engine.submitPlan({
    ...sumPlan,
    schedule: { ...schedule, min_clients_in_aggregate: 1, selection_timeout_s: 60, reporting_deadline_s: 60 },
  });
  const ref: RoundRef = { plan: id, round: 1, attempt: 1 };
  const loaded = (await plans.get(id))!;
  const [leaf] = bundleLeaves(loaded.uploadType);
  const info = (await t.store.getRound(ref))!;
  const folds = [];
  for (let i = 0; i < clients; i++) {
    const a = await t.store.tryAssign(id, newTaskId(), Date.now(), `device-${i}`);
    if (!a.ok) throw new Error(a.reason);
    const bytes = writeBundle([
      { name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(i + 1) },
    ]);
    expect((await t.store.acceptUpload(ref, a.task, bytes, Date.now(), 64)).ok).toBe(true);
    const folded = await evaluator.fold(planRef(loaded), {
      round: 1,
      secureParams: info.secure_params,
      partial: undefined,
      uploads: [{ task: a.task, bytes }],
    });
    folds.push({ task: a.task, bytes, partial: folded.partial });
  }
  return { ref, folds };
}

test('two processes committing under one worker id lose covered uploads: finalize fails the attempt loudly', async () => {
  const { ref, folds } = await round(2);
  // Each "process" folded one upload from zero and commits it under the same id: the second overwrites.
  for (const f of folds)
    expect((await t.store.commitPartial(ref, 'w-shared', f.partial, [f.task])).ok).toBe(true);
  expect(await t.store.getRound(ref)).toMatchObject({ phase: 'closed', accumulated: 2 });
  await engine.finalize(ref);
  const failed = (await t.store.getRound(ref))!;
  expect(failed.phase).toBe('failed');
  expect(failed.error).toBe(
    'aggregation invariant violated: 2 uploads covered, but the 1 partials hold 1 clients and 0 uploads were rejected or gone',
  );
  expect(failed.output).toBeUndefined();
  const loud = lines.find((l) => l.msg === 'aggregation invariant violated; the round attempt fails');
  expect(loud).toMatchObject({
    level: 50,
    plan: ref.plan,
    round: '1.1',
    accumulated: 2,
    clients: 1,
    dropped: 0,
  });
});

test("a partial written behind the store's back fails the check; honest partials pass it", async () => {
  const { ref, folds } = await round(2);
  const [a, b] = folds as [(typeof folds)[number], (typeof folds)[number]];
  expect((await t.store.commitPartial(ref, 'w1', a.partial, [a.task])).ok).toBe(true);
  expect((await t.store.commitPartial(ref, 'w2', b.partial, [b.task])).ok).toBe(true);
  // Someone with access to Redis replaces w2's partial by one that holds both uploads (a's twice in all).
  const both = await evaluator.fold(planRef((await plans.get(ref.plan))!), {
    round: 1,
    secureParams: (await t.store.getRound(ref))!.secure_params,
    partial: a.partial,
    uploads: [{ task: b.task, bytes: b.bytes }],
  });
  await t.redis.set(`${t.prefix}:{${ref.plan}}:r:1.1:partial:w2`, Buffer.from(both.partial));
  await engine.finalize(ref);
  expect(await t.store.getRound(ref)).toMatchObject({
    phase: 'failed',
    error:
      'aggregation invariant violated: 2 uploads covered, but the 2 partials hold 3 clients and 0 uploads were rejected or gone',
  });

  const honest = await round(2);
  for (const [i, f] of honest.folds.entries())
    expect((await t.store.commitPartial(honest.ref, `w${i}`, f.partial, [f.task])).ok).toBe(true);
  await engine.finalize(honest.ref);
  expect(await t.store.getRound(honest.ref)).toMatchObject({
    phase: 'completed',
    output: { sum: 3, count: 2 },
  });
});
