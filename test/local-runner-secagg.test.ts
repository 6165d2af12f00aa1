import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/compute/backend';
import { writeClientsCsv, type ClientExamples } from '../src/data';
import { AppError } from '../src/errors';
import type { Plan, SecureAggregation } from '../src/generated/plan';
import { buildFederatedSum, buildHistogram } from '../src/plans';
import { LocalRunner, runLocal, simulateLocal, type LocalRoundResult } from '../src/runner/local-runner';
import { cliPath } from './support/cluster';
import { THREE_SUMS, threeSumsOf, threeSumsPlan } from './support/secure-plans';

// run-local of a plan that masks its secure sums plays the SecAgg+ exchange between its in-memory clients:
// what it releases must be the plain sums over the clients whose masked input is in the sum, dropouts or not,
// and a round with too few clients left to unmask fails as on the server.

const N = 12;
const numbers = (...xs: number[]): ClientExamples => ({ count: xs.length, leaves: [Int32Array.from(xs)] });
/** Client k's examples: two values summing to s(k) in [0, 255], with some clients at the maxima. */
const s = (k: number) => (k % 5 === 0 ? 255 : (k * 37 + 11) % 256);
const clients = new Map(
  Array.from({ length: N }, (_, k) => [
    `c${String(k).padStart(2, '0')}`,
    numbers(s(k) - (s(k) >> 1), s(k) >> 1),
  ]),
);
const sumOf = (id: string) => [...clients.get(id)!.leaves[0]!].reduce((a, b) => a + b, 0);

/** The three secure sums of these clients, by hand. */
function threeSums(ids: readonly string[]): { v1: number; v2: number; v3: number } {
  const each = ids.map((id) => threeSumsOf(sumOf(id)));
  const total = (f: (x: { v1: number; v2: number; v3: number }) => number) =>
    each.reduce((a, x) => a + f(x), 0);
  return { v1: total((x) => x.v1), v2: total((x) => x.v2), v3: total((x) => x.v3) % THREE_SUMS.modulus };
}

const plan = (secure: SecureAggregation, minReports = 6): Plan =>
  threeSumsPlan(
    'run-local-secagg',
    {
      rounds: 2,
      target_clients: N,
      min_reports: minReports,
      selection_timeout_s: 60,
      reporting_deadline_s: 240,
    },
    secure,
  );
// Seven neighbours, four of them enough: three dropouts anywhere leave every neighbourhood four holders.
const HARARY: SecureAggregation = { protocol: 'secagg+', degree: 7, threshold: 4 };

beforeAll(() => initBackend());

