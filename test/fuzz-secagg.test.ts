import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { TffType } from '../src/compute/types';
import type { RoundInfo } from '../src/store/types';
import { eventually } from './support/cluster';
import { expectNoFailures, intEnv, SEED, startFuzzServer, tallies } from './support/fuzz/run';
import { clientScriptArb, runClient, type ClientScript, type SecAggTask } from './support/fuzz/secagg';
import { assignedRaw } from './support/raw-client';
import { THREE_SUMS, threeSumsOf, threeSumsPlan } from './support/secure-plans';
import type { Cluster } from './support/cluster';
import type { FuzzDriver } from './support/fuzz/driver';

// The fuzz of SecAgg+ rounds (docs/server.md, "Secure aggregation") against a running server (API and
// worker processes of the built CLI, real HTTP, real Redis): in each round three clients run the honest
// protocol, but at each step a client may first send a hostile message (its honest one mutated, another
// task's token, another step's message, a replay, garbage, a damaged masked upload) and may drop out. No
// answer is a 5xx, every 4xx has a code, every round ends (completed or failed, none stranded), and a round
// that completes releases exactly the sums of the clients whose masked uploads were accepted, unless a
// hostile message was accepted where the server cannot tell it from an honest one (docs/server.md says
// what such a client can do to the sum). FUZZ_SECAGG_ROUNDS sets the number of rounds.

const ROUNDS = intEnv('FUZZ_SECAGG_ROUNDS', 24);
/**
 * Rounds run at once, each on a plan and population of its own: a round spends most of its time waiting on
 * the deadlines its dropouts leave, not on the CPU.
 */
const PARALLEL = Math.max(1, Math.min(24, ROUNDS));
const CLIENTS = 3;

describe('fuzz: hostile SecAgg+ messages never get a 5xx, never strand a round, never change an honest sum', () => {
  let cluster: Cluster;
  let driver: FuzzDriver;
  const tag = `fzs${process.pid}`;
  const outcomes: string[] = [];

  beforeAll(async () => {
    ({ cluster, driver } = await startFuzzServer(randomBytes(32).toString('hex')));
  });
  afterAll(async () => {
    await cluster?.stop();
    if (outcomes.length)
      console.log(`fuzz of SecAgg+ (seed ${SEED}): ${outcomes.join('; ')}\n${driver?.summary() ?? ''}`);
  });

  let rounds = 0;
  /** Rounds whose released sums were checked against the honest ones. */
  let exact = 0;
  /** One round: a plan of its own, three clients by their scripts; what the round released. */
  async function round(scripts: readonly ClientScript[]): Promise<string> {
    const population = `${tag}-${++rounds}`;
    const plan = threeSumsPlan(
      population,
      {
        rounds: 1,
        target_clients: CLIENTS,
        over_selection: 1,
        min_reports: 2,
        min_clients_in_aggregate: 2,
        // Short, so that a dropout ends its step soon; long enough for a loaded machine's honest clients.
        selection_timeout_s: 6,
        reporting_deadline_s: 15,
      },
      { protocol: 'secagg+', degree: CLIENTS, threshold: 2, sharing_timeout_s: 6, unmasking_timeout_s: 6 },
    );
    const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    if (created.status !== 201) throw new Error(`the round's plan was refused: ${await created.text()}`);
    const { id } = (await created.json()) as { id: string };
    const { upload_type } = (await (await fetch(`${cluster.url}/v1/plans/${id}/client-plan`)).json()) as {
      upload_type: TffType;
    };
    const tasks: SecAggTask[] = [];
    for (let i = 0; i < CLIENTS; i++)
      tasks.push((await assignedRaw(cluster.url, population, `${population}-device-${i}`)) as SecAggTask);
    const deadline = Date.now() + 120_000;
    const runs = await Promise.all(
      tasks.map((t, i) =>
        runClient(driver, t, tasks[(i + 1) % CLIENTS]!, upload_type, scripts[i]!, deadline),
      ),
    );
    const ended = await eventually(
      `round of ${population} to end`,
      async () => {
        const { rounds: all } = (await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as {
          rounds: RoundInfo[];
        };
        const r = all.find((x) => x.round === 1);
        return r?.phase === 'completed' || r?.phase === 'failed' ? r : undefined;
      },
      90_000,
    );
    const story = runs.map((r, i) => `client ${i}: ${r.steps.join(', ')}`).join(' | ');
    if (ended.phase === 'completed' && !runs.some((r) => r.tainted)) {
      exact += 1;
      const x = scripts.filter((_, i) => runs[i]!.uploaded).map((c) => threeSumsOf(c.s));
      expect({ story, output: ended.output }).toEqual({
        story,
        output: {
          v1: x.reduce((s, v) => s + v.v1, 0),
          v2: x.reduce((s, v) => s + v.v2, 0),
          v3: x.reduce((s, v) => s + v.v3, 0) % THREE_SUMS.modulus,
        },
      });
    }
    await cluster.operator(`/v1/plans/${id}`, { method: 'DELETE' });
    const why = ended.phase === 'failed' ? `: ${String(ended.error).slice(0, 120)}` : '';
    return `${ended.phase}${runs.some((r) => r.tainted) ? ' (tainted)' : ''}${why}`;
  }

  test(`${ROUNDS} rounds of ${CLIENTS} clients with hostile messages and dropouts`, async () => {
    const from = driver.failures.length;
    const before = tallies(driver);
    const t0 = Date.now();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(clientScriptArb(), { minLength: CLIENTS, maxLength: CLIENTS }), {
          minLength: PARALLEL,
          maxLength: PARALLEL,
        }),
        async (batch) => {
          // The last batch runs only the rounds left of ROUNDS.
          const take = batch.slice(0, Math.max(1, ROUNDS - rounds));
          outcomes.push(...(await Promise.all(take.map((scripts) => round(scripts)))));
        },
      ),
      { seed: SEED + 20, numRuns: Math.ceil(ROUNDS / PARALLEL), endOnFailure: true },
    );
    const count = (what: string) => outcomes.filter((o) => o.startsWith(what)).length;
    outcomes.unshift(
      `${outcomes.length} rounds (${exact} with exact sums checked) in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${count('completed')} completed, ${count('failed')} failed`,
    );
    // Some rounds complete despite the hostile messages, with their exact sums checked; the refusals come
    // from the checks of messages and of masked uploads.
    expect({ completed: count('completed') > 0, exact: exact > 0 }).toEqual({ completed: true, exact: true });
    const refused = (code: string) => (driver.codes.get(code) ?? 0) - (before.codes.get(code) ?? 0);
    expect({
      messages: refused('REQUEST_INVALID') > 0,
      uploads: refused('BUNDLE_MALFORMED') + refused('SECURE_SUM_OUT_OF_RANGE') > 0,
    }).toEqual({ messages: true, uploads: true });
    expectNoFailures(driver, from, [cluster.api, ...cluster.workers]);
  }, 900_000);
});
