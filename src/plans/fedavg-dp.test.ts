import * as tf from '@tensorflow/tfjs';
import { Interpreter } from '../compute/interpreter';
import { formatType, tensorLeaves } from '../compute/types';
import { disposeValue, sequenceValue, structValue, type Value } from '../compute/value';
import { valueToJson, type JsonValue } from '../compute/value-json';
import { digitsClientExamples, loadDigits, partitionNonIid, trainTestSplit } from '../data/digits';
import { epsilonAfter } from '../dp/accountant';
import type { ClientExamples } from '../data';
import type { Plan } from '../generated/plan';
import { checkPlan } from '../plan/validate';
import { LocalRunner, type LocalRoundResult } from '../runner/local-runner';
import { buildFedAvg, type FedAvgOptions } from './fedavg';

// A model with layers [2, 2] and one batch of three examples (as in fedavg-secure.test.ts).
const startModel = (): Value =>
  structValue([
    [
      'w0',
      tf.tensor2d([
        [0.1, -0.1],
        [0.2, 0.3],
      ]),
    ],
    ['b0', tf.tensor1d([0, 0])],
  ]);
const batch = (): Value =>
  structValue([
    [
      'x',
      tf.tensor2d([
        [1, 0],
        [0, 1],
        [1, 1],
      ]),
    ],
    ['y', tf.tensor1d([0, 1, 0], 'int32')],
  ]);

/** `work` on the batch from startModel with the given broadcast clip (none: a plan without dp); U as JSON. */
function runWork(plan: Plan, clip?: number): Record<string, JsonValue> {
  const interp = new Interpreter(plan.functions ?? {});
  const broadcast: [string, Value][] = [['model', startModel()]];
  if (clip !== undefined) broadcast.push(['clip', tf.scalar(clip)]);
  const arg = structValue([
    [undefined, sequenceValue([batch()])],
    [undefined, structValue(broadcast)],
  ]);
  const out = interp.run(plan.computations.work, arg, { round: 1 });
  try {
    return (valueToJson(out) as JsonValue[])[0] as Record<string, JsonValue>;
  } finally {
    disposeValue(out);
    disposeValue(arg);
  }
}

const flat = (v: JsonValue): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);
const leavesOf = (m: JsonValue): number[] => Object.values(m as Record<string, JsonValue>).flatMap(flat);

const DP: Partial<FedAvgOptions> = { dp: true, clip: 1, noiseMultiplier: 1, targetEpsilon: 10 };

