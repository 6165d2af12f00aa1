import { DEFAULT_LIMITS, limitsWith } from '../src/compute/limits';
import { appErrorOf } from '../src/app-error.jest';
import type { AppError } from '../src/errors';
import { planCosts } from '../src/plan/cost-check';
import { checkPlan } from '../src/plan/validate';
import { PLAN_LIBRARY } from '../src/plans';
import basePlan from './fixtures/sum-plan.json';
import {
  BOMB_CONST_INDEX,
  BOMB_ELEMENTS,
  LARGE_UPDATE_ELEMENTS,
  LARGE_UPDATE_NODE_INDEX,
  largeUpdatePlan,
  MATMUL_REPEAT_INDEX,
  matmulLoopPlan,
  memoryBombPlan,
  reshapeFailurePlan,
} from './support/costly-plans';
import { vectorSumPlan } from './support/plans';

// checkPlan runs the cost model and the schedule bounds for the builder, the CLI and the server alike; the
// same checks over HTTP are in plan-bounds-api.test.ts.

function refusal(plan: unknown, limits = DEFAULT_LIMITS): AppError {
  return appErrorOf(() => checkPlan(plan, limits));
}

const withSchedule = (schedule: Record<string, number>) => ({
  ...structuredClone(basePlan),
  schedule: { ...basePlan.schedule, ...schedule },
});

/** Every plan the library builds with its defaults, and the variants that change what runs. */
const libraryPlans: [string, unknown][] = [
  ...Object.entries(PLAN_LIBRARY).map(([name, lib]): [string, unknown] => [name, lib.build({})]),
  ['fedavg adam', PLAN_LIBRARY.fedavg!.build({ optimizer: 'adam', momentum: 0.9 })],
  ['federated-sum secure', PLAN_LIBRARY['federated-sum']!.build({ secure: true })],
  ['histogram secure', PLAN_LIBRARY.histogram!.build({ secure: true })],
  ['fixture sum-plan', basePlan],
  ['vector sum 1000', vectorSumPlan(1000, { rounds: 1, target_clients: 2 })],
];

describe('the cost model at checkPlan', () => {
  test.each(libraryPlans)('%s is accepted with the default limits, far below them', (_name, plan) => {
    expect(() => checkPlan(plan)).not.toThrow();
    const checked = checkPlan(plan);
    for (const { client, cost } of planCosts(checked.plan, checked.types, DEFAULT_LIMITS)) {
      const [bytes, flops] = client
        ? [DEFAULT_LIMITS.maxClientPeakBytes, DEFAULT_LIMITS.maxClientFlops]
        : [DEFAULT_LIMITS.maxPeakBytes, DEFAULT_LIMITS.maxFlops];
      expect(cost.peakBytes).toBeLessThan(bytes / 100);
      expect(cost.flops).toBeLessThan(flops / 100);
    }
  });

  test('the memory bomb (float32 [16777216] and 100 adds) is refused at its largest node', () => {
    const e = refusal(memoryBombPlan());
    expect(e).toMatchObject({ code: 'PLAN_OUT_OF_BOUNDS', status: 422 });
    const bytes = 101 * BOMB_ELEMENTS * 4 + 4 * 5; // const + 100 adds, then junk, s, s2, c, one
    expect(e.details).toEqual([
      {
        path: `/computations/accumulate/nodes/${BOMB_CONST_INDEX}`,
        message: expect.stringMatching(
          new RegExp(
            `^accumulate: estimated peak memory of 6\\.78 GB \\(${bytes} bytes\\) per evaluation is more than the limit of 1\\.07 GB \\(1073741824 bytes\\) \\(LIMIT_MAX_PEAK_BYTES\\); the largest part is node "big" \\(const\\)`,
          ),
        ),
      },
      {
        // 1.7e9 elementwise FLOPs is over the default too (about 4 s of WASM adds on a loaded 2-core machine)
        path: `/computations/accumulate/nodes/${BOMB_CONST_INDEX}`,
        message: expect.stringMatching(
          /^accumulate: estimated 1\.71e\+9 FLOPs per evaluation is more than the limit of 1\.00e\+9/,
        ),
      },
    ]);
  });

  test('the matmul loop (40 x 2048x2048 matmul) is refused at its repeat node', () => {
    const e = refusal(matmulLoopPlan());
    expect(e).toMatchObject({ code: 'PLAN_OUT_OF_BOUNDS', status: 422 });
    expect(e.details).toEqual([
      {
        path: `/computations/accumulate/nodes/${MATMUL_REPEAT_INDEX}`,
        message:
          'accumulate: estimated 6.87e+11 FLOPs per evaluation is more than the limit of 1.00e+9 (LIMIT_MAX_FLOPS); ' +
          'the costliest node is node "r" (repeat, 40 x function square) with 6.87e+11',
      },
    ]);
    // 40 x 2 x 2048^3 for the loop, one FLOP per element of the constant, and a few scalar nodes
    const loop = checkPlan(matmulLoopPlan(), limitsWith({ maxFlops: 1e12 }));
    const acc = planCosts(loop.plan, loop.types, DEFAULT_LIMITS).find((c) => c.label === 'accumulate')!;
    expect(acc.cost.nodes[MATMUL_REPEAT_INDEX]!.flops).toBe(40 * 2 * 2048 ** 3);
  });

  test('a form slot is costed with its real parameter type, not its declared unknowns', () => {
    // accumulate declares the update float32[?]; U is float32[4000000]: 1000 x mul is 4e9 FLOPs, not 2e3
    const e = refusal(largeUpdatePlan(1000));
    expect(e).toMatchObject({ code: 'PLAN_OUT_OF_BOUNDS', status: 422 });
    expect(e.details).toEqual([
      {
        path: `/computations/accumulate/nodes/${LARGE_UPDATE_NODE_INDEX}`,
        message:
          'accumulate: estimated 4.00e+9 FLOPs per evaluation is more than the limit of 1.00e+9 (LIMIT_MAX_FLOPS); ' +
          'the costliest node is node "r" (repeat, 1000 x function sq) with 4.00e+9',
      },
    ]);
    // Below the limit it is accepted, costed at the real size.
    const { plan, types } = checkPlan(largeUpdatePlan(100));
    const acc = planCosts(plan, types, DEFAULT_LIMITS).find((c) => c.label === 'accumulate')!;
    expect(acc.cost.nodes[LARGE_UPDATE_NODE_INDEX]!.flops).toBe(100 * LARGE_UPDATE_ELEMENTS);
  });

  test('a shape failure at the real shapes refuses the plan at the failing node, not a cheaper re-costing', () => {
    // f reshapes its float32[4000000] to [3]: it fails at the real shape, so no estimate holds
    const e = refusal(reshapeFailurePlan());
    expect(e).toMatchObject({ code: 'PLAN_OUT_OF_BOUNDS', status: 422 });
    expect(e.details).toEqual([
      {
        path: `/computations/accumulate/nodes/${LARGE_UPDATE_NODE_INDEX}`,
        message:
          'accumulate: the cost cannot be estimated, since node "f" (call) fails at the shapes it is given: ' +
          'function f: node "three" (reshape) given float32[4000000]: attr shape: [3] holds 3 elements, arg 0 has 4000000',
      },
    ]);
  });

  test('the limits come from configuration: raised, the attacks pass; lowered, the library plans fail', () => {
    expect(() => checkPlan(memoryBombPlan(), limitsWith({ maxPeakBytes: 8e9, maxFlops: 2e9 }))).not.toThrow();
    const fedavg = PLAN_LIBRARY.fedavg!.build({});
    const tight = refusal(fedavg, limitsWith({ maxClientFlops: 1e6, maxFlops: 100 }));
    expect(tight.code).toBe('PLAN_OUT_OF_BOUNDS');
    const paths = tight.details.map((d) => d.path);
    expect(paths).toEqual(
      expect.arrayContaining([expect.stringMatching(/^\/computations\/work\/nodes\/\d+$/)]),
    );
    expect(tight.details.find((d) => d.path.startsWith('/computations/work'))!.message).toMatch(
      /^work: estimated .* FLOPs per evaluation over 100 batches is more than the limit of 1\.00e\+6 \(LIMIT_MAX_CLIENT_FLOPS\)/,
    );
    // Assuming fewer client batches lowers work's estimate proportionally.
    const { plan, types } = checkPlan(fedavg);
    const [many, few] = [100, 10].map(
      (n) =>
        planCosts(plan, types, limitsWith({ costClientBatches: n })).find((c) => c.label === 'work')!.cost
          .flops,
    );
    expect(many! / few!).toBeCloseTo(10, 1);
  });
});

