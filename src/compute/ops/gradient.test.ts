import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend';
import { OP_NAMES } from './index';
import { mismatch, opNamed, SMOKE, TEST_CTX, type Nested } from './testing';

// value_and_grad runs these kernels under tfjs's tape on WASM: every path from float32 params to a loss must
// have a gradient, and ops TensorFlow treats as non-differentiable must contribute zero, not throw.

beforeAll(() => initBackend());

const run = (name: string, args: tf.Tensor[], attrs: object = {}) =>
  opNamed(name).run(args, attrs as Record<string, unknown>, TEST_CTX);

/** The value and gradient of `loss` at `x`, read back inside a tidy. */
function valueAndGrad(loss: (x: tf.Tensor) => tf.Tensor, x: Nested): { value: number; grad: Nested } {
  let out = { value: NaN, grad: 0 as Nested };
  tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => loss(t) as tf.Scalar)(tf.tensor(x as number[]));
    out = { value: value.dataSync()[0]!, grad: grad.arraySync() as Nested };
  });
  return out;
}

const sum = (t: tf.Tensor) => run('reduce_sum', [t]);
const zero = () => tf.scalar(0);

test.each([
  {
    what: 'where(greater(x, 0), x, 0)',
    loss: (x: tf.Tensor) => sum(run('where', [run('greater', [x, zero()]), x, zero()])),
    x: [1, -2, 3, 0],
    value: 4,
    grad: [1, 0, 1, 0],
  },
  {
    what: 'logical ops in the condition',
    loss: (x: tf.Tensor) => {
      const inside = run('logical_and', [
        run('greater', [x, zero()]),
        run('logical_not', [run('greater', [x, tf.scalar(2)])]),
      ]);
      return sum(run('where', [run('logical_or', [inside, run('equal', [x, tf.scalar(-5)])]), x, zero()]));
    },
    x: [1, -2, 3, 0],
    value: 1,
    grad: [1, 0, 0, 0],
  },
  {
    what: 'reduce_any in the condition',
    loss: (x: tf.Tensor) =>
      sum(run('where', [run('reduce_any', [run('greater', [x, tf.scalar(2)])]), x, run('neg', [x])])),
    x: [1, -2, 3],
    value: 2,
    grad: [1, 1, 1],
  },
  {
    what: 'a cast to int32 and back has no gradient',
    loss: (x: tf.Tensor) =>
      sum(run('mul', [x, run('cast', [run('cast', [x], { dtype: 'int32' })], { dtype: 'float32' })])),
    x: [1.5, -2],
    value: 5.5,
    grad: [1, -2],
  },
  {
    what: 'a cast to bool has no gradient',
    loss: (x: tf.Tensor) => sum(run('where', [run('cast', [x], { dtype: 'bool' }), x, zero()])),
    x: [0, 2],
    value: 2,
    grad: [0, 1],
  },
  {
    what: 'gather scatters back and sums repeated rows (WASM lacks UnsortedSegmentSum)',
    loss: (x: tf.Tensor) =>
      sum(
        run('mul', [
          run('gather', [x, tf.tensor1d([1, 1, 0], 'int32')]),
          tf.tensor2d([
            [1, 2],
            [3, 4],
            [5, 6],
          ]),
        ]),
      ),
    x: [
      [1, 2],
      [3, 4],
      [5, 6],
    ],
    value: 53,
    grad: [
      [5, 6],
      [4, 6],
      [0, 0],
    ],
  },
  {
    what: 'gather along axis 1',
    loss: (x: tf.Tensor) => sum(run('gather', [x, tf.tensor2d([[2, 2]], [1, 2], 'int32')], { axis: 1 })),
    x: [
      [1, 2, 3],
      [4, 5, 6],
    ],
    value: 18,
    grad: [
      [0, 0, 2],
      [0, 0, 2],
    ],
  },
  {
    what: 'maximum sums the gradient of a broadcast arg (tfjs does not)',
    loss: (v: tf.Tensor) => sum(run('maximum', [tf.tensor2d([0.5, 3, -1, 2, 1, 1], [2, 3]), v])),
    x: [1, 2, 2],
    value: 12,
    grad: [1, 1, 2],
  },
  {
    what: 'squared_difference sums the gradient of a broadcast arg',
    loss: (v: tf.Tensor) => sum(run('squared_difference', [tf.tensor2d([0.5, 3, -1, 2, 1, 1], [2, 3]), v])),
    x: [1, 2, 2],
    value: 13.25,
    grad: [-1, 0, 8],
  },
  {
    what: 'the L2 norm at zero has gradient 0, not NaN',
    loss: (x: tf.Tensor) => run('norm', [x]),
    x: [0, 0],
    value: 0,
    grad: [0, 0],
  },
  {
    what: 'the L2 norm elsewhere',
    loss: (x: tf.Tensor) => run('norm', [x]),
    x: [3, 4],
    value: 5,
    grad: [0.6, 0.8],
  },
  {
    what: 'a reduction of an empty batch stays connected',
    loss: (x: tf.Tensor) => sum(run('reduce_sum', [run('matmul', [tf.zeros([0, 2]), x])], { axes: [0] })),
    x: [
      [1, 2, 3],
      [4, 5, 6],
    ],
    value: 0,
    grad: [
      [0, 0, 0],
      [0, 0, 0],
    ],
  },
])('gradient: $what', ({ loss, x, value, grad }) => {
  const r = valueAndGrad(loss, x);
  expect(r.value).toBeCloseTo(value, 5);
  expect(mismatch(r.grad, grad)).toBeNull();
});

