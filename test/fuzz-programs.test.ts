import { randomBytes } from 'node:crypto';
import type { RunOutcome } from '../src/client/types';
import { initBackend } from '../src/compute/backend';
import type { ProgramSummary } from '../src/stateful/server/program-store';
import type { SessionGrant } from '../src/stateful/wire';
import { eventually, type Cluster } from './support/cluster';
import type { FuzzDriver } from './support/fuzz/driver';
import { materializeSession, programRequestArb, sessionSpecArb } from './support/fuzz/programs';
import type { FuzzRequest } from './support/fuzz/plans';
import {
  RUNS,
  SEED,
  expectNoFailures,
  expectReached,
  fuzz,
  intEnv,
  startFuzzServer,
  tallies,
} from './support/fuzz/run';
import { programDevice, readings, sumProgram } from './support/stateful-programs';

// The fuzz of stateful programs (docs/stateful.md) against a running server (API and worker processes of
// the built CLI, real HTTP, real Redis): hostile program submissions and hostile device requests against
// live sessions never get a 5xx, every 4xx carries a machine-readable code, and afterwards the server still
// runs a good program to its exact outputs. The knobs are test/fuzz.test.ts's; FUZZ_PROGRAMS and
// FUZZ_SESSIONS set this file's counts.

const PROGRAMS = intEnv('FUZZ_PROGRAMS', Math.ceil(RUNS / 5));
const SESSIONS = intEnv('FUZZ_SESSIONS', Math.ceil((RUNS * 3) / 10));
/** Generous: a loaded 2-core machine. */
const PHASE_TIMEOUT_MS = 600_000 + 200 * Math.max(PROGRAMS, SESSIONS);
/** Devices per fuzzed program, all recruited at once so that the program runs while it is fuzzed. */
const COHORT = 3;
/** Programs whose sessions the fuzz acts on at a time. */
const LIVE_PROGRAMS = 3;

