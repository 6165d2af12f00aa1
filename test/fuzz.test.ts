import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { TffType } from '../src/compute/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { FuzzDriver, formatFailures } from './support/fuzz/driver';
import { otherRequestArb } from './support/fuzz/others';
import { planRequestArb, type FuzzRequest } from './support/fuzz/plans';
import { checkinBody, int32ScalarUpload, refillTasks, submitTargets } from './support/fuzz/targets';
import { materializeUpload, uploadSpecArb, type HeldTask } from './support/fuzz/uploads';
import { PLAN_LIBRARY } from '../src/plans';

// A property-based fuzz against a running server (an API process and a worker process of the built CLI,
// real HTTP, real Redis): hostile plans, uploads and other requests never get a 5xx, every 4xx carries a
// machine-readable code, and afterwards the server still aggregates a good plan exactly.
//
// The seed is fixed so that CI replays the same requests; for a longer or different fuzz (README, "Running a
// longer fuzz"): FUZZ_SEED=<n> FUZZ_RUNS=<requests per kind> npx jest test/fuzz.test.ts. FUZZ_PLANS,
// FUZZ_UPLOADS and FUZZ_OTHERS set each kind's count, FUZZ_CONCURRENCY the requests in flight,
// FUZZ_FAILURES_DIR a directory that receives every failing request in full, and FUZZ_SHRINK=1 makes
// fast-check stop at the first failing batch and shrink its requests (a batch keeps its length, so that the
// seeded sequence is the CI one; the failing requests are those last recorded as failures); FUZZ_TRACE=<file>
// writes one line per answer (start, duration, status, how the request was made), to find what stalls.

function intEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

const SEED = intEnv('FUZZ_SEED', 20_261_130);
const RUNS = intEnv('FUZZ_RUNS', 10_000);
const PLANS = intEnv('FUZZ_PLANS', RUNS);
const UPLOADS = intEnv('FUZZ_UPLOADS', RUNS);
const OTHERS = intEnv('FUZZ_OTHERS', Math.ceil(RUNS / 5));
const CONCURRENCY = intEnv('FUZZ_CONCURRENCY', 16);
const SHRINK = process.env.FUZZ_SHRINK === '1';
/**
 * From this many requests of a kind on, each code that kind's generators aim at must have been answered at
 * least once (the rarest, PLAN_OUT_OF_BOUNDS, answers about 1 plan in 120); fewer may by chance miss one.
 */
const MIN_FOR_CODES = 1_000;
/** Requests per fast-check run: each run sends one batch concurrently. */
const BATCH = 100;
/** Generous: a loaded 2-core machine may take minutes for ten thousand of each. */
const PHASE_TIMEOUT_MS = 600_000 + 100 * Math.max(PLANS, UPLOADS);

/**
 * Runs `count` requests drawn from `arb` in batches of BATCH, through fast-check (seeded, so replayable).
 * Without FUZZ_SHRINK the property records failures and holds, so that one run reports every kind of
 * failure; with it, a batch that adds a failure fails the property and fast-check shrinks its requests.
 */
async function fuzz<T>(
  driver: FuzzDriver,
  arb: fc.Arbitrary<T>,
  count: number,
  seed: number,
  send: (batch: readonly T[]) => Promise<void>,
): Promise<void> {
  const runs = Math.ceil(count / BATCH);
  let left = count;
  await fc.assert(
    fc.asyncProperty(fc.array(arb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
      const before = driver.failures.length;
      // The last run may need fewer than BATCH to reach exactly `count` (shrinking runs reuse this).
      const take = Math.max(1, Math.min(batch.length, left));
      left -= take;
      const t0 = Date.now();
      await send(batch.slice(0, take));
      if (process.env.FUZZ_VERBOSE) process.stderr.write(`batch of ${take} in ${Date.now() - t0} ms\n`);
      return !SHRINK || driver.failures.length === before;
    }),
    { seed, numRuns: runs, endOnFailure: !SHRINK, verbose: SHRINK ? 1 : 0 },
  );
}

