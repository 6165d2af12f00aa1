import * as tf from '@tensorflow/tfjs';
import { numElements } from '../types';
import { withZeroGradient } from './gradient';
import { defineOp, OpError, type OpDef } from './op';
import {
  ANY_DTYPE,
  argAt,
  AXES_SCHEMA,
  AXIS_SCHEMA,
  checkDtype,
  dimAt,
  MAX_RANK,
  NO_ATTRS,
  normalizeAxes,
  normalizeAxis,
  product,
  result,
  shapeText,
} from './shape-infer';

interface ReshapeAttrs {
  shape: number[];
}

/** The size `-1` stands for, or why `count` elements cannot take `shape`; `count` null when unknown. */
function resolveReshape(shape: readonly number[], count: number | null, knownPart: number): number | null {
  const holes = shape.filter((d) => d === -1).length;
  if (holes > 1) throw new OpError(`attr shape: ${shapeText(shape)} has more than one -1`);
  const rest = product(shape.filter((d) => d !== -1));
  if (holes === 0) {
    if (count !== null && count !== rest) {
      throw new OpError(`attr shape: ${shapeText(shape)} holds ${rest} elements, arg 0 has ${count}`);
    }
    // With unknown dims the count is a multiple of the known ones.
    if (count === null && (knownPart === 0 ? rest !== 0 : rest % knownPart !== 0)) {
      throw new OpError(
        `attr shape: ${shapeText(shape)} holds ${rest} elements, not a multiple of ${knownPart}`,
      );
    }
    return null;
  }
  if (rest === 0)
    throw new OpError(
      `attr shape: -1 is ambiguous when the other dimensions of ${shapeText(shape)} hold 0 elements`,
    );
  if (count === null) return knownPart === 0 ? 0 : null;
  if (count % rest !== 0) {
    throw new OpError(
      `attr shape: ${count} elements of arg 0 do not fill ${shapeText(shape)} (${count} is not a multiple of ${rest})`,
    );
  }
  return count / rest;
}

/** The same elements in a new shape; one `-1` takes what is left (unknown when the arg's size is). */
export const reshapeOp: OpDef = defineOp<ReshapeAttrs>({
  name: 'reshape',
  arity: 1,
  attrs: {
    type: 'object',
    additionalProperties: false,
    required: ['shape'],
    properties: { shape: { type: 'array', items: { type: 'integer', minimum: -1 }, maxItems: MAX_RANK } },
  },
  infer(args, { shape }) {
    const x = checkDtype(args, 0, ANY_DTYPE);
    const knownPart = product(x.shape.filter((d): d is number => d !== null));
    const hole = resolveReshape(shape, numElements(x.shape), knownPart);
    return result(
      x.dtype,
      shape.map((d) => (d === -1 ? hole : d)),
    );
  },
  run(args, { shape }) {
    const x = argAt(args, 0);
    const hole = resolveReshape(shape, x.size, x.size);
    return tf.reshape(
      x,
      shape.map((d) => (d === -1 ? hole! : d)),
    );
  },
});

interface TransposeAttrs {
  perm?: number[];
}

function permutation(perm: readonly number[] | undefined, rank: number): number[] {
  if (perm === undefined) return Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== rank || sorted.some((p, i) => p !== i)) {
    throw new OpError(
      `attr perm: [${perm.join(',')}] is not a permutation of 0..${rank - 1} (arg 0 has rank ${rank})`,
    );
  }
  return [...perm];
}

/** Permutes the dimensions; dimension i of the result is dimension perm[i] of the arg. */
export const transposeOp: OpDef = defineOp<TransposeAttrs>({
  name: 'transpose',
  arity: 1,
  attrs: {
    type: 'object',
    additionalProperties: false,
    properties: { perm: { type: 'array', items: { type: 'integer' }, maxItems: MAX_RANK } },
  },
  infer(args, { perm }) {
    const x = checkDtype(args, 0, ANY_DTYPE);
    return result(
      x.dtype,
      permutation(perm, x.shape.length).map((p) => dimAt(x.shape, p)),
    );
  },
  run: (args, { perm }) => tf.transpose(argAt(args, 0), permutation(perm, argAt(args, 0).rank)),
});

