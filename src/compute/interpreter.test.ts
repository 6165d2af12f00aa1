import * as tf from '@tensorflow/tfjs';
import type { Computation } from '../generated/computation';
import { AppError } from '../errors';
import { initBackend } from './backend';
import { Checker } from './checker';
import { Interpreter } from './interpreter';
import { epochPermutation } from './shuffle';
import { tensorType } from './types';
import { DEFAULT_LIMITS, limitsWith } from './limits';
import { sequenceValue, structValue, tensorsOf, disposeValue, type StructValue, type Value } from './value';

const f32 = (shape: (number | null)[] = []) => ({
  kind: 'tensor' as const,
  dtype: 'float32' as const,
  shape,
});
const pair = (a: object, b: object) => ({
  kind: 'struct' as const,
  fields: [
    { name: 'a', type: a },
    { name: 'b', type: b },
  ],
});

// sum(w * w * x): value_and_grad must give 2 * w * x.
// epochPermutation's answers from an independent implementation of its documented algorithm (Python, with
// explicit 32-bit masks), so that a client in any language can check its own against the same numbers.
const KNOWN_7_1 = [3, 0, 6, 7, 1, 4, 2, 5];
const KNOWN_0_2 = [4, 7, 2, 5, 0, 6, 1, 3];

const functions: Record<string, Computation> = {
  loss: {
    parameter: { name: 'p', type: pair(f32([3]), f32([3])) as never },
    nodes: [
      { name: 'w', op: 'field', args: ['p'], attrs: { index: 0 } },
      { name: 'x', op: 'field', args: ['p'], attrs: { index: 1 } },
      { name: 'ww', op: 'mul', args: ['w', 'w'] },
      { name: 'wwx', op: 'mul', args: ['ww', 'x'] },
      { name: 'l', op: 'reduce_sum', args: ['wwx'] },
    ],
    result: 'l',
  },
  step: {
    parameter: { name: 'p', type: pair(f32([3]), f32([null])) as never },
    nodes: [
      { name: 'acc', op: 'field', args: ['p'], attrs: { name: 'a' } },
      { name: 'b', op: 'field', args: ['p'], attrs: { name: 'b' } },
      { name: 's', op: 'reduce_sum', args: ['b'] },
      { name: 'r', op: 'add', args: ['acc', 's'] },
    ],
    result: 'r',
  },
  // acc * 16 + sum(batch), in int32: the result spells out every batch sum in order (base 16).
  trace: {
    parameter: { name: 'p', type: pair(tensorType('int32', []), tensorType('int32', [null])) as never },
    nodes: [
      { name: 'acc', op: 'field', args: ['p'], attrs: { name: 'a' } },
      { name: 'b', op: 'field', args: ['p'], attrs: { name: 'b' } },
      { name: 's', op: 'reduce_sum', args: ['b'] },
      { name: 'k', op: 'const', attrs: { dtype: 'int32', shape: [], value: 16 } },
      { name: 'm', op: 'mul', args: ['acc', 'k'] },
      { name: 'r', op: 'add', args: ['m', 's'] },
    ],
    result: 'r',
  },
  // acc + x for a scalar element: a fold over a sequence of scalars (nothing to reshuffle).
  add_scalar: {
    parameter: { name: 'p', type: pair(tensorType('int32', []), tensorType('int32', [])) as never },
    nodes: [
      { name: 'acc', op: 'field', args: ['p'], attrs: { name: 'a' } },
      { name: 'x', op: 'field', args: ['p'], attrs: { name: 'b' } },
      { name: 'r', op: 'add', args: ['acc', 'x'] },
    ],
    result: 'r',
  },
  double: {
    parameter: { name: 'x', type: f32([3]) as never },
    nodes: [{ name: 'y', op: 'add', args: ['x', 'x'] }],
    result: 'y',
  },
};

const comp = (
  nodes: Computation['nodes'],
  result: string,
  parameter?: Computation['parameter'],
): Computation => ({
  ...(parameter ? { parameter } : {}),
  nodes,
  result,
});

beforeAll(() => initBackend());