describe('fedavg --dp: the plan', () => {
  it('U holds only the model change, A adds the count, X releases only the count; the dp section', () => {
    const plan = buildFedAvg({ ...DP, layers: [2, 2] });
    const { types } = checkPlan(plan);
    const M = '<w0=float32[2,2],b0=float32[2]>';
    expect(formatType(types.C)).toBe(`<model=${M},clip=float32>`);
    expect(formatType(types.U)).toBe(`<delta=${M}>`);
    expect(formatType(types.A)).toBe(`<delta=${M},clients=int32>`);
    expect(formatType(types.R)).toBe(`<delta=${M},clients=int32>`);
    expect(formatType(types.X)).toBe('<clients=int32>');
    for (const v of types.V) expect(tensorLeaves(v)).toHaveLength(0);
    expect(plan.name).toBe('fedavg-dp');
    expect(plan.update_bounds).toBeUndefined();
    expect(plan.schedule.secure_aggregation).toBeUndefined();
    expect(plan.dp).toEqual({
      record: 'delta',
      clip: { norm: 1 },
      clients_count: 'clients',
      clip_broadcast: 'clip',
      noise_multiplier: 1,
      clients_per_round: 20,
      target: { epsilon: 10, delta: 1e-5 },
      accounting: 'no-amplification',
    });
    // z = 1 without amplification at delta 1e-5: 3 rounds fit within epsilon 10, 4 do not.
    const account = { samplingRate: 1, noiseMultiplier: 1, delta: 1e-5 };
    expect(epsilonAfter(3, account).epsilon).toBeLessThanOrEqual(10);
    expect(epsilonAfter(4, account).epsilon).toBeGreaterThan(10);
    expect(plan.description).toMatch(
      /noise \(z = 1\).*target epsilon 10 at delta 0\.00001 \(no-amplification\), which covers 3 of 50 rounds\.$/,
    );
  });

  it('adaptive clipping adds the indicator to U and A and leaves unset parameters to the server', () => {
    const plan = buildFedAvg({
      ...DP,
      layers: [2, 2],
      clip: 0.5,
      adaptiveClip: true,
      targetQuantile: 0.7,
      targetDelta: 1e-6,
      accounting: 'subsampled',
      populationSize: 1000,
    });
    const { types } = checkPlan(plan);
    const M = '<w0=float32[2,2],b0=float32[2]>';
    expect(formatType(types.U)).toBe(`<delta=${M},clipped=float32>`);
    expect(formatType(types.A)).toBe(`<delta=${M},clipped=float32,clients=int32>`);
    expect(plan.dp).toMatchObject({
      clip: { adaptive: { initial_norm: 0.5, target_quantile: 0.7 } },
      indicator: 'clipped',
      target: { epsilon: 10, delta: 1e-6 },
      accounting: 'subsampled',
      population_size: 1000,
    });
    // Learning rate and count noise are the server's defaults, so the plan does not name them.
    expect(Object.keys(plan.dp!.clip.adaptive!)).toEqual(['initial_norm', 'target_quantile']);
  });

  it('work scales the change down to the broadcast clip and reports whether it had to', () => {
    const common = { layers: [2, 2], epochs: 2, clientLr: 5 };
    const change = leavesOf(runWork(buildFedAvg({ ...common, weighting: 'uniform' })).delta!);
    const norm = Math.hypot(...change);
    expect(norm).toBeGreaterThan(0.1);
    const plan = buildFedAvg({ ...common, ...DP, adaptiveClip: true });
    // A clip above the norm leaves the change as it is.
    const loose = runWork(plan, 1e6);
    leavesOf(loose.delta!).forEach((d, i) => expect(d).toBeCloseTo(change[i]!, 6));
    expect(loose.clipped).toBe(0.5);
    // A clip of a quarter of the norm scales every coordinate by a quarter: the norm becomes the clip.
    const tight = runWork(plan, norm / 4);
    leavesOf(tight.delta!).forEach((d, i) => expect(d).toBeCloseTo(change[i]! / 4, 6));
    expect(Math.hypot(...leavesOf(tight.delta!))).toBeCloseTo(norm / 4, 5);
    expect(tight.clipped).toBe(-0.5);
  });

  it.each<[Partial<FedAvgOptions>, RegExp]>([
    [{ ...DP, weighting: 'examples' }, /^option --weighting: examples does not work with --dp/],
    [{ ...DP, secure: true, adaptiveClip: true }, /^option --adaptive-clip: does not work with --secure/],
    [{ dp: true, noiseMultiplier: 1, targetEpsilon: 1 }, /^option --clip: --dp needs the L2 clip norm/],
    [{ dp: true, clip: 1, targetEpsilon: 1 }, /^option --noise-multiplier: --dp needs the noise multiplier/],
    [{ dp: true, clip: 1, noiseMultiplier: 1 }, /^option --target-epsilon: --dp needs the privacy budget/],
    [
      { ...DP, noiseMultiplier: 0 },
      /^option --target-epsilon: with --noise-multiplier 0 .* infinite epsilon/,
    ],
    [{ clip: 1 }, /^option --clip: only with --dp/],
    [{ noiseMultiplier: 1 }, /^option --noise-multiplier: only with --dp/],
    [{ adaptiveClip: true }, /^option --adaptive-clip: only with --dp/],
    [{ targetDelta: 1e-6 }, /^option --target-delta: only with --dp/],
    [{ ...DP, targetQuantile: 0.6 }, /^option --target-quantile: only with --adaptive-clip/],
    [{ ...DP, clippedCountStddev: 3 }, /^option --clipped-count-stddev: only with --adaptive-clip/],
    [
      { ...DP, adaptiveClip: true, noiseMultiplier: 2 },
      /^option --noise-multiplier: with --adaptive-clip it must be below 2 x --clipped-count-stddev \(1, 0\.05 x --target-clients\), that is below 2/,
    ],
    [{ ...DP, accounting: 'subsampled' }, /^option --population-size: --accounting subsampled needs/],
    [
      { ...DP, accounting: 'subsampled', populationSize: 10 },
      /^option --population-size: 10 devices is fewer than --target-clients 20/,
    ],
    [{ ...DP, populationSize: 1000 }, /^option --population-size: only with --accounting subsampled/],
    [
      { ...DP, targetEpsilon: 0.5 },
      /^option --target-epsilon: privacy budget: round 1 would take epsilon to .* past the target 0\.5/,
    ],
    [{ ...DP, targetDelta: 1 }, /^option --target-delta: 1 must be less than 1/],
    [{ ...DP, clip: 0 }, /^option --clip: 0 must be more than 0/],
  ])('refuses %j', (options, message) => {
    let error: unknown;
    try {
      buildFedAvg(options);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(message) });
  });
});

