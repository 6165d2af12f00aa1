/**
 * The numeric edges docs/protocol.md ("Numeric semantics", "Values as JSON") promises client authors, run
 * through the interpreter on the backend the product picks (test/setup/backend.ts), so that the table and
 * the code cannot drift apart unnoticed. Each case is one row of that table; expected values are by hand.
 */
import { AppError } from '../src/errors';
import { Interpreter } from '../src/compute/interpreter';
import { disposeValue } from '../src/compute/value';
import { valueToJson, type JsonValue } from '../src/compute/value-json';
import type { Node } from '../src/generated/computation';

type Dtype = 'float32' | 'int32' | 'bool';
type Scalar = number | boolean;

const konst = (name: string, dtype: Dtype, value: Scalar | Scalar[]): Node => ({
  name,
  op: 'const',
  attrs: { dtype, shape: Array.isArray(value) ? [value.length] : [], value },
});

/** One op applied to constants: `args` become nodes a, b, ... in order. */
function apply(
  op: string,
  dtype: Dtype,
  args: (Scalar | Scalar[])[],
  attrs?: Record<string, unknown>,
): Node[] {
  const names = args.map((_, i) => String.fromCharCode(97 + i));
  return [
    ...args.map((v, i) => konst(names[i]!, dtype, v)),
    { name: 'r', op, args: names, ...(attrs ? { attrs } : {}) },
  ];
}

/** NaN or ±Inf as a float32 scalar node named `name`, made by a division (JSON cannot write them). */
const special = (name: string, num: number): Node[] => [
  konst(`${name}_n`, 'float32', num),
  konst(`${name}_z`, 'float32', 0),
  { name, op: 'div', args: [`${name}_n`, `${name}_z`] },
];

/** JSON as a client reads it: `valueToJson`'s value after JSON text, where NaN and ±Inf are null. */
type Wire = JsonValue | null | Wire[] | { [name: string]: Wire };

/** The result as the server stores an output: `valueToJson`, then JSON text. */
function run(nodes: Node[]): Wire {
  const out = new Interpreter({}).run({ nodes, result: nodes[nodes.length - 1]!.name }, undefined, {
    round: 1,
    label: 'edge',
  });
  try {
    return JSON.parse(JSON.stringify(valueToJson(out))) as Wire;
  } finally {
    disposeValue(out);
  }
}

function failure(nodes: Node[]): string {
  try {
    run(nodes);
  } catch (e) {
    if (e instanceof AppError) return `${e.code}: ${e.message}`;
    throw e;
  }
  throw new Error('expected the evaluation to fail');
}

const I = 2147483647;

