import * as tf from '@tensorflow/tfjs';
import { Interpreter } from '../compute/interpreter';
import { structValue } from '../compute/value';
import type { ClientExamples } from '../data';
import { appErrorOf } from '../app-error.jest';
import type { Plan, UpdateBounds } from '../generated/plan';
import { buildFederatedSum, buildHistogram, buildMean } from '../plans';
import { runLocal } from './local-runner';

const i32Client = (...values: number[]): ClientExamples => ({
  count: values.length,
  leaves: [Int32Array.from(values)],
});

const clients = new Map([
  ['a', i32Client(4, 6)],
  ['b', i32Client(20)],
]);

// The library plan clips in work already; these bounds are tighter, so only the runner's enforcement acts.
function sumWith(
  bounds: UpdateBounds,
  schedule: Partial<Parameters<typeof buildFederatedSum>[0]> = {},
): Plan {
  return { ...buildFederatedSum({ targetClients: 2, ...schedule }), update_bounds: bounds };
}

describe('the local runner applies update bounds as the server does', () => {
  it('clip: a client sum of 20 counts as 15', () => {
    const [r] = runLocal(sumWith({ ranges: [{ path: '', min: 0, max: 15, mode: 'clip' }] }), clients);
    expect(r!.output).toEqual({ sum: 25 });
    expect(r!.rejected).toEqual([]);
  });

  it('reject: the client over the range is refused with the reason, the others count', () => {
    const plan = sumWith({ ranges: [{ path: '', min: 0, max: 15, mode: 'reject' }] }, { minReports: 1 });
    const [r] = runLocal(plan, clients);
    expect(r!.output).toEqual({ sum: 10 });
    expect(r!.participants).toBe(1);
    expect(r!.rejected).toEqual([
      {
        client: 'b',
        reason: expect.stringMatching(/breaks a bound[\s\S]*element 0 is 20, outside \[0, 15\]/),
      },
    ]);
  });

  it('a client whose U is not finite is refused, as the server refuses its upload', () => {
    const data = new Map<string, ClientExamples>([
      ['a', { count: 2, leaves: [Float32Array.of(1, 2)] }],
      // Finite data whose float32 sum is not: b's U holds +Infinity.
      ['b', { count: 2, leaves: [Float32Array.of(3e38, 3e38)] }],
    ]);
    const [r] = runLocal(buildMean({ targetClients: 2, minReports: 1 }), data);
    expect(r!.output).toEqual({ mean: 1.5, count: 2, clients: 1 });
    expect(r!.rejected).toEqual([{ client: 'b', reason: expect.stringMatching(/non-finite/) }]);
  });

  it('library plans give the same result with their declared bounds as without', () => {
    const hist = buildHistogram({ bins: 3, targetClients: 2, maxInput: 2 });
    const { update_bounds: _bounds, ...unbounded } = hist;
    const data = new Map([
      ['a', i32Client(0, 0, 0, 1)],
      ['b', i32Client(2, 1)],
    ]);
    // a's three zeros count as 2 (max_input) either way: work clips, and the bound agrees with it.
    expect(runLocal(hist, data)[0]!.output).toEqual({ counts: [2, 2, 1], clients: 2 });
    expect(runLocal(unbounded, data)[0]!.output).toEqual({ counts: [2, 2, 1], clients: 2 });
  });
});

describe('int32 overflow in a plan computation', () => {
  it('is EVAL_INT_OVERFLOW naming the computation, node and op, never a wrapped sum', () => {
    const { update_bounds: _bounds, ...plan } = buildFederatedSum({ targetClients: 2 });
    const interp = new Interpreter(plan.functions ?? {});
    const arg = structValue([
      [undefined, tf.scalar(2 ** 31 - 1, 'int32')],
      [undefined, tf.scalar(10, 'int32')],
    ]);
    const error = appErrorOf(() =>
      interp.run(plan.computations.accumulate, arg, { round: 1, label: 'accumulate' }),
    );
    expect(error.code).toBe('EVAL_INT_OVERFLOW');
    expect(error.status).toBe(422);
    expect(error.message).toMatch(
      /^accumulate: node "[^"]+" \(add\): int32 overflow: element 0 of the result is about 21474836\d\d, outside/,
    );
  });

  it('a client whose own int32 sum overflows fails in work, in the local runner too', () => {
    const { update_bounds: _bounds, ...plan } = buildFederatedSum({ targetClients: 1 });
    const big = new Map([['x', i32Client(2 ** 31 - 1, 1)]]);
    expect(() => runLocal(plan, big)).toThrow(/int32 overflow/);
  });
});