describe('fuzz: hostile plans, uploads and requests never get a 5xx', () => {
  let cluster: Cluster;
  let driver: FuzzDriver;
  const tokenSecret = randomBytes(32).toString('hex');
  const tag = `fz${process.pid}`;
  const timings: string[] = [];

  beforeAll(async () => {
    cluster = await startCluster({
      workers: 1,
      env: {
        // The fuzz signs tokens with hostile claims under the server's own secret.
        TOKEN_SECRET: tokenSecret,
        // Accepted fuzz uploads must never meet 503 BUSY: the property is about faults, not pacing.
        MAX_PENDING_UPLOADS: '1000000',
        // Anonymous check-ins stay rate-limited (the limiter is part of what is fuzzed), but never below
        // what the fuzz needs to keep its targets supplied with tasks.
        ANONYMOUS_RATE_LIMIT: '1000000',
        LOG_LEVEL: process.env.FUZZ_LOG_LEVEL || 'error',
      },
    });
    driver = new FuzzDriver({
      url: cluster.url,
      operatorToken: cluster.operatorToken,
      concurrency: CONCURRENCY,
      failuresDir: process.env.FUZZ_FAILURES_DIR || undefined,
      traceFile: process.env.FUZZ_TRACE || undefined,
    });
  });
  afterAll(async () => {
    await cluster?.stop();
    if (timings.length) console.log(`fuzz (seed ${SEED}): ${timings.join('; ')}\n${driver?.summary() ?? ''}`);
  });

  /** What `now` counts beyond `before` (a copy taken when a phase began), key by key. */
  function since<K>(before: ReadonlyMap<K, number>, now: ReadonlyMap<K, number>): Map<K, number> {
    const out = new Map<K, number>();
    for (const [key, n] of now) if (n > (before.get(key) ?? 0)) out.set(key, n - (before.get(key) ?? 0));
    return out;
  }

  /** A copy of the driver's tallies, taken when a phase begins. */
  function tallies(): { statuses: Map<number, number>; codes: Map<string, number> } {
    return { statuses: new Map(driver.statuses), codes: new Map(driver.codes) };
  }

  /**
   * Asserts that a phase got some 2xx answers and, when it sent at least MIN_FOR_CODES requests, every code
   * of `codes`: a fuzz whose requests all stop at one early refusal (as when every upload got 401 before
   * the device header was sent) would otherwise find no 5xx and pass without reaching what it aims at.
   */
  function expectReached(
    phase: string,
    before: ReturnType<typeof tallies>,
    count: number,
    codes: readonly string[],
  ): void {
    const statuses = since(before.statuses, driver.statuses);
    const seen = since(before.codes, driver.codes);
    const ok = [...statuses].filter(([s]) => s >= 200 && s < 300).reduce((a, [, n]) => a + n, 0);
    expect({ phase, ok: ok > 0 }).toEqual({ phase, ok: true });
    if (count < MIN_FOR_CODES) return;
    expect({ phase, missing: codes.filter((c) => !seen.has(c)) }).toEqual({ phase, missing: [] });
  }

  function expectNoFailures(from: number): void {
    const failures = driver.failures.slice(from);
    expect(
      formatFailures(failures) + (failures.length > 20 ? `\n… and ${failures.length - 20} more` : ''),
    ).toBe('');
    expect(cluster.api.exitCode).toBeNull();
    expect(cluster.workers.every((w) => w.exitCode === null)).toBe(true);
  }

  test(
    `${PLANS} plans: mutated, deep, prototype-named, random and malformed`,
    async () => {
      const t0 = Date.now();
      const from = driver.failures.length;
      const sent0 = driver.sent;
      const before = tallies();
      let accepted = 0;
      await fuzz(driver, planRequestArb(), PLANS, SEED, (batch) =>
        driver.sendAll(batch, async (_req, answer) => {
          if (answer?.status !== 201) return;
          accepted += 1;
          // An accepted plan opens a round and schedules its deadlines: end it at once.
          const id = (answer.json as { id: string }).id;
          await driver.send({
            method: 'POST',
            path: `/v1/plans/${encodeURIComponent(id)}/cancel`,
            headers: {},
            operator: true,
            label: `cancel accepted fuzz plan ${id}`,
          });
        }),
      );
      expect(driver.sent - sent0 - accepted).toBeGreaterThanOrEqual(PLANS);
      timings.push(
        `${PLANS} plans (${accepted} accepted and cancelled) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      // Some plans pass validation, and the refusals come from each stage of it: schema, types, limits and
      // the bounds of secure-sum parameters.
      expect(accepted).toBeGreaterThan(0);
      expectReached('plans', before, PLANS, [
        'PLAN_SCHEMA_INVALID',
        'PLAN_TYPE_ERROR',
        'PLAN_LIMIT_EXCEEDED',
        'PLAN_OUT_OF_BOUNDS',
      ]);
      expectNoFailures(from);
    },
    PHASE_TIMEOUT_MS,
  );

  test(
    `${UPLOADS} uploads: damaged bundles, hostile tokens and encodings, extreme values; and ${OTHERS} other requests`,
    async () => {
      const t0 = Date.now();
      const from = driver.failures.length;
      const targets = await submitTargets(cluster, tag);
      for (const t of targets) await refillTasks(driver, t);
      expect(targets.every((t) => t.tasks.length > 0)).toBe(true);
      const before = tallies();
      const spent = new Set<string>();
      const taskOf = new Map<FuzzRequest, HeldTask>();
      let uploads = 0;
      let accepted = 0;

      await fuzz(driver, uploadSpecArb(), UPLOADS, SEED + 1, async (batch) => {
        const ctx = { targets, tokenSecret };
        const reqs: FuzzRequest[] = [];
        for (const spec of batch) {
          const req = await materializeUpload(spec, ctx);
          const target = targets[spec.target % targets.length]!;
          const own = target.tasks[spec.slot % Math.max(1, target.tasks.length)];
          if (own && spec.token.kind === 'own' && spec.path.kind === 'own') taskOf.set(req, own);
          reqs.push(req);
        }
        uploads += reqs.length;
        await driver.sendAll(reqs, async (req, answer) => {
          if (answer?.status === 202) accepted += 1;
          const task = taskOf.get(req);
          // A task is used up once it uploaded, or its round stopped taking uploads.
          if (task && answer && [202, 409].includes(answer.status)) spent.add(task.task_id);
          if (task && answer?.code === 'TOKEN_REUSED') spent.add(task.task_id);
        });
        taskOf.clear();
        for (const t of targets)
          if (t.tasks.every((task) => spent.has(task.task_id))) await refillTasks(driver, t);
      });
      expect(uploads).toBeGreaterThanOrEqual(UPLOADS);
      const t1 = Date.now();
      timings.push(`${uploads} uploads (${accepted} accepted) in ${((t1 - t0) / 1000).toFixed(1)} s`);
      // Uploads reach bundle decoding and the aggregation: some are accepted, and damaged bundles, wrong
      // shapes and forged tokens are refused by the checks meant for them.
      expect(accepted).toBeGreaterThan(0);
      expectReached('uploads', before, UPLOADS, [
        'BUNDLE_MALFORMED',
        'BUNDLE_TYPE_MISMATCH',
        'TOKEN_INVALID',
      ]);
      const beforeOthers = tallies();

      const known = targets.map((t) => t.planId);
      await fuzz(driver, otherRequestArb(known), OTHERS, SEED + 2, (batch) => driver.sendAll(batch));
      timings.push(`${OTHERS} other requests in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
      // Reads of the known plans and their rounds get past the checks of ids and operator tokens.
      expectReached('others', beforeOthers, OTHERS, ['PLAN_NOT_FOUND']);
      expectNoFailures(from);
      await Promise.all(
        targets.map((t) => cluster.operator(`/v1/plans/${t.planId}/cancel`, { method: 'POST' })),
      );
    },
    PHASE_TIMEOUT_MS,
  );

  test('after the fuzz the server still serves and aggregates a good plan exactly', async () => {
    const t0 = Date.now();
    expect((await fetch(`${cluster.url}/readyz`)).status).toBe(200);
    const population = `${tag}-after`;
    const plan = {
      ...(PLAN_LIBRARY['federated-sum']!.build({}) as unknown as Record<string, unknown>),
      population,
      schedule: {
        rounds: 1,
        target_clients: 3,
        over_selection: 1,
        min_reports: 3,
        min_clients_in_aggregate: 3,
        selection_timeout_s: 300,
        reporting_deadline_s: 300,
      },
    };
    const submitted = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(submitted.status).toBe(201);
    const { id } = (await submitted.json()) as { id: string };
    const { upload_type } = (await (await fetch(`${cluster.url}/v1/plans/${id}/client-plan`)).json()) as {
      upload_type: TffType;
    };
    const values = [5, 11, 1000];
    for (const [i, value] of values.entries()) {
      const device = `after-fuzz-device-${i}-${randomBytes(4).toString('hex')}`;
      const res = await fetch(`${cluster.url}/v1/populations/${population}/checkin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: checkinBody(device),
      });
      expect(res.status).toBe(200);
      const { assignment } = (await res.json()) as { assignment?: HeldTask & { upload_url: string } };
      expect(assignment).toBeDefined();
      const up = await fetch(assignment!.upload_url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${assignment!.token}`,
          'content-type': 'application/octet-stream',
          'x-device-credential': device,
        },
        body: int32ScalarUpload(upload_type, value) as BodyInit,
      });
      expect(up.status).toBe(202);
    }
    const done = await eventually(
      'the good round to complete',
      async () => {
        const { rounds } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
          rounds: Array<{ phase: string; output: unknown; aggregated_clients: number; error: unknown }>;
        };
        const r = rounds[0];
        if (r?.phase === 'failed') throw new Error(`the good round failed: ${JSON.stringify(r.error)}`);
        return r?.phase === 'completed' ? r : undefined;
      },
      120_000,
    );
    expect(done.output).toEqual({ sum: 5 + 11 + 1000 });
    expect(done.aggregated_clients).toBe(3);
    timings.push(`good round after the fuzz in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 180_000);
});
