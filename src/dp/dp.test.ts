import seedrandom from 'seedrandom';
import { foldUploads } from '../aggregation/fold';
import { encodeBundle } from '../codec';
import { initBackend } from '../compute/backend';
import { DEFAULT_LIMITS } from '../compute/limits';
import { tensorLeaves } from '../compute/types';
import { structValue, disposeValue } from '../compute/value';
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors';
import { dpOf } from '../plan/dp-check';
import { checkPlan } from '../plan/validate';
import { finalizeRound } from '../rounds/finalize-step';
import { LocalRunner } from '../runner/local-runner';
import { buildDpTestPlan, clientsWithNorms, sampleStd, planProblems } from '../../test/support/dp-plans';
import { epsilonAfter } from './accountant';

// The server's differential privacy on small plans (test/support/dp-plans.ts): the noise through the
// server's own fold and finalize, adaptive clipping and the budget through the local runner, which runs
// the same mechanism (src/dp/mechanism.ts).

beforeAll(() => initBackend());

const EMPTY_PARAMS = { bitwidth: [], max_input: [], modulus: [] };

describe('the noise', () => {
  it('has standard deviation z x C per coordinate (200 rounds of a zero-update plan through fold and finalize)', async () => {
    const z = 1.5;
    const C = 2;
    const dims = 50;
    const plan = buildDpTestPlan({
      dims,
      zeroRecord: true,
      rounds: 200,
      dp: { clip: { norm: C }, noise_multiplier: z, target: { epsilon: 1000, delta: 1e-5 } },
    });
    const checked = checkPlan(plan);
    const uploadType = checked.signatures.work!.result;
    const empty = structValue([]);
    const U = structValue([['record', tf.zeros([dims])]]);
    const upload = encodeBundle(
      structValue([
        [undefined, U],
        [undefined, empty],
        [undefined, empty],
        [undefined, empty],
      ]),
      uploadType,
    );
    disposeValue(U);
    const state = encodeBundle(tf.zeros([dims]), checked.types.S);
    const noise: number[] = [];
    for (let round = 1; round <= 200; round++) {
      const folded = foldUploads(
        checked,
        {
          round,
          secureParams: EMPTY_PARAMS,
          partial: undefined,
          uploads: [1, 2, 3].map((k) => ({ task: `t${k}`, bytes: upload })),
        },
        DEFAULT_LIMITS,
      );
      expect(folded.clients).toBe(3);
      const result = await finalizeRound(
        checked,
        { round, secureParams: EMPTY_PARAMS, partials: [folded.partial], state, minAggregate: 1, dpClip: C },
        DEFAULT_LIMITS,
      );
      if (!result.ok) throw new Error(result.error);
      const output = result.output as { record: number[]; clients: number };
      expect(output.clients).toBe(3);
      noise.push(...output.record);
      expect(result.dp).toEqual({ clip: C, nextClip: C });
    }
    const measured = sampleStd(noise);
    console.log(`noise over 200 rounds x ${dims} coordinates: std ${measured.toFixed(4)}, z x C = ${z * C}`);
    expect(Math.abs(measured / (z * C) - 1)).toBeLessThan(0.05);
  });

  it('is not there with z = 0: the clipped sum is exact', () => {
    const plan = buildDpTestPlan({
      rounds: 1,
      // No noise, no privacy: the spending is tracked (infinite), with no target to stop at.
      dp: { clip: { norm: 3 }, noise_multiplier: 0, target: { delta: 1e-5 } },
    });
    const runner = new LocalRunner(plan, clientsWithNorms([1, 2, 10]));
    try {
      const [r] = [...runner.rounds()];
      // 10 is clipped to 3 by the server, however the plan's own accumulate summed it.
      expect((r!.output as { record: number[] }).record[0]).toBeCloseTo(1 + 2 + 3, 5);
      expect(r!.dp).toEqual({ clip: 3, epsilon: Infinity, next_clip: 3 });
    } finally {
      runner.dispose();
    }
  });
});

describe('adaptive clipping', () => {
  it('brings the clip to the target quantile of the norms within 10% after 50 rounds', () => {
    // Norms lognormal(0, 0.5): median 1, 0.75-quantile exp(0.5 x 0.6745) = 1.401.
    const rng = seedrandom('norms');
    const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    const norms = Array.from({ length: 400 }, () => Math.exp(0.5 * gauss()));
    const sorted = [...norms].sort((a, b) => a - b);
    for (const quantile of [0.5, 0.75]) {
      const truth = sorted[Math.floor(quantile * sorted.length)]!;
      const plan = buildDpTestPlan({
        rounds: 50,
        targetClients: 100,
        dp: {
          clip: { adaptive: { target_quantile: quantile } },
          noise_multiplier: 0.5,
          target: { epsilon: 1000, delta: 1e-5 },
        },
      });
      const runner = new LocalRunner(plan, clientsWithNorms(norms), { seed: 7 });
      try {
        const results = [...runner.rounds()];
        expect(results).toHaveLength(50);
        expect(results[0]!.dp!.clip).toBeCloseTo(0.1, 6);
        const last = results[49]!.dp!.next_clip;
        console.log(
          `adaptive clip, quantile ${quantile}: ${last.toFixed(4)} after 50 rounds, truth ${truth.toFixed(4)}`,
        );
        expect(Math.abs(last / truth - 1)).toBeLessThan(0.1);
        // Each round's clip is the one the one before chose.
        for (let i = 1; i < 50; i++) expect(results[i]!.dp!.clip).toBe(results[i - 1]!.dp!.next_clip);
      } finally {
        runner.dispose();
      }
    }
  });

  it('adjusts the record noise so that both sums spend what z does', () => {
    const plan = buildDpTestPlan({
      targetClients: 20,
      dp: { clip: { adaptive: {} }, noise_multiplier: 1, target: { epsilon: 10, delta: 1e-5 } },
    });
    const dp = dpOf(checkPlan(plan))!;
    // clipped_count_stddev defaults to 0.05 x 20 = 1: z' = (1 - 1/4)^(-1/2).
    expect(dp.adaptive!.countStddev).toBeCloseTo(1, 12);
    expect(dp.recordNoiseMultiplier).toBeCloseTo((1 - 0.25) ** -0.5, 12);
    expect(dp.initialClip).toBe(0.1);
  });
});