interface AxisAttrs {
  axis: number;
}

const AXIS_REQUIRED = {
  type: 'object',
  additionalProperties: false,
  required: ['axis'],
  properties: { axis: AXIS_SCHEMA },
} as const;

/** Inserts a dimension of size 1 at `axis`, in `[-rank-1, rank]`. */
export const expandDimsOp: OpDef = defineOp<AxisAttrs>({
  name: 'expand_dims',
  arity: 1,
  attrs: AXIS_REQUIRED,
  infer(args, { axis }) {
    const x = checkDtype(args, 0, ANY_DTYPE);
    const a = normalizeAxis(axis, x.shape.length + 1);
    return result(x.dtype, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
  },
  run: (args, { axis }) => tf.expandDims(argAt(args, 0), normalizeAxis(axis, argAt(args, 0).rank + 1)),
});

interface SqueezeAttrs {
  axes?: number[];
}

/** Removes size-1 dimensions: `axes` (an unknown one must be 1 at run time), or every one when omitted. */
export const squeezeOp: OpDef = defineOp<SqueezeAttrs>({
  name: 'squeeze',
  arity: 1,
  attrs: { type: 'object', additionalProperties: false, properties: { axes: AXES_SCHEMA } },
  infer(args, { axes }) {
    const x = checkDtype(args, 0, ANY_DTYPE);
    if (axes === undefined) {
      // Which dims go would depend on run-time sizes, and the result's rank must be static.
      if (x.shape.includes(null)) {
        throw new OpError(`attr axes: needed because arg 0 ${shapeText(x.shape)} has unknown dimensions`);
      }
      return result(
        x.dtype,
        x.shape.filter((d) => d !== 1),
      );
    }
    const ax = normalizeAxes(axes, x.shape.length);
    for (const a of ax) {
      const d = x.shape[a];
      if (d !== null && d !== 1)
        throw new OpError(`attr axes: dimension ${a} of arg 0 ${shapeText(x.shape)} is ${d}, not 1`);
    }
    return result(
      x.dtype,
      x.shape.filter((_, i) => !ax.includes(i)),
    );
  },
  run(args, { axes }) {
    const x = argAt(args, 0);
    const ax =
      axes === undefined ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : normalizeAxes(axes, x.rank);
    for (const a of ax) {
      if (x.shape[a] !== 1)
        throw new OpError(`attr axes: dimension ${a} of arg 0 ${shapeText(x.shape)} is not 1`);
    }
    // reshape rather than tf.squeeze, which reads `axes: []` as "every size-1 dimension".
    return tf.reshape(
      x,
      x.shape.filter((_, i) => !ax.includes(i)),
    );
  },
});

/** The run-time size of dimension `axis`, as an int32 scalar (for shapes with unknown dimensions). */
export const dimOp: OpDef = defineOp<AxisAttrs>({
  name: 'dim',
  arity: 1,
  attrs: AXIS_REQUIRED,
  infer(args, { axis }) {
    const x = checkDtype(args, 0, ANY_DTYPE);
    normalizeAxis(axis, x.shape.length);
    return result('int32', []);
  },
  run(args, { axis }) {
    const x = argAt(args, 0);
    // Tied to x with a zero gradient, so a loss built from it still has a path to the params.
    return withZeroGradient([x], () => tf.scalar(x.shape[normalizeAxis(axis, x.rank)]!, 'int32'));
  },
});

/** The run-time number of elements, as an int32 scalar. */
export const sizeOp: OpDef = defineOp<Record<string, never>>({
  name: 'size',
  arity: 1,
  attrs: NO_ATTRS,
  infer(args) {
    checkDtype(args, 0, ANY_DTYPE);
    return result('int32', []);
  },
  run: (args) => withZeroGradient([argAt(args, 0)], ([x]) => tf.scalar(x!.size, 'int32')),
});

/** The ops that change a tensor's shape but not its elements, and the shape queries. */
export const SHAPE_OPS: readonly OpDef[] = [reshapeOp, transposeOp, expandDimsOp, squeezeOp, dimOp, sizeOp];
