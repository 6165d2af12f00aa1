import { bundleLeaves, writeBundle } from '../../src/codec';
import { tensorType, type TffType } from '../../src/compute/types';

type Node = { name: string; op: string; args?: string[]; attrs?: Record<string, unknown> };
const S = (...fields: [string | undefined, TffType][]): TffType => ({
  kind: 'struct',
  fields: fields.map(([name, type]) => (name ? { name, type } : { type })),
});

/**
 * A plan whose update is a float32[k] vector `delta` that the server sums over clients, with a client
 * count: aggregation tests upload crafted bundles of it, so that the expected sum is known exactly.
 * `work` itself returns the client's first batch row sum broadcast to k (clients in these tests never run
 * it; it only gives the form its types).
 */
export function vectorSumPlan(k: number, schedule: Record<string, number>): Record<string, unknown> {
  const vec = tensorType('float32', [k]);
  const U = S(['delta', vec]);
  const A = S(['delta', vec], ['count', tensorType('int32', [])]);
  const E = S();
  const state = S(['rounds', tensorType('int32', [])]);
  const n = (name: string, op: string, args?: string[], attrs?: Record<string, unknown>): Node => ({
    name,
    op,
    ...(args ? { args } : {}),
    ...(attrs ? { attrs } : {}),
  });
  const empty = { nodes: [n('e', 'struct', [])], result: 'e' };
  const addA = (p: string) => [
    n('a', 'field', [p], { index: 0 }),
    n('b', 'field', [p], { index: 1 }),
    n('ad', 'field', ['a'], { name: 'delta' }),
    n('bd', 'field', ['b'], { name: 'delta' }),
    n('d', 'add', ['ad', 'bd']),
  ];
  return {
    format: 'roundhouse.plan/v1',
    name: `vector-sum-${k}`,
    client_data: { collection: `vectors${k}`, element: tensorType('float32', [null]), batch_size: 4 },
    schedule,
    initialize: {
      nodes: [
        n('z', 'const', undefined, { dtype: 'int32', shape: [], value: 0 }),
        n('s', 'struct', ['z'], { names: ['rounds'] }),
      ],
      result: 's',
    },
    computations: {
      prepare: { parameter: { name: 's', type: state }, nodes: [n('c', 'struct', [])], result: 'c' },
      work: {
        parameter: {
          name: 'p',
          type: S(['data', { kind: 'sequence', element: tensorType('float32', [null]) }], ['c', E]),
        },
        nodes: [
          n('z', 'const', undefined, { dtype: 'float32', shape: [k], value: 0 }),
          n('u', 'struct', ['z'], { names: ['delta'] }),
          n('e', 'struct', []),
          n('out', 'struct', ['u', 'e', 'e', 'e']),
        ],
        result: 'out',
      },
      zero: {
        nodes: [
          n('z', 'const', undefined, { dtype: 'float32', shape: [k], value: 0 }),
          n('c', 'const', undefined, { dtype: 'int32', shape: [], value: 0 }),
          n('a', 'struct', ['z', 'c'], { names: ['delta', 'count'] }),
        ],
        result: 'a',
      },
      accumulate: {
        parameter: { name: 'p', type: S(['acc', A], ['u', U]) },
        nodes: [
          ...addA('p'),
          n('ac', 'field', ['a'], { name: 'count' }),
          n('one', 'const', undefined, { dtype: 'int32', shape: [], value: 1 }),
          n('c', 'add', ['ac', 'one']),
          n('out', 'struct', ['d', 'c'], { names: ['delta', 'count'] }),
        ],
        result: 'out',
      },
      merge: {
        parameter: { name: 'p', type: S(['x', A], ['y', A]) },
        nodes: [
          ...addA('p'),
          n('ac', 'field', ['a'], { name: 'count' }),
          n('bc', 'field', ['b'], { name: 'count' }),
          n('c', 'add', ['ac', 'bc']),
          n('out', 'struct', ['d', 'c'], { names: ['delta', 'count'] }),
        ],
        result: 'out',
      },
      report: { parameter: { name: 'a', type: A }, nodes: [], result: 'a' },
      secure_sum_bitwidth: empty,
      secure_sum_max_input: empty,
      secure_modular_sum_modulus: empty,
      update: {
        parameter: {
          name: 'p',
          type: S(
            [undefined, state],
            [undefined, S([undefined, A], [undefined, E], [undefined, E], [undefined, E])],
          ),
        },
        nodes: [
          n('s', 'field', ['p'], { index: 0 }),
          n('g', 'field', ['p'], { index: 1 }),
          n('r', 'field', ['g'], { index: 0 }),
          n('rounds', 'field', ['s'], { name: 'rounds' }),
          n('one', 'const', undefined, { dtype: 'int32', shape: [], value: 1 }),
          n('next', 'add', ['rounds', 'one']),
          n('s2', 'struct', ['next'], { names: ['rounds'] }),
          n('total', 'field', ['r'], { name: 'delta' }),
          n('sum', 'reduce_sum', ['total']),
          n('count', 'field', ['r'], { name: 'count' }),
          n('x', 'struct', ['sum', 'count'], { names: ['total', 'count'] }),
          n('out', 'struct', ['s2', 'x']),
        ],
        result: 'out',
      },
    },
  };
}

/** The upload bundle of a vectorSumPlan client whose `delta` is `values`. */
export function vectorUpload(values: Float32Array): Uint8Array {
  const k = values.length;
  const uploadType = S(
    [undefined, S(['delta', tensorType('float32', [k])])],
    [undefined, S()],
    [undefined, S()],
    [undefined, S()],
  );
  const [leaf] = bundleLeaves(uploadType);
  return writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [k], data: values }]);
}