/** The digits split of fedavg-secure.test.ts: 100 non-IID clients and a held-out fifth. */
function digitsClients(): { clients: Map<string, ClientExamples>; heldOut: ClientExamples } {
  const { train, test } = trainTestSplit(loadDigits(), 0.2, 1);
  const parts = partitionNonIid(train.y, 100, 2, 1);
  const clients = new Map(
    parts.map((idx, i) => [`client-${String(i).padStart(3, '0')}`, digitsClientExamples(train, idx)]),
  );
  const heldOut = digitsClientExamples(
    test,
    Array.from({ length: test.n }, (_, i) => i),
  );
  return { clients, heldOut };
}

/** Runs a plan's rounds; the results and the final state as JSON. */
function runAll(
  plan: Plan,
  clients: ReadonlyMap<string, ClientExamples>,
  heldOut?: ClientExamples,
): { results: LocalRoundResult[]; state: JsonValue; stopReason?: string } {
  const runner = new LocalRunner(plan, clients, heldOut ? { evaluationData: heldOut } : {});
  try {
    const results = [...runner.rounds()];
    return { results, state: valueToJson(runner.state()), stopReason: runner.stopReason };
  } finally {
    runner.dispose();
  }
}

describe('fedavg --dp --secure', () => {
  it('sends the clipped change through secure_sum_bitwidth; the dp section names it, its scale and the count', () => {
    const plan = buildFedAvg({ ...DP, secure: true, clip: 0.5 });
    const checked = checkPlan(plan);
    expect(plan.name).toBe('fedavg-secure-dp');
    expect(tensorLeaves(checked.types.U)).toHaveLength(0);
    expect(formatType(checked.types.C)).not.toMatch(/clip/);
    expect(tensorLeaves(checked.types.V[0]).map((l) => l.path.join('/'))).toEqual([
      'delta/w0',
      'delta/b0',
      'delta/w1',
      'delta/b1',
      'clients',
    ]);
    // 16 bits: h = 2^15 - 1 levels per clip (0.5) of a coordinate.
    expect(plan.dp).toMatchObject({
      record: 'delta',
      secure_sum: 'bitwidth',
      scale: (2 ** 15 - 1) / 0.5,
      clients_count: 'clients',
      clip: { norm: 0.5 },
    });
    expect(plan.dp!.clip_broadcast).toBeUndefined();
    expect(plan.schedule.secure_aggregation).toMatchObject({ protocol: 'secagg+' });
  });

  it('with no noise it is secure FedAvg with the clip as both norm and coordinate range', async () => {
    const { clients } = digitsClients();
    const options = { rounds: 2, secure: true, secureAggregation: 'none' as const };
    const secure = runAll(buildFedAvg({ ...options, maxNorm: 1, clipRange: 1 }), clients);
    const dp = runAll(buildFedAvg({ ...options, dp: true, clip: 1, noiseMultiplier: 0 }), clients);
    expect(dp.results.map((r) => r.output)).toEqual([{ clients: 20 }, { clients: 20 }]);
    expect(dp.results.map((r) => r.dp?.clip)).toEqual([1, 1]);
    type State = { model: JsonValue };
    const [x, y] = [leavesOf((dp.state as State).model), leavesOf((secure.state as State).model)];
    expect(Math.max(...x.map((v, i) => Math.abs(v - y[i]!)))).toBeLessThan(1e-6);
  });

  it('under SecAgg+ the noise lands on the unmasked sum: a noisy model, every round charged', async () => {
    const { clients } = digitsClients();
    const z = 1;
    const plan = buildFedAvg({
      rounds: 2,
      secure: true,
      dp: true,
      clip: 1,
      noiseMultiplier: z,
      targetEpsilon: 100,
    });
    const quiet = buildFedAvg({ rounds: 2, secure: true, dp: true, clip: 1, noiseMultiplier: 0 });
    const stateOf = async (p: Plan): Promise<number[]> => {
      const runner = new LocalRunner(p, clients);
      try {
        const results: LocalRoundResult[] = [];
        for await (const r of runner.simulateRounds()) results.push(r);
        expect(results.every((r) => r.secureAggregation !== undefined)).toBe(true);
        if (p === plan)
          expect(results.map((r) => r.dp!.epsilon)).toEqual(
            [1, 2].map((n) => epsilonAfter(n, { samplingRate: 1, noiseMultiplier: z, delta: 1e-5 }).epsilon),
          );
        return leavesOf((valueToJson(runner.state()) as { model: JsonValue }).model);
      } finally {
        runner.dispose();
      }
    };
    const [noisy, clean] = [await stateOf(plan), await stateOf(quiet)];
    // The noise on the mean of 20 changes, std z x (clip + rounding) / 20 = 0.05 per coordinate, moves
    // the model well past the 1e-4 of the fixed-point grid.
    const moved = noisy.map((v, i) => Math.abs(v - clean[i]!));
    expect(Math.max(...moved)).toBeGreaterThan(0.05);
  });
});

