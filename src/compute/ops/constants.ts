import * as tf from '@tensorflow/tfjs';
import { isInt32, type Dtype } from '../types';
import { defineOp, OpError, type OpDef } from './op';
import {
  ANY_DTYPE,
  argAt,
  checkDtype,
  checkElements,
  DTYPE_SCHEMA,
  NO_ATTRS,
  product,
  result,
  STATIC_SHAPE_SCHEMA,
} from './shape-infer';

/** The largest finite float32; a larger literal would silently become Infinity. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** Infinities are spelled as text: JSON has no literal for them. */
type Infinite = 'inf' | '-inf';
type Scalar = number | boolean | Infinite;

interface ConstAttrs {
  dtype: Dtype;
  shape: number[];
  value: Scalar | Scalar[];
}

const SCALAR_SCHEMA = {
  anyOf: [{ type: 'number' }, { type: 'boolean' }, { enum: ['inf', '-inf'] }],
} as const;

/** The number an element stands for ("inf" and "-inf" are the float32 infinities). */
function elementValue(v: Scalar): number {
  return v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v);
}

/** Why `v` is not a valid element of a `dtype` constant, or null. */
function badElement(v: Scalar, dtype: Dtype): string | null {
  switch (dtype) {
    case 'bool':
      return typeof v === 'boolean' || v === 0 || v === 1 ? null : `${String(v)} is not a boolean (or 0/1)`;
    case 'int32':
      return typeof v === 'number' && isInt32(v) ? null : `${String(v)} is not an int32`;
    case 'float32':
      return v === 'inf' ||
        v === '-inf' ||
        (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= FLOAT32_MAX)
        ? null
        : `${String(v)} is not a float32 (a finite number, "inf" or "-inf")`;
  }
}

/**
 * A tensor literal: a number or boolean filled to `shape`, or a flat array of `prod(shape)` elements; a
 * float32 element may be "inf" or "-inf" (a running minimum or maximum starts there).
 */
export const constOp: OpDef = defineOp<ConstAttrs>({
  name: 'const',
  arity: 0,
  attrs: {
    type: 'object',
    additionalProperties: false,
    required: ['dtype', 'shape', 'value'],
    properties: {
      dtype: DTYPE_SCHEMA,
      shape: STATIC_SHAPE_SCHEMA,
      value: { anyOf: [SCALAR_SCHEMA, { type: 'array', items: SCALAR_SCHEMA }] },
    },
  },
  infer(_args, { dtype, shape, value }) {
    if (Array.isArray(value)) {
      const n = product(shape);
      if (value.length !== n) {
        throw new OpError(`attr value: has ${value.length} elements, shape [${shape.join(',')}] needs ${n}`);
      }
      value.forEach((v, i) => {
        const why = badElement(v, dtype);
        if (why) throw new OpError(`attr value: element ${i}: ${why}`);
      });
    } else {
      const why = badElement(value, dtype);
      if (why) throw new OpError(`attr value: ${why}`);
    }
    return result(dtype, shape);
  },
  run(_args, { dtype, shape, value }, ctx) {
    checkElements(shape, ctx);
    if (Array.isArray(value)) return tf.tensor(value.map(elementValue), shape, dtype);
    return tf.fill(shape, elementValue(value), dtype);
  },
});

function likeOp(name: string, fill: (x: tf.Tensor) => tf.Tensor): OpDef {
  return defineOp<Record<string, never>>({
    name,
    arity: 1,
    attrs: NO_ATTRS,
    infer(args) {
      const x = checkDtype(args, 0, ANY_DTYPE);
      return result(x.dtype, x.shape);
    },
    run: (args) => fill(argAt(args, 0)),
  });
}

/** Zeros (false) of the arg's type. */
export const zerosLikeOp = likeOp('zeros_like', (x) => tf.zerosLike(x));

/** Ones (true) of the arg's type. */
export const onesLikeOp = likeOp('ones_like', (x) => tf.onesLike(x));

/** The constant ops. */
export const CONSTANT_OPS: readonly OpDef[] = [constOp, zerosLikeOp, onesLikeOp];