/** Central differences of `loss` at `x` (float32, so a coarse step). */
function numericGrad(loss: (x: tf.Tensor) => tf.Tensor, x: number[], shape: number[], eps = 1e-2): number[] {
  return x.map((_, i) => {
    const at = (d: number) =>
      tf.tidy(
        () =>
          loss(
            tf.tensor(
              x.map((v, j) => (j === i ? v + d : v)),
              shape,
            ),
          ).dataSync()[0]!,
      );
    return (at(eps) - at(-eps)) / (2 * eps);
  });
}

const WEIGHTS = [0.3, -1.2, 0.7, 2, -0.4, 1.1, 0.9, -0.6, 1.7, 0.2, -1.5, 0.8];
/** A loss that weighs every output element differently, so a wrong gradient cannot cancel out. */
const weighted = (t: tf.Tensor) => tf.sum(tf.mul(tf.reshape(t, [-1]), tf.tensor1d(WEIGHTS.slice(0, t.size))));

/** Flat values as a nested array of `shape`. */
function nest(values: readonly number[], shape: readonly number[]): Nested {
  if (shape.length <= 1) return [...values];
  const n = values.length / shape[0]!;
  return Array.from({ length: shape[0]! }, (_, i) => nest(values.slice(i * n, (i + 1) * n), shape.slice(1)));
}

test.each([
  { op: 'softmax', attrs: { axis: 0 }, x: [0.5, 1.5, 2, 3, 0.25, 1], shape: [2, 3] },
  { op: 'log_softmax', attrs: { axis: 1 }, x: [0.5, 1.5, 2, 3, 0.25, 1], shape: [1, 3, 2] },
  { op: 'norm', attrs: { ord: 1, axes: [1] }, x: [0.5, -1.5, 2, 3, -0.25, 1], shape: [2, 3] },
  { op: 'norm', attrs: { ord: 'inf' }, x: [0.5, -1.5, 2, 3, -0.25, 1], shape: [2, 3] },
  { op: 'norm', attrs: { ord: 2, axes: [0], keepdims: true }, x: [0.5, -1.5, 2, 3, -0.25, 1], shape: [2, 3] },
  { op: 'reduce_prod', attrs: { axes: [1] }, x: [0.5, -1.5, 2, 3, -0.25, 1], shape: [2, 3] },
  { op: 'reduce_max', attrs: { axes: [0] }, x: [0.5, -1.5, 2, 3, -0.25, 1], shape: [2, 3] },
  { op: 'clip_by_value', attrs: { min: 0, max: 1.5 }, x: [0.5, -1.5, 2, 3, -0.25, 1], shape: [2, 3] },
  { op: 'transpose', attrs: { perm: [1, 0] }, x: [0.5, -1.5, 2, 3, -0.25, 1], shape: [2, 3] },
  { op: 'slice', attrs: { begin: [0, 1], size: [-1, 1] }, x: [0.5, -1.5, 2, 3, -0.25, 1], shape: [2, 3] },
])('$op $attrs matches finite differences', ({ op, attrs, x, shape }) => {
  const loss = (t: tf.Tensor) => weighted(run(op, [t], attrs));
  const { grad } = valueAndGrad(loss, nest(x, shape));
  const flat = [grad].flat(4) as number[];
  expect(mismatch(flat, numericGrad(loss, x, shape), 2e-2)).toBeNull();
});

test('matmul (batched) matches finite differences in both args', () => {
  const b = tf.tensor([1, -1, 0.5, 2, 0.3, 0.7, -1, 1], [2, 2, 2]);
  const x = [0.5, -1.5, 2, 3, -0.25, 1, 0.1, 0.2];
  const lossA = (t: tf.Tensor) => weighted(run('matmul', [t, b], { transpose_a: true }));
  const lossB = (t: tf.Tensor) => weighted(run('matmul', [b, t], { transpose_b: true }));
  for (const loss of [lossA, lossB]) {
    const { grad } = valueAndGrad(loss, nest(x, [2, 2, 2]));
    expect(mismatch([grad].flat(4) as number[], numericGrad(loss, x, [2, 2, 2]), 2e-2)).toBeNull();
  }
  b.dispose();
});

test('every op with a float32 arg can sit between params and a loss, leaking nothing', () => {
  const failures: string[] = [];
  const before = tf.memory().numTensors;
  for (const name of OP_NAMES) {
    const c = SMOKE[name]!;
    const floats = c.args.flatMap((a, i) => (a.dtype === 'float32' ? [i] : []));
    if (floats.length === 0) continue;
    tf.tidy(() => {
      const inputs = c.args.map((a) => tf.tensor([...a.values].map(Number), [...a.shape], a.dtype));
      const f = (...xs: tf.Tensor[]) => {
        const args = inputs.map((t, i) => (floats.includes(i) ? xs[floats.indexOf(i)]! : t));
        return tf.sum(tf.cast(run(name, args, c.attrs), 'float32')) as tf.Scalar;
      };
      try {
        const { grads } = tf.valueAndGrads(f)(floats.map((i) => inputs[i]!));
        for (const g of grads)
          if (!g.dataSync().every(Number.isFinite)) failures.push(`${name}: non-finite gradient`);
      } catch (e) {
        failures.push(`${name}: ${(e as Error).message}`);
      }
    });
  }
  expect(failures).toEqual([]);
  expect(tf.memory().numTensors).toBe(before);
});
