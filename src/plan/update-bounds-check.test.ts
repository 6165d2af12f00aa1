import { appErrorOf } from '../app-error.jest';
import type { AppError } from '../errors';
import type { Plan, UpdateBounds } from '../generated/plan';
import { buildFedAvg, buildFederatedSum, buildTemperatureSensor } from '../plans';
import { resolveUpdateBounds } from './update-bounds-check';
import { checkPlan } from './validate';

// FedAvg's U is <delta=<w0=float32[2,2], b0=float32[2]>, examples=int32, loss_sum=float32>.
const fedavg = buildFedAvg({ layers: [2, 2], targetClients: 2 });
const sum = buildFederatedSum({ targetClients: 2 });

/** The refusal of `plan` with `bounds`. */
function problems(plan: Plan, bounds: UpdateBounds): AppError {
  return appErrorOf(() => checkPlan({ ...plan, update_bounds: bounds }));
}

describe('update_bounds in checkPlan', () => {
  it('accepts ranges and norms that fit U, and resolves a struct path to every tensor below it', () => {
    const bounds: UpdateBounds = {
      ranges: [
        { path: 'examples', min: 0, max: 100, mode: 'clip' },
        { path: 'delta/b0', min: -1.5, mode: 'reject' },
      ],
      norms: [{ paths: ['delta'], max_norm: 2.5, mode: 'clip' }],
    };
    const checked = checkPlan({ ...fedavg, update_bounds: bounds });
    const { resolved } = resolveUpdateBounds(bounds, checked.types.U);
    expect(resolved?.leaves).toEqual([
      { path: 'delta/w0', dtype: 'float32' },
      { path: 'delta/b0', dtype: 'float32' },
      { path: 'examples', dtype: 'int32' },
      { path: 'loss_sum', dtype: 'float32' },
    ]);
    expect(resolved?.ranges.map((r) => [r.leaves, r.min, r.max])).toEqual([
      [[2], 0, 100],
      [[1], -1.5, Infinity],
    ]);
    expect(resolved?.norms[0]).toMatchObject({
      leaves: [0, 1],
      maxNorm: 2.5,
      pointer: '/update_bounds/norms/0',
    });
  });

  it('"" names a bare tensor U', () => {
    expect(() =>
      checkPlan({ ...sum, update_bounds: { ranges: [{ path: '', min: -5, max: 5, mode: 'reject' }] } }),
    ).not.toThrow();
  });

  it.each<[string, Plan, UpdateBounds, { path: string; message: RegExp }[]]>([
    [
      'a path that names nothing',
      fedavg,
      { ranges: [{ path: 'delta/w9', max: 1, mode: 'clip' }] },
      [
        {
          path: '/update_bounds/ranges/0/path',
          message: /"delta\/w9" names no tensor of the update U <delta=/,
        },
      ],
    ],
    [
      'a partial field name',
      fedavg,
      { norms: [{ paths: ['delta/w'], max_norm: 1, mode: 'clip' }] },
      [{ path: '/update_bounds/norms/0/paths/0', message: /"delta\/w" names no tensor/ }],
    ],
    [
      'an int32 range with a fraction',
      fedavg,
      { ranges: [{ path: 'examples', min: 0.5, mode: 'clip' }] },
      [{ path: '/update_bounds/ranges/0/min', message: /min 0.5 does not fit examples, which is int32/ }],
    ],
    [
      'an int32 range beyond int32',
      sum,
      { ranges: [{ path: '', min: 0, max: 2 ** 31, mode: 'reject' }] },
      [{ path: '/update_bounds/ranges/0/max', message: /max 2147483648 does not fit U, which is int32/ }],
    ],
    [
      'a range over a struct that holds an int32 with a fractional end',
      fedavg,
      { ranges: [{ path: '', min: -0.5, max: 10, mode: 'clip' }] },
      [{ path: '/update_bounds/ranges/0/min', message: /does not fit examples, which is int32/ }],
    ],
    [
      'min above max',
      fedavg,
      { ranges: [{ path: 'loss_sum', min: 3, max: 1, mode: 'clip' }] },
      [{ path: '/update_bounds/ranges/0/min', message: /min 3 is more than max 1/ }],
    ],
    [
      'a range with neither end',
      fedavg,
      { ranges: [{ path: 'loss_sum', mode: 'clip' }] },
      [{ path: '/update_bounds/ranges/0', message: /needs min, max or both/ }],
    ],
    [
      'a norm over an int32 tensor',
      fedavg,
      { norms: [{ paths: ['delta', 'examples'], max_norm: 1, mode: 'reject' }] },
      [
        {
          path: '/update_bounds/norms/0/paths/1',
          message: /examples is int32; norm bounds apply to float32/,
        },
      ],
    ],
    [
      'a range over a bool tensor',
      buildTemperatureSensor({ targetClients: 2 }),
      { ranges: [{ path: 'is_over', max: 1, mode: 'clip' }] },
      [
        {
          path: '/update_bounds/ranges/0/path',
          message: /is_over is bool; value ranges apply to int32 and float32/,
        },
      ],
    ],
  ])('refuses %s with a JSON pointer', (_what, plan, bounds, expected) => {
    const { code, details } = problems(plan, bounds);
    expect(code).toBe('PLAN_TYPE_ERROR');
    expect(details).toEqual(
      expected.map((e) => ({ path: e.path, message: expect.stringMatching(e.message) })),
    );
  });

  it('reports every problem at once', () => {
    const { details } = problems(fedavg, {
      ranges: [
        { path: 'nope', max: 1, mode: 'clip' },
        { path: 'examples', min: 1, max: 0, mode: 'clip' },
      ],
      norms: [{ paths: ['examples'], max_norm: 1, mode: 'clip' }],
    });
    expect(details.map((d) => d.path)).toEqual([
      '/update_bounds/ranges/0/path',
      '/update_bounds/ranges/1/min',
      '/update_bounds/norms/0/paths/0',
    ]);
  });

  it('the schema refuses unknown modes, a non-positive max_norm and unknown keys', () => {
    for (const bounds of [
      { ranges: [{ path: 'examples', max: 1, mode: 'wrap' }] },
      { norms: [{ paths: ['delta'], max_norm: 0, mode: 'clip' }] },
      { norms: [{ paths: [], max_norm: 1, mode: 'clip' }] },
      { limits: [] },
    ]) {
      expect(problems(fedavg, bounds as UpdateBounds).code).toBe('PLAN_SCHEMA_INVALID');
    }
  });
});
