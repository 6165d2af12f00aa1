/**
 * What the fuzz test files share: the environment knobs (README, "Running a longer fuzz"), the seeded
 * runner that sends generated requests in batches, and the checks each phase ends with.
 */
import fc from 'fast-check';
import { startCluster, type Cluster } from '../cluster';
import { FuzzDriver, formatFailures } from './driver';

/** A non-negative integer from the environment, or `fallback`. */
export function intEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

export const SEED = intEnv('FUZZ_SEED', 20_261_130);
export const RUNS = intEnv('FUZZ_RUNS', 10_000);
export const CONCURRENCY = intEnv('FUZZ_CONCURRENCY', 16);
const SHRINK = process.env.FUZZ_SHRINK === '1';
/**
 * From this many requests of a kind on, each code that kind's generators aim at must have been answered at
 * least once (the rarest, PLAN_OUT_OF_BOUNDS, answers about 1 plan in 120); fewer may by chance miss one.
 */
export const MIN_FOR_CODES = 1_000;
/** Requests per fast-check run: each run sends one batch concurrently. */
const BATCH = 100;

/**
 * Runs `count` requests drawn from `arb` in batches of BATCH, through fast-check (seeded, so replayable).
 * Without FUZZ_SHRINK the property records failures and holds, so that one run reports every kind of
 * failure; with it, a batch that adds a failure fails the property and fast-check shrinks its requests.
 */
export async function fuzz<T>(
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

/** The driver's tallies when a phase began. */
export interface Tallies {
  readonly statuses: ReadonlyMap<number, number>;
  readonly codes: ReadonlyMap<string, number>;
}

/** A copy of the driver's tallies, taken when a phase begins. */
export function tallies(driver: FuzzDriver): Tallies {
  return { statuses: new Map(driver.statuses), codes: new Map(driver.codes) };
}

/** What `now` counts beyond `before`, key by key. */
function since<K>(before: ReadonlyMap<K, number>, now: ReadonlyMap<K, number>): Map<K, number> {
  const out = new Map<K, number>();
  for (const [key, n] of now) if (n > (before.get(key) ?? 0)) out.set(key, n - (before.get(key) ?? 0));
  return out;
}

/**
 * Asserts that a phase got some 2xx answers and, when it sent at least MIN_FOR_CODES requests, every code
 * of `codes`: a fuzz whose requests all stop at one early refusal (as when every upload got 401 before
 * the device header was sent) would otherwise find no 5xx and pass without reaching what it aims at.
 */
export function expectReached(
  driver: FuzzDriver,
  phase: string,
  before: Tallies,
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

/** Asserts that no request since failure `from` broke the property, and that no server process died. */
export function expectNoFailures(
  driver: FuzzDriver,
  from: number,
  processes: ReadonlyArray<{ readonly exitCode: number | null }>,
): void {
  const failures = driver.failures.slice(from);
  expect(
    formatFailures(failures) + (failures.length > 20 ? `\n… and ${failures.length - 20} more` : ''),
  ).toBe('');
  expect(processes.map((p) => p.exitCode)).toEqual(processes.map(() => null));
}

/**
 * An API process and a worker process of the built CLI for a fuzz, and the driver that sends to them: with
 * `tokenSecret` as TOKEN_SECRET (the fuzz signs tokens with hostile claims under it), anonymous check-ins
 * rate-limited but never below what the fuzz needs, the server's log level from FUZZ_LOG_LEVEL, and `env`.
 */
export async function startFuzzServer(
  tokenSecret: string,
  env: Record<string, string> = {},
): Promise<{ cluster: Cluster; driver: FuzzDriver }> {
  const cluster = await startCluster({
    workers: 1,
    env: {
      TOKEN_SECRET: tokenSecret,
      ANONYMOUS_RATE_LIMIT: '1000000',
      LOG_LEVEL: process.env.FUZZ_LOG_LEVEL || 'error',
      ...env,
    },
  });
  const driver = new FuzzDriver({
    url: cluster.url,
    operatorToken: cluster.operatorToken,
    concurrency: CONCURRENCY,
    failuresDir: process.env.FUZZ_FAILURES_DIR || undefined,
    traceFile: process.env.FUZZ_TRACE || undefined,
  });
  return { cluster, driver };
}