describe('the budget', () => {
  it('runs exactly the rounds that fit the target epsilon and says why it stopped', () => {
    const z = 2;
    const delta = 1e-5;
    const a = { samplingRate: 1, noiseMultiplier: z, delta };
    const e3 = epsilonAfter(3, a).epsilon;
    const e4 = epsilonAfter(4, a).epsilon;
    const plan = buildDpTestPlan({
      rounds: 10,
      dp: { clip: { norm: 1 }, noise_multiplier: z, target: { epsilon: (e3 + e4) / 2, delta } },
    });
    const runner = new LocalRunner(plan, clientsWithNorms([1, 1, 1]));
    try {
      const results = [...runner.rounds()];
      expect(results).toHaveLength(3);
      expect(results.map((r) => r.dp!.epsilon)).toEqual([1, 2, 3].map((n) => epsilonAfter(n, a).epsilon));
      expect(runner.stopReason).toMatch(/^privacy budget: round 4 would take epsilon to .*past the target/);
    } finally {
      runner.dispose();
    }
  });

  it('refuses a plan whose first round is already over its target', () => {
    const plan = buildDpTestPlan({
      dp: { clip: { norm: 1 }, noise_multiplier: 0.5, target: { epsilon: 0.1, delta: 1e-5 } },
    });
    expect(() => new LocalRunner(plan, clientsWithNorms([1, 1, 1]))).toThrow(
      expect.objectContaining({ code: 'PLAN_OUT_OF_BOUNDS' }) as AppError,
    );
  });

  it('charges subsampled rounds at clients_per_round / population_size', () => {
    const plan = buildDpTestPlan({
      targetClients: 10,
      dp: {
        clip: { norm: 1 },
        noise_multiplier: 1,
        target: { epsilon: 10, delta: 1e-5 },
        accounting: 'subsampled',
        population_size: 1000,
      },
    });
    expect(dpOf(checkPlan(plan))!.samplingRate).toBe(0.01);
  });
});

describe('a dp section that would release something without noise is refused', () => {
  const base = () =>
    buildDpTestPlan({ dp: { clip: { norm: 1 }, noise_multiplier: 1, target: { epsilon: 10, delta: 1e-5 } } });
  const adaptive = () =>
    buildDpTestPlan({
      targetClients: 20,
      dp: { clip: { adaptive: {} }, noise_multiplier: 1, target: { epsilon: 10, delta: 1e-5 } },
    });

  it('a record path naming nothing', () => {
    const plan = base();
    expect(planProblems({ ...plan, dp: { ...plan.dp!, record: 'nosuch' } })).toContainEqual({
      path: '/dp/record',
      message: expect.stringMatching(/"nosuch" names no tensor of U/) as string,
    });
  });

  it('a U or A with tensors besides the record, indicator and count', () => {
    // The adaptive plan's U and A have `clipped`; without an indicator it is an unnoised extra.
    const plan = adaptive();
    const { indicator: _, ...dp } = plan.dp!;
    const found = planProblems({ ...plan, dp: { ...dp, clip: { norm: 1 } } });
    expect(found).toContainEqual({
      path: '/dp/record',
      message: expect.stringMatching(
        /U may hold only the record and the indicator; it also has clipped/,
      ) as string,
    });
    expect(found).toContainEqual({
      path: '/dp/record',
      message: expect.stringMatching(/A may hold only .* it also has clipped/) as string,
    });
  });

  it('adaptive clipping without an indicator or a broadcast clip, or with z >= 2 clipped_count_stddev', () => {
    const plan = adaptive();
    const { indicator: _i, clip_broadcast: _c, ...dp } = plan.dp!;
    const paths = planProblems({ ...plan, dp: { ...dp, noise_multiplier: 3 } }).map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/dp/indicator', '/dp/clip_broadcast', '/dp/noise_multiplier']),
    );
  });

  it('both or neither of clip norm and adaptive; subsampled accounting without a population size', () => {
    const plan = base();
    const found = planProblems({
      ...plan,
      dp: { ...plan.dp!, clip: {}, accounting: 'subsampled' },
    }).map((p) => p.path);
    expect(found).toEqual(expect.arrayContaining(['/dp/clip', '/dp/population_size']));
  });

  it('a clients count that is not an int32 scalar of A', () => {
    const plan = base();
    expect(planProblems({ ...plan, dp: { ...plan.dp!, clients_count: 'record' } })).toContainEqual({
      path: '/dp/clients_count',
      message: expect.stringMatching(/must name a int32 scalar in A/) as string,
    });
  });
});

describe('the server clips every record', () => {
  it('scales an upload down to the clip whatever the plan accumulates', () => {
    const plan = buildDpTestPlan({
      dims: 3,
      dp: { clip: { norm: 2 }, noise_multiplier: 0, target: { delta: 1e-5 } },
    });
    const checked = checkPlan(plan);
    expect(tensorLeaves(checked.types.U)).toHaveLength(1);
    const runner = new LocalRunner(plan, clientsWithNorms([100, 100, 100]), { rounds: 1 });
    try {
      const [r] = [...runner.rounds()];
      expect((r!.output as { record: number[] }).record).toEqual([6, 0, 0]);
    } finally {
      runner.dispose();
    }
  });
});