describe('fuzz: hostile programs and session requests never get a 5xx', () => {
  let cluster: Cluster;
  let driver: FuzzDriver;
  const tokenSecret = randomBytes(32).toString('hex');
  const tag = `fzp${process.pid}`;
  const timings: string[] = [];
  const processes = () => [cluster.api, ...cluster.workers];

  beforeAll(async () => {
    await initBackend();
    ({ cluster, driver } = await startFuzzServer(tokenSecret));
  });
  afterAll(async () => {
    await cluster?.stop();
    if (timings.length)
      console.log(`fuzz of programs (seed ${SEED}): ${timings.join('; ')}\n${driver?.summary() ?? ''}`);
  });

  async function summary(id: string): Promise<ProgramSummary & { sessions: Record<string, number> }> {
    return (await (await cluster.operator(`/v1/programs/${id}`)).json()) as ProgramSummary & {
      sessions: Record<string, number>;
    };
  }

  test(
    `${PROGRAMS} program submissions: mutated, rewired, hostile cohorts, random and malformed`,
    async () => {
      const t0 = Date.now();
      const from = driver.failures.length;
      const before = tallies(driver);
      let accepted = 0;
      await fuzz(driver, programRequestArb(), PROGRAMS, SEED + 10, (batch) =>
        driver.sendAll(batch, async (_req, answer) => {
          if (answer?.status !== 201) return;
          accepted += 1;
          // An accepted program recruits: end it at once, and delete it.
          const id = (answer.json as { id: string }).id;
          for (const [method, what] of [
            ['POST', '/cancel'],
            ['DELETE', ''],
          ] as const) {
            await driver.send({
              method,
              path: `/v1/programs/${encodeURIComponent(id)}${what}`,
              headers: {},
              operator: true,
              label: `${method} accepted fuzz program ${id}${what}`,
            });
          }
        }),
      );
      timings.push(
        `${PROGRAMS} programs (${accepted} accepted, cancelled and deleted) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      // Some programs pass every check, and the refusals come from each kind of check: the schema, the
      // types, and the privacy rule (a client value that would reach the server other than aggregated).
      expect(accepted).toBeGreaterThan(0);
      expectReached(driver, 'programs', before, PROGRAMS, [
        'PLAN_SCHEMA_INVALID',
        'PLAN_TYPE_ERROR',
        'PROGRAM_PRIVACY_VIOLATION',
      ]);
      expectNoFailures(driver, from, processes());
    },
    PHASE_TIMEOUT_MS,
  );

  test(
    `${SESSIONS} device requests against live sessions: hostile tokens, ids, polls and answers`,
    async () => {
      const t0 = Date.now();
      const from = driver.failures.length;
      let recruited = 0;
      /** A running program of the sum-then-scale kind with COHORT sessions the fuzz holds. */
      async function recruit(): Promise<{ id: string; grants: SessionGrant[] }> {
        const p = sumProgram(2, COHORT) as unknown as {
          population: string;
          cohort: { join_timeout_s: number; step_timeout_s: number };
        };
        p.population = `${tag}-s${++recruited}`;
        p.cohort.join_timeout_s = 600;
        p.cohort.step_timeout_s = 600;
        const res = await cluster.operator('/v1/programs', { method: 'POST', body: JSON.stringify(p) });
        if (res.status !== 201) throw new Error(`the fuzz's program was refused: ${await res.text()}`);
        const { id } = (await res.json()) as { id: string };
        const grants: SessionGrant[] = [];
        for (let i = 0; i < COHORT; i++) {
          const checkin = await fetch(`${cluster.url}/v1/populations/${p.population}/checkin`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ device_id: `${tag}-device-${recruited}-${i}` }),
          });
          const { session } = (await checkin.json()) as { session?: SessionGrant };
          if (!session) throw new Error(`device ${i} of ${p.population} got no session`);
          grants.push(session);
        }
        return { id, grants };
      }
      const live: Array<{ id: string; grants: SessionGrant[] }> = [];
      for (let i = 0; i < LIVE_PROGRAMS; i++) live.push(await recruit());
      /** Sessions of programs deleted since: their tokens still verify, the sessions are gone. */
      const retired: SessionGrant[] = [];
      const before = tallies(driver);

      await fuzz(driver, sessionSpecArb(), SESSIONS, SEED + 11, async (batch) => {
        const pools = { live: live.flatMap((p) => p.grants), retired };
        const reqs: FuzzRequest[] = [];
        for (const spec of batch) reqs.push(await materializeSession(spec, pools, tokenSecret));
        await driver.sendAll(reqs);
        // A program whose sessions all ended (failed answers, leaves) has nothing more to reach: replace it.
        for (const [i, p] of live.entries()) {
          const s = await summary(p.id);
          if ((s.sessions.live ?? 0) > 0 && s.status !== 'failed' && s.status !== 'cancelled') continue;
          await cluster.operator(`/v1/programs/${p.id}/cancel`, { method: 'POST' });
          const deleted = await cluster.operator(`/v1/programs/${p.id}`, { method: 'DELETE' });
          if (deleted.status !== 200)
            throw new Error(`program ${p.id} was not deleted: ${await deleted.text()}`);
          retired.push(...p.grants);
          retired.splice(0, Math.max(0, retired.length - 4 * COHORT));
          live[i] = await recruit();
        }
      });
      timings.push(
        `${SESSIONS} session requests (${recruited} programs recruited) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      // The requests get past the token to the sessions, and the refusals come from each check: the token,
      // the session's existence and state, the order of answers, the body's shape, the values served.
      expectReached(driver, 'sessions', before, SESSIONS, [
        'TOKEN_INVALID',
        'SESSION_NOT_FOUND',
        'SESSION_ENDED',
        'ANSWER_OUT_OF_ORDER',
        'REQUEST_INVALID',
        'PROGRAM_NOT_FOUND',
        'RESOURCE_NOT_FOUND',
      ]);
      expectNoFailures(driver, from, processes());
      await Promise.all(live.map((p) => cluster.operator(`/v1/programs/${p.id}/cancel`, { method: 'POST' })));
    },
    PHASE_TIMEOUT_MS,
  );

  test('after the fuzz the server still runs a good program to its exact outputs', async () => {
    const t0 = Date.now();
    const p = sumProgram(2, 3) as unknown as { population: string };
    p.population = `${tag}-after`;
    const res = await cluster.operator('/v1/programs', { method: 'POST', body: JSON.stringify(p) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const outcomes = (await Promise.all([
      programDevice(cluster.url, p.population, `${tag}-after-a`, readings(1, 2)).runOnce(),
      programDevice(cluster.url, p.population, `${tag}-after-b`, readings(3)).runOnce(),
      programDevice(cluster.url, p.population, `${tag}-after-c`, readings(4)).runOnce(),
    ])) as Extract<RunOutcome, { kind: 'session' }>[];
    for (const o of outcomes) expect(o.session.status).toBe('completed');
    const done = await eventually(`program ${id} to end`, async () => {
      const s = await summary(id);
      return s.status === 'completed' || s.status === 'failed' ? s : undefined;
    });
    expect(done.status).toBe('completed');
    // total 10, doubled 20, scaled_total (3 + 3 + 4) * 20.
    expect(done.outputs).toEqual({ total: 10, doubled: 20, scaled_total: 200 });
    timings.push(`good program after the fuzz in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 180_000);
});