/** Rejects with an AppError; returns it. */
async function appError(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

describe('simulateRound of a SecAgg plan', () => {
  it.each<[string, SecureAggregation]>([
    ['secagg+ with the graph the threat model gives', { protocol: 'secagg+' }],
    ['secagg+ on a Harary graph of degree 7', HARARY],
    ['secagg (the complete graph)', { protocol: 'secagg' }],
  ])('%s, nobody dropping: the exact sums of all sampled clients, as runRound', async (_, secure) => {
    const simulated = await simulateLocal(plan(secure), clients, { seed: 4 });
    const plain = runLocal(plan(secure), clients, { seed: 4 });
    expect(simulated.map((r) => r.output)).toEqual(plain.map((r) => r.output));
    for (const r of simulated) {
      expect(r.participants).toBe(N);
      expect(r.output).toEqual(threeSums(r.clients));
      expect(r.secureAggregation).toMatchObject({
        protocol: secure.protocol,
        advertised: N,
        shared: N,
        unmasked: N,
        droppedAfterShares: [],
        droppedAfterUpload: [],
      });
    }
  });

  it('with clients leaving after their shares and after their upload: the sums of those whose upload is in', async () => {
    const results = await simulateLocal(plan(HARARY), clients, {
      seed: 9,
      secAggDropouts: { afterShares: 1 / N, afterUpload: 2 / N },
    });
    for (const r of results) {
      const sa = r.secureAggregation!;
      expect(sa.droppedAfterShares).toHaveLength(1);
      expect(sa.droppedAfterUpload).toHaveLength(2);
      expect(sa.unmasked).toBe(N - 3);
      // Those leaving after sharing send nothing; those leaving after their upload are in the sum (U3).
      expect(r.clients).toHaveLength(N - 1);
      expect(r.clients).not.toContain(sa.droppedAfterShares[0]);
      expect(r.clients).toEqual(expect.arrayContaining([...sa.droppedAfterUpload]));
      expect(r.output).toEqual(threeSums(r.clients));
      // The plain computation over exactly those clients agrees.
      const survivors = new Map(r.clients.map((id) => [id, clients.get(id)!]));
      const [alone] = runLocal(
        { ...plan(HARARY), schedule: { ...plan(HARARY).schedule, rounds: 1, target_clients: N - 1 } },
        survivors,
      );
      expect(alone!.output).toEqual(r.output);
    }
    // Dropouts are drawn per round.
    expect(results[0]!.secureAggregation!.droppedAfterUpload).not.toEqual(
      results[1]!.secureAggregation!.droppedAfterUpload,
    );
  });

  it('a plan with a plain aggregate too: U and the secure sums cover the same clients', async () => {
    const library = buildHistogram({
      bins: 4,
      secure: true,
      maxInput: 2,
      targetClients: N,
      minReports: 6,
      rounds: 1,
    });
    const hist = { ...library, schedule: { ...library.schedule, secure_aggregation: HARARY } };
    const data = new Map([...clients.keys()].map((id, k) => [id, numbers(k % 4, (k * 3) % 5, 1, 1)]));
    const [r] = await simulateLocal(hist, data, {
      seed: 2,
      secAggDropouts: { afterShares: 1 / N, afterUpload: 2 / N },
    });
    expect(r!.participants).toBe(N - 1);
    // Each client's count per bin is clipped to max_input 2; the value 4 is outside the bins.
    const counts = [0, 0, 0, 0];
    for (const id of r!.clients) {
      const own = [0, 0, 0, 0];
      for (const v of data.get(id)!.leaves[0]!) if (v < 4) own[v]! += 1;
      own.forEach((c, bin) => (counts[bin]! += Math.min(c, 2)));
    }
    expect(r!.output).toEqual({ counts, clients: N - 1 });
  });

  it('the same seed draws the same dropouts', async () => {
    const run = () =>
      simulateLocal(plan(HARARY), clients, {
        seed: 3,
        secAggDropouts: { afterShares: 0.1, afterUpload: 0.1 },
      });
    const [a, b] = [await run(), await run()];
    expect(a.map((r) => r.secureAggregation)).toEqual(b.map((r) => r.secureAggregation));
    expect(a.map((r) => r.output)).toEqual(b.map((r) => r.output));
  });
});

describe('too many dropouts fail the round as the server would', () => {
  it.each([
    // Nine of twelve do not answer the unmasking request: three shares of anyone, four needed.
    ['after the upload', { afterUpload: 0.75 }, 6],
    // Three uploads: no survivor has four neighbours left to hold its shares.
    ['after the shares', { afterShares: 0.75 }, 3],
  ])(
    '%s: SECAGG_BELOW_THRESHOLD, the state stays, no tensor is left behind',
    async (_, dropouts, minReports) => {
      const runner = new LocalRunner(plan(HARARY, minReports), clients, {
        seed: 1,
        secAggDropouts: dropouts,
      });
      const tensors = tf.memory().numTensors;
      const e = await appError(runner.simulateRound());
      expect(e.code).toBe('SECAGG_BELOW_THRESHOLD');
      expect(e.message).toMatch(/^round 1: secure aggregation: too few/);
      expect(tf.memory().numTensors).toBe(tensors);
      // The round did not happen: the next try is round 1 again (and fails alike).
      expect((await appError(runner.simulateRound())).message).toMatch(/^round 1:/);
      runner.dispose();
    },
  );

  it('fewer uploads than min_reports: the round fails before unmasking', async () => {
    const runner = new LocalRunner(plan(HARARY, 10), clients, { secAggDropouts: { afterShares: 0.25 } });
    expect((await appError(runner.simulateRound())).message).toMatch(
      /9 clients in its aggregate, fewer than/,
    );
    runner.dispose();
  });
});

describe('SecAgg dropout options', () => {
  it('are refused for a plan that does not mask its sums, out of [0, 1], or over the cohort together', () => {
    const plain = buildFederatedSum({ targetClients: N });
    expect(() => new LocalRunner(plain, clients, { secAggDropouts: { afterShares: 0.1 } })).toThrow(
      /need a plan that masks its secure sums/,
    );
    expect(() => new LocalRunner(plan(HARARY), clients, { secAggDropouts: { afterUpload: 1.5 } })).toThrow(
      /afterUpload must be a fraction in \[0, 1\], got 1.5/,
    );
    expect(
      () =>
        new LocalRunner(plan(HARARY), clients, { secAggDropouts: { afterShares: 0.6, afterUpload: 0.6 } }),
    ).toThrow(/more than the cohort/);
  });

  it('runRound, which sums in the clear, refuses to ignore them', () => {
    const runner = new LocalRunner(plan(HARARY), clients, { secAggDropouts: { afterShares: 0.1 } });
    expect(() => runner.runRound()).toThrow(/simulated by simulateRound/);
    runner.dispose();
  });
});

describe('roundhouse run-local (built CLI) of a secure federated sum', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-run-local-secagg-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[]) =>
    execFileSync(process.execPath, [cliPath, 'run-local', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  it('releases the sum of the clients whose upload is in, with --secagg-drop-after-shares and -upload', () => {
    const library = buildFederatedSum({ secure: true, targetClients: 10, minReports: 5, rounds: 2 });
    const sumPlan = { ...library, schedule: { ...library.schedule, secure_aggregation: HARARY } };
    const data = new Map([...clients].slice(0, 10));
    fs.writeFileSync(path.join(dir, 'plan.json'), JSON.stringify(sumPlan));
    fs.writeFileSync(path.join(dir, 'clients.csv'), writeClientsCsv(data, sumPlan.client_data.element));
    const out = run([
      path.join(dir, 'plan.json'),
      '--data',
      path.join(dir, 'clients.csv'),
      '--secagg-drop-after-shares',
      '0.2',
      '--secagg-drop-after-upload',
      '0.1',
      '--json',
    ]);
    const rounds = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LocalRoundResult);
    expect(rounds).toHaveLength(2);
    for (const r of rounds) {
      expect(r.secureAggregation).toMatchObject({
        protocol: 'secagg+',
        advertised: 10,
        shared: 10,
        unmasked: 7,
      });
      expect(r.participants).toBe(8);
      expect(r.output).toEqual({ sum: r.clients.reduce((a, id) => a + sumOf(id), 0) });
    }
    // The same run in plain words.
    const text = run([path.join(dir, 'plan.json'), '--data', path.join(dir, 'clients.csv'), '--rounds', '1']);
    expect(text).toMatch(/participants=10 .*secagg\+\(degree=7 threshold=4 shared=10 .*unmasked=10\)/);
  });

  it('refuses dropouts out of range, and for a plan without SecAgg', () => {
    const fail = (args: string[]) => {
      try {
        run(args);
      } catch (e) {
        return String((e as { stderr: string }).stderr);
      }
      throw new Error('run-local did not fail');
    };
    const csv = path.join(dir, 'plain.csv');
    const plainPlan = buildFederatedSum({ targetClients: 2, rounds: 1 });
    fs.writeFileSync(path.join(dir, 'plain.json'), JSON.stringify(plainPlan));
    fs.writeFileSync(csv, writeClientsCsv(new Map([...clients].slice(0, 2)), plainPlan.client_data.element));
    expect(fail([path.join(dir, 'plain.json'), '--data', csv, '--secagg-drop-after-upload', '2'])).toMatch(
      /--secagg-drop-after-upload must be a fraction in \[0, 1\], got "2"/,
    );
    expect(fail([path.join(dir, 'plain.json'), '--data', csv, '--secagg-drop-after-upload', '0.5'])).toMatch(
      /SecAgg dropouts need a plan that masks its secure sums/,
    );
  });
});