describe('schedule bounds at checkPlan', () => {
  test.each([
    [
      'selection_timeout_s',
      1e-300,
      /^selection_timeout_s 1e-300 is less than the minimum of 1 s \(SCHEDULE_MIN_SECONDS\)$/,
    ],
    [
      'reporting_deadline_s',
      1e300,
      /^reporting_deadline_s 1e\+300 is more than the maximum of 604800 s \(SCHEDULE_MAX_SECONDS\)$/,
    ],
    ['selection_timeout_s', 0.5, /less than the minimum of 1 s/],
    ['reporting_deadline_s', 604801, /more than the maximum of 604800 s/],
    ['rounds', 100_001, /^rounds 100001 is more than the maximum of 100000 \(SCHEDULE_MAX_ROUNDS\)$/],
  ])('%s %p is refused with its pointer', (field, value, message) => {
    const e = refusal(withSchedule({ [field]: value }));
    expect(e).toMatchObject({ code: 'PLAN_OUT_OF_BOUNDS', status: 422 });
    expect(e.details).toEqual([{ path: `/schedule/${field}`, message: expect.stringMatching(message) }]);
  });

  test('target_clients above the configured maximum is refused', () => {
    const e = refusal(withSchedule({ target_clients: 100_001 }));
    expect(e.details).toEqual([
      {
        path: '/schedule/target_clients',
        message: 'target_clients 100001 is more than the maximum of 100000 (SCHEDULE_MAX_TARGET_CLIENTS)',
      },
    ]);
  });

  test('the bounds are inclusive and configurable; defaults count as written', () => {
    expect(() =>
      checkPlan(withSchedule({ selection_timeout_s: 1, reporting_deadline_s: 604800 })),
    ).not.toThrow();
    expect(() =>
      checkPlan(withSchedule({ selection_timeout_s: 0.2 }), limitsWith({ scheduleMinSeconds: 0 })),
    ).not.toThrow();
    // The fixture leaves reporting_deadline_s at its default of 300.
    const e = refusal(basePlan, limitsWith({ scheduleMaxSeconds: 120 }));
    expect(e.details).toEqual([
      {
        path: '/schedule/reporting_deadline_s',
        message:
          'reporting_deadline_s (default 300) is more than the maximum of 120 s (SCHEDULE_MAX_SECONDS)',
      },
    ]);
  });

  test('a plan that is also invalid gets the invalid code, with every problem listed', () => {
    const plan = withSchedule({ selection_timeout_s: 1e-300, min_reports: 9 });
    const e = refusal(plan);
    expect(e).toMatchObject({ code: 'PLAN_TYPE_ERROR', status: 400 });
    expect(e.details.map((d) => d.path).sort()).toEqual([
      '/schedule/min_reports',
      '/schedule/selection_timeout_s',
    ]);
  });
});