describe('docs/protocol.md, numeric semantics', () => {
  it.each<[string, Node[], Wire]>([
    [
      'floor_div rounds toward -inf',
      apply('floor_div', 'int32', [
        [-7, 7],
        [2, -2],
      ]),
      [-4, -4],
    ],
    [
      'int32 mod takes the divisor sign',
      apply('mod', 'int32', [
        [-7, 7, -7, 7],
        [3, -3, -3, 3],
      ]),
      [2, -2, -1, 1],
    ],
    [
      'float32 mod takes the divisor sign',
      apply('mod', 'float32', [
        [-7.5, 7.5],
        [2, -2],
      ]),
      [0.5, -0.5],
    ],
    [
      'float32 division by zero is IEEE',
      apply('div', 'float32', [
        [1, -1, 0],
        [0, 0, 0],
      ]),
      [null, null, null],
    ],
    ['int32 reduce_sum ignores cancelling wraps', apply('reduce_sum', 'int32', [[I, I, -I]]), I],
    [
      'cast to int32 truncates toward zero',
      apply('cast', 'float32', [[2.7, -2.7, 2.5, -0.5]], { dtype: 'int32' }),
      [2, -2, 2, 0],
    ],
    ['cast of -2^31 is exact', apply('cast', 'float32', [[-2147483648]], { dtype: 'int32' }), [-2147483648]],
    [
      'cast to bool is x != 0',
      apply('cast', 'float32', [[-7, 0, 0.5]], { dtype: 'bool' }),
      [true, false, true],
    ],
    [
      'cast of NaN to bool is true',
      [...special('nan', 0), { name: 'r', op: 'cast', args: ['nan'], attrs: { dtype: 'bool' } }],
      true,
    ],
    ['cast of bool to int32 is 0 or 1', apply('cast', 'bool', [[true, false]], { dtype: 'int32' }), [1, 0]],
    ['round is half to even', apply('round', 'float32', [[0.5, 1.5, 2.5, -0.5, -1.5]]), [0, 2, 2, 0, -2]],
    [
      'one_hot out of range is an off_value row',
      apply('one_hot', 'int32', [[-1, 0, 2, 3]], { depth: 3 }),
      [
        [0, 0, 0],
        [1, 0, 0],
        [0, 0, 1],
        [0, 0, 0],
      ],
    ],
    [
      'one_hot honours on_value and off_value',
      apply('one_hot', 'int32', [[1, 5]], { depth: 2, on_value: 5, off_value: -1 }),
      [
        [-1, 5],
        [-1, -1],
      ],
    ],
    ['argmax takes the first of ties', apply('argmax', 'float32', [[1, 3, 3]], { axis: 0 }), 1],
    ['sign of 0 is 0', apply('sign', 'int32', [[-2, 0, 3]]), [-1, 0, 1]],
    [
      'maximum with NaN is NaN',
      [...special('nan', 0), konst('one', 'float32', 1), { name: 'r', op: 'maximum', args: ['nan', 'one'] }],
      null,
    ],
  ])('%s', (_name, nodes, expected) => {
    expect(run(nodes)).toEqual(expected);
  });

  it.each<[string, Node[], RegExp]>([
    ['int32 add', apply('add', 'int32', [[I], [1]]), /EVAL_INT_OVERFLOW/],
    ['int32 mul', apply('mul', 'int32', [[65536], [32768]]), /EVAL_INT_OVERFLOW/],
    ['int32 neg of -2^31', apply('neg', 'int32', [[-I - 1]]), /EVAL_INT_OVERFLOW/],
    ['int32 abs of -2^31', apply('abs', 'int32', [[-I - 1]]), /EVAL_INT_OVERFLOW/],
    ['-2^31 // -1', apply('floor_div', 'int32', [[-I - 1], [-1]]), /EVAL_INT_OVERFLOW/],
    ['int32 square of 46341', apply('square', 'int32', [[46341]]), /EVAL_INT_OVERFLOW/],
    ['int32 reduce_sum', apply('reduce_sum', 'int32', [[I, 1]]), /EVAL_INT_OVERFLOW/],
    ['int32 reduce_prod', apply('reduce_prod', 'int32', [[65536, 65536]]), /EVAL_INT_OVERFLOW/],
    ['cast of 3e9 to int32', apply('cast', 'float32', [[3e9]], { dtype: 'int32' }), /EVAL_INT_OVERFLOW/],
    [
      'cast of +Inf to int32',
      [...special('inf', 1), { name: 'r', op: 'cast', args: ['inf'], attrs: { dtype: 'int32' } }],
      /EVAL_INT_OVERFLOW/,
    ],
    [
      'int32 floor_div by zero',
      apply('floor_div', 'int32', [[1], [0]]),
      /EVAL_ERROR.*integer division by zero/,
    ],
    ['int32 mod by zero', apply('mod', 'int32', [[1], [0]]), /EVAL_ERROR.*integer division by zero/],
    [
      'gather out of range',
      apply('gather', 'int32', [[1, 2, 3], [3]]),
      /EVAL_ERROR.*index 3 is out of range/,
    ],
    [
      'slice past the end',
      apply('slice', 'int32', [[1, 2, 3]], { begin: [2], size: [2] }),
      /EVAL_ERROR.*past the end/,
    ],
  ])('%s fails', (_name, nodes, expected) => {
    expect(failure(nodes)).toMatch(expected);
  });
});

describe('docs/protocol.md, values as JSON', () => {
  it.each<[string, Node[], Wire]>([
    [
      'a struct with every field named is an object',
      [
        konst('a', 'int32', [1, 2]),
        konst('b', 'bool', [true, false]),
        { name: 'r', op: 'struct', args: ['a', 'b'], attrs: { names: ['a', 'b'] } },
      ],
      { a: [1, 2], b: [true, false] },
    ],
    [
      'a struct with an unnamed field is an array',
      [
        konst('a', 'int32', 1),
        konst('b', 'bool', true),
        { name: 'r', op: 'struct', args: ['a', 'b'], attrs: { names: ['a', null] } },
      ],
      [1, true],
    ],
    ['the empty struct is []', [{ name: 'r', op: 'struct' }], []],
    ['float32 0.1 is its exact double', [konst('r', 'float32', 0.1)], 0.10000000149011612],
  ])('%s', (_name, nodes, expected) => {
    expect(run(nodes)).toEqual(expected);
  });

  it('writes NaN and infinities as null', () => {
    const nodes = [...special('nan', 0), ...special('inf', -1)];
    nodes.push({ name: 'r', op: 'struct', args: ['nan', 'inf'] });
    expect(run(nodes)).toEqual([null, null]);
  });
});