describe('fedavg --dp on the digits data', () => {
  const { clients, heldOut } = digitsClients();
  const ROUNDS = 3;

  it('with no noise and a clip no change reaches, it is plain uniform FedAvg', () => {
    const plain = runAll(buildFedAvg({ rounds: ROUNDS, weighting: 'uniform' }), clients);
    const dp = runAll(buildFedAvg({ rounds: ROUNDS, dp: true, clip: 1e6, noiseMultiplier: 0 }), clients);
    expect(dp.results).toHaveLength(ROUNDS);
    // The server applied the mechanism, with the plan's clip and no privacy (no noise).
    expect(dp.results.map((r) => r.dp)).toEqual(
      Array.from({ length: ROUNDS }, () => ({ clip: 1e6, epsilon: Infinity, next_clip: 1e6 })),
    );
    dp.results.forEach((r, i) => {
      expect(r.output).toEqual({ clients: 20 });
      expect(r.clients).toEqual(plain.results[i]!.clients);
    });
    type State = { model: JsonValue; round: number };
    const [a, b] = [dp.state as State, plain.state as State];
    expect(a.round).toBe(ROUNDS);
    const [x, y] = [leavesOf(a.model), leavesOf(b.model)];
    expect(x).toHaveLength(64 * 32 + 32 + 32 * 10 + 10);
    const worst = Math.max(...x.map((v, i) => Math.abs(v - y[i]!)));
    expect(worst).toBeLessThan(1e-6);
    // The rounds moved the model: equality is not two unchanged initial states.
    const before = new LocalRunner(buildFedAvg({ weighting: 'uniform' }), clients);
    const initial = leavesOf((valueToJson(before.state()) as { model: JsonValue }).model);
    before.dispose();
    expect(Math.max(...x.map((v, i) => Math.abs(v - initial[i]!)))).toBeGreaterThan(0.01);
  });

  it('adaptive clipping raises a clip every client exceeds; the noise moves the model', () => {
    const plan = buildFedAvg({
      rounds: ROUNDS,
      dp: true,
      clip: 0.01,
      noiseMultiplier: 0.5,
      targetEpsilon: 100,
      adaptiveClip: true,
    });
    const { results } = runAll(plan, clients, heldOut);
    expect(results).toHaveLength(ROUNDS);
    // Honest clients change the model by an L2 norm of 0.5 or more a round, so every indicator is -0.5 and
    // the noisy unclipped fraction is near 0 (count noise 1 on a sum of -10): the clip grows by about
    // exp(0.2 x 0.5) a round. Had work reported the indicator the wrong way round, it would shrink.
    results.forEach((r) => {
      expect(r.dp!.unclipped_fraction!).toBeLessThan(0.3);
      expect(r.dp!.next_clip).toBeGreaterThan(r.dp!.clip * 1.05);
    });
    expect(results[1]!.dp!.clip).toBe(results[0]!.dp!.next_clip);
    expect(results.map((r) => r.dp!.epsilon)).toEqual(
      [...results.map((r) => r.dp!.epsilon)].sort((p, q) => p - q),
    );
  });

  it('stops at the round the target epsilon would not cover', () => {
    const account = { samplingRate: 1, noiseMultiplier: 2, delta: 1e-5 };
    const [two, three] = [2, 3].map((n) => epsilonAfter(n, account).epsilon) as [number, number];
    const plan = buildFedAvg({
      rounds: 5,
      dp: true,
      clip: 1,
      noiseMultiplier: 2,
      targetEpsilon: (two + three) / 2,
    });
    expect(plan.description).toMatch(/which covers 2 of 5 rounds/);
    const { results, stopReason } = runAll(plan, clients);
    expect(results).toHaveLength(2);
    expect(stopReason).toMatch(/round 3 would take epsilon/);
  });
});