describe('Interpreter', () => {
  const interp = new Interpreter(functions);

  test('value_and_grad differentiates a named function', () => {
    const c = comp(
      [
        { name: 'w', op: 'const', attrs: { dtype: 'float32', shape: [3], value: [1, 2, 3] } },
        { name: 'x', op: 'const', attrs: { dtype: 'float32', shape: [3], value: [1, 10, 100] } },
        { name: 'vg', op: 'value_and_grad', args: ['w', 'x'], attrs: { fn: 'loss' } },
      ],
      'vg',
    );
    const out = interp.run(c, undefined, { round: 1 }) as StructValue;
    expect((out.fields[0]!.value as tf.Tensor).dataSync()[0]).toBeCloseTo(1 + 40 + 900);
    expect(Array.from((out.fields[1]!.value as tf.Tensor).dataSync())).toEqual([2, 40, 600]);
    disposeValue(out);
  });

  test('fold runs its function over every batch, epochs times', () => {
    const c = comp(
      [
        { name: 'seq', op: 'field', args: ['p'], attrs: { index: 0 } },
        { name: 'init', op: 'field', args: ['p'], attrs: { index: 1 } },
        { name: 'r', op: 'fold', args: ['seq', 'init'], attrs: { fn: 'step', epochs: 2 } },
      ],
      'r',
      { name: 'p', type: pair({ kind: 'sequence', element: f32([null]) }, f32([3])) as never },
    );
    const seq = sequenceValue([tf.tensor1d([1, 2]), tf.tensor1d([3])]);
    const init = tf.tensor1d([0, 1, 2]);
    const out = interp.run(
      c,
      structValue([
        [undefined, seq],
        [undefined, init],
      ]),
      { round: 1 },
    ) as tf.Tensor;
    expect(Array.from(out.dataSync())).toEqual([12, 13, 14]);
    out.dispose();
    // The inputs belong to the caller and survive the evaluation.
    expect(init.isDisposed).toBe(false);
    disposeValue(seq);
    init.dispose();
  });

  test('fold with shuffle_seed deals the examples into batches of the same sizes in a fresh order each later epoch', () => {
    const c = (attrs: Record<string, unknown>) =>
      comp(
        [
          { name: 'seq', op: 'field', args: ['p'], attrs: { index: 0 } },
          { name: 'init', op: 'field', args: ['p'], attrs: { index: 1 } },
          { name: 'r', op: 'fold', args: ['seq', 'init'], attrs: { fn: 'trace', epochs: 3, ...attrs } },
        ],
        'r',
        {
          name: 'p',
          type: pair(
            { kind: 'sequence', element: tensorType('int32', [null]) },
            tensorType('int32', []),
          ) as never,
        },
      );
    const examples = [1, 2, 3, 4, 5];
    const run = (attrs: Record<string, unknown>): number => {
      const seq = sequenceValue([tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5], 'int32')]);
      const init = tf.scalar(0, 'int32');
      const out = interp.run(
        c(attrs),
        structValue([
          [undefined, seq],
          [undefined, init],
        ]),
        { round: 1 },
      ) as tf.Tensor;
      const v = out.dataSync()[0]!;
      out.dispose();
      // The caller's batches are untouched.
      expect(seq.elements.map((e) => Array.from((e as tf.Tensor).dataSync()))).toEqual([
        [1, 2, 3],
        [4, 5],
      ]);
      disposeValue(seq);
      init.dispose();
      return v;
    };
    // The expected trace from the documented permutation: epoch 0 as given, then epochPermutation(5, 7, e).
    let want = 0;
    for (let e = 0; e < 3; e++) {
      const order = e === 0 ? [0, 1, 2, 3, 4] : Array.from(epochPermutation(5, 7, e));
      const dealt = order.map((i) => examples[i]!);
      for (const batch of [dealt.slice(0, 3), dealt.slice(3)])
        want = want * 16 + batch.reduce((a, b) => a + b, 0);
    }
    const plain = run({});
    expect(run({ shuffle_seed: 7 })).toBe(want);
    expect(want).not.toBe(plain);
    // Reproducible: the same seed, the same batches.
    expect(run({ shuffle_seed: 7 })).toBe(want);
  });

  test('the checker refuses shuffle_seed over a sequence whose element is not a batch', () => {
    const over = (element: ReturnType<typeof tensorType>) =>
      comp(
        [
          { name: 'seq', op: 'field', args: ['p'], attrs: { index: 0 } },
          { name: 'init', op: 'field', args: ['p'], attrs: { index: 1 } },
          {
            name: 'r',
            op: 'fold',
            args: ['seq', 'init'],
            attrs: { fn: element.shape.length > 0 ? 'trace' : 'add_scalar', epochs: 2, shuffle_seed: 1 },
          },
        ],
        'r',
        { name: 'p', type: pair({ kind: 'sequence', element }, tensorType('int32', [])) as never },
      );
    const checker = new Checker(functions, DEFAULT_LIMITS);
    expect(() => checker.check(over(tensorType('int32', [null])), 'work', '/work')).not.toThrow();
    // A sequence of scalars has no examples to deal between batches.
    expect(() =>
      new Checker(functions, DEFAULT_LIMITS).check(over(tensorType('int32', [])), 'work', '/work'),
    ).toThrow(/attr shuffle_seed: the sequence element int32 is not a batch/);
  });

  test('epochPermutation is the documented mulberry32 Fisher-Yates (known answers)', () => {
    expect(Array.from(epochPermutation(8, 7, 1))).toEqual(KNOWN_7_1);
    expect(Array.from(epochPermutation(8, 0, 2))).toEqual(KNOWN_0_2);
    const p = Array.from(epochPermutation(1000, 123, 5)).sort((a, b) => a - b);
    expect(p).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  test('a result that passes an input through is a copy the caller may dispose', () => {
    const c = comp([], 'x', { name: 'x', type: f32([3]) as never });
    const x = tf.tensor1d([1, 2, 3]);
    const out = interp.run(c, x, { round: 1 }) as tf.Tensor;
    out.dispose();
    expect(x.isDisposed).toBe(false);
    x.dispose();
  });

  test('100 evaluations with repeat and fold leave the tensor count where it started', () => {
    const c = comp(
      [
        { name: 'x', op: 'const', attrs: { dtype: 'float32', shape: [3], value: 1 } },
        { name: 'r', op: 'repeat', args: ['x'], attrs: { fn: 'double', count: 5 } },
      ],
      'r',
    );
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) disposeValue(interp.run(c, undefined, { round: i }));
    expect(tf.memory().numTensors).toBe(before);
  });

  test('stops a plan that executes more ops than allowed', () => {
    const small = new Interpreter(functions, limitsWith({ maxOpsExecuted: 20 }));
    const c = comp(
      [
        { name: 'x', op: 'const', attrs: { dtype: 'float32', shape: [3], value: 1 } },
        { name: 'r', op: 'repeat', args: ['x'], attrs: { fn: 'double', count: 50 } },
      ],
      'r',
    );
    const before = tf.memory().numTensors;
    expect(() => small.run(c, undefined, { round: 1, label: 'prepare' })).toThrow(
      /prepare: function double: more than 20 ops executed/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  test('stops a fold over more batches than allowed, naming the node', () => {
    const small = new Interpreter(functions, limitsWith({ maxFoldSteps: 3 }));
    const c = comp([{ name: 'r', op: 'fold', args: ['seq', 'init'], attrs: { fn: 'step', epochs: 2 } }], 'r');
    const withParam: Computation = {
      ...c,
      parameter: { name: 'p', type: pair({ kind: 'sequence', element: f32([null]) }, f32([3])) as never },
      nodes: [
        { name: 'seq', op: 'field', args: ['p'], attrs: { index: 0 } },
        { name: 'init', op: 'field', args: ['p'], attrs: { index: 1 } },
        ...c.nodes,
      ],
    };
    const arg: Value = structValue([
      [undefined, sequenceValue([tf.tensor1d([1]), tf.tensor1d([2])])],
      [undefined, tf.zeros([3])],
    ]);
    let err: unknown;
    try {
      small.run(withParam, arg, { round: 1, label: 'work' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('EVAL_LIMIT_EXCEEDED');
    expect((err as AppError).message).toMatch(
      /work: node "r" \(fold\): 2 elements x 2 epochs is more than the limit of 3 steps/,
    );
    for (const t of tensorsOf(arg)) t.dispose();
  });

  test('stops a tensor that grows beyond the element limit at run time', () => {
    const small = new Interpreter({}, limitsWith({ maxTensorElements: 10 }));
    const c = comp([{ name: 'big', op: 'concat', args: ['x', 'x'], attrs: { axis: 0 } }], 'big', {
      name: 'x',
      type: f32([null]) as never,
    });
    const x = tf.zeros([6]);
    expect(() => small.run(c, x, { round: 1, label: 'work' })).toThrow(
      /work: node "big" \(concat\): result has 12 elements, more than the limit of 10/,
    );
    x.dispose();
  });

  test('rejects an argument that does not match the declared parameter type', () => {
    const c = comp([], 'x', { name: 'x', type: f32([3]) as never });
    const x = tf.zeros([4]);
    expect(() => interp.run(c, x, { round: 1, label: 'prepare' })).toThrow(
      /prepare: parameter: expected float32\[3\], got float32\[4\]/,
    );
    x.dispose();
  });
});
