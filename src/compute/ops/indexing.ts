import * as tf from '@tensorflow/tfjs';
import { withZeroGradient } from './gradient';
import { defineOp, OpError, type OpDef } from './op';
import {
  ANY_DTYPE,
  argAt,
  AXIS_SCHEMA,
  checkDtype,
  checkElements,
  MAX_RANK,
  normalizeAxis,
  product,
  result,
} from './shape-infer';

interface SliceAttrs {
  begin: number[];
  size: number[];
}

/** The result dims of a slice; `dims` may hold unknown (null) sizes, checked again at run time. */
function sliceDims(dims: readonly (number | null)[], { begin, size }: SliceAttrs): (number | null)[] {
  if (begin.length !== dims.length)
    throw new OpError(`attr begin: has ${begin.length} entries, arg 0 has rank ${dims.length}`);
  if (size.length !== dims.length)
    throw new OpError(`attr size: has ${size.length} entries, arg 0 has rank ${dims.length}`);
  return dims.map((d, i) => {
    const b = begin[i]!;
    const s = size[i]!;
    if (d !== null && b > d)
      throw new OpError(`attr begin: ${b} is past the end of dimension ${i} (size ${d})`);
    if (d !== null && s !== -1 && b + s > d) {
      throw new OpError(`attr size: ${b}+${s} is past the end of dimension ${i} (size ${d})`);
    }
    if (s !== -1) return s;
    return d === null ? null : d - b;
  });
}

/** The block starting at `begin` of `size` (`-1` = to the end of that dimension). */
export const sliceOp: OpDef = defineOp<SliceAttrs>({
  name: 'slice',
  arity: 1,
  attrs: {
    type: 'object',
    additionalProperties: false,
    required: ['begin', 'size'],
    properties: {
      begin: { type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: MAX_RANK },
      size: { type: 'array', items: { type: 'integer', minimum: -1 }, maxItems: MAX_RANK },
    },
  },
  infer(args, attrs) {
    const x = checkDtype(args, 0, ANY_DTYPE);
    return result(x.dtype, sliceDims(x.shape, attrs));
  },
  run(args, attrs) {
    const x = argAt(args, 0);
    // Checked here too: WASM's slice reads past the end of the buffer instead of failing.
    const size = sliceDims(x.shape, attrs) as number[];
    return tf.slice(x, attrs.begin, size);
  },
});

interface GatherAttrs {
  axis?: number;
}

/** dL/dx of a gather: scatter-add dy back; tfjs's own uses UnsortedSegmentSum, which WASM lacks. */
function gatherGrad(dy: tf.Tensor, indices: tf.Tensor, xShape: readonly number[], axis: number): tf.Tensor {
  const p = product(xShape.slice(0, axis));
  const n = xShape[axis]!;
  const q = product(xShape.slice(axis + 1));
  const m = indices.size;
  if (m === 0 || p * n * q === 0) return tf.zeros([...xShape]);
  const rows = tf.reshape(tf.transpose(tf.reshape(dy, [p, m, q]), [1, 0, 2]), [m, p * q]);
  const summed = tf.scatterND(tf.reshape(indices, [m, 1]), rows, [n, p * q]);
  return tf.reshape(tf.transpose(tf.reshape(summed, [n, p, q]), [1, 0, 2]), [...xShape]);
}

/** Rows (slices along `axis`, default 0) of x picked by int32 indices of any shape. */
export const gatherOp: OpDef = defineOp<GatherAttrs>({
  name: 'gather',
  arity: 2,
  attrs: { type: 'object', additionalProperties: false, properties: { axis: AXIS_SCHEMA } },
  infer(args, { axis = 0 }) {
    const x = checkDtype(args, 0, ANY_DTYPE);
    const indices = checkDtype(args, 1, ['int32']);
    const a = normalizeAxis(axis, x.shape.length);
    return result(x.dtype, [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)]);
  },
  run(args, { axis = 0 }, ctx) {
    const x = argAt(args, 0);
    const indices = argAt(args, 1);
    const a = normalizeAxis(axis, x.rank);
    const n = x.shape[a]!;
    const bad = indices.dataSync().find((i) => i < 0 || i >= n);
    if (bad !== undefined)
      throw new OpError(`arg 1: index ${bad} is out of range for dimension ${a} of size ${n}`);
    const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
    checkElements(shape, ctx);
    // tfjs gives a wrong shape for an empty result gathered from an empty dimension.
    if (product(shape) === 0) return withZeroGradient([x, indices], () => tf.zeros(shape, x.dtype));
    const op = tf.customGrad((...xs: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xv, iv, save] = xs as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      // Indices made inside the differentiated function are disposed before backprop unless saved.
      save([iv]);
      return {
        value: tf.gather(xv, iv, a),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
          gatherGrad(dy, saved[0]!, xv.shape, a),
          tf.zeros(iv.shape),
        ],
      };
    });
    return op(x, indices);
  },
});

interface OneHotAttrs {
  depth: number;
  on_value?: number;
  off_value?: number;
}

/** float32 one-hot rows of `depth` for int32 indices; an index outside `[0, depth)` gives a row of off_value. */
export const oneHotOp: OpDef = defineOp<OneHotAttrs>({
  name: 'one_hot',
  arity: 1,
  attrs: {
    type: 'object',
    additionalProperties: false,
    required: ['depth'],
    properties: {
      depth: { type: 'integer', minimum: 1 },
      on_value: { type: 'number' },
      off_value: { type: 'number' },
    },
  },
  infer(args, { depth }) {
    const indices = checkDtype(args, 0, ['int32']);
    if (depth < 1) throw new OpError(`attr depth: ${depth} is less than 1`);
    return result('float32', [...indices.shape, depth]);
  },
  run(args, { depth, on_value = 1, off_value = 0 }, ctx) {
    const indices = argAt(args, 0);
    checkElements([...indices.shape, depth], ctx);
    // WASM's OneHot writes int32 bits whatever the dtype asked for, so build an int32 mask and select.
    const hot = tf.greater(tf.oneHot(indices, depth), tf.scalar(0, 'int32'));
    return tf.where(hot, tf.scalar(on_value), tf.scalar(off_value));
  },
});

/** The ops that pick elements: slice, gather, one_hot. */
export const INDEXING_OPS: readonly OpDef[] = [sliceOp, gatherOp, oneHotOp];
