import * as tf from '@tensorflow/tfjs';
import type { Shape, TensorType } from '../types';
import { defineOp, OpError, type OpDef } from './op';
import {
  ANY_DTYPE,
  argAt,
  AXIS_SCHEMA,
  checkDtype,
  checkElements,
  checkSameDtype,
  normalizeAxis,
  result,
  shapeText,
  unifyDim,
} from './shape-infer';

interface JoinAttrs {
  axis?: number;
}

/**
 * Unifies the args' shapes dimension by dimension, skipping `skip` (concat's axis), so that an unknown
 * dimension takes a known one's size; throws naming the first arg that disagrees.
 */
function unifyShapes(shapes: readonly Shape[], skip: number | undefined, what: string): (number | null)[] {
  const first = shapes[0]!;
  const out = [...first];
  shapes.forEach((s, i) => {
    if (s.length !== first.length)
      throw new OpError(`arg ${i}: rank ${s.length} is not ${first.length}, the rank of arg 0`);
    s.forEach((d, j) => {
      if (j === skip) return;
      const u = unifyDim(out[j] ?? null, d);
      if (u === undefined) {
        throw new OpError(
          `arg ${i}: shape ${shapeText(s)} does not match ${shapeText(first)} of arg 0 in dimension ${j} (${what})`,
        );
      }
      out[j] = u;
    });
  });
  return out;
}

function checkArgs(args: readonly TensorType[]): void {
  checkDtype(args, 0, ANY_DTYPE);
  checkSameDtype(args);
}

/** Joins one or more tensors along an existing `axis`; the other dimensions must agree. */
export const concatOp: OpDef = defineOp<Required<JoinAttrs>>({
  name: 'concat',
  arity: { min: 1 },
  attrs: {
    type: 'object',
    additionalProperties: false,
    required: ['axis'],
    properties: { axis: AXIS_SCHEMA },
  },
  infer(args, { axis }) {
    checkArgs(args);
    const a = normalizeAxis(axis, args[0]!.shape.length);
    const shape: (number | null)[] = unifyShapes(
      args.map((t) => t.shape),
      a,
      'only the concat axis may differ',
    );
    const along = args.map((t) => t.shape[a] as number | null);
    shape[a] = along.includes(null) ? null : (along as number[]).reduce((x, y) => x + y, 0);
    return result(args[0]!.dtype, shape);
  },
  run(args, { axis }, ctx) {
    const a = normalizeAxis(axis, argAt(args, 0).rank);
    const shape = unifyShapes(
      args.map((t) => t.shape),
      a,
      'only the concat axis may differ',
    ) as number[];
    shape[a] = args.reduce((n, t) => n + t.shape[a]!, 0);
    checkElements(shape, ctx);
    return tf.concat([...args], a);
  },
});

/** Stacks one or more tensors of one shape along a new `axis` (default 0), in `[-rank-1, rank]`. */
export const stackOp: OpDef = defineOp<JoinAttrs>({
  name: 'stack',
  arity: { min: 1 },
  attrs: { type: 'object', additionalProperties: false, properties: { axis: AXIS_SCHEMA } },
  infer(args, { axis = 0 }) {
    checkArgs(args);
    const shape = unifyShapes(
      args.map((t) => t.shape),
      undefined,
      'stacked tensors must have one shape',
    );
    const a = normalizeAxis(axis, shape.length + 1);
    return result(args[0]!.dtype, [...shape.slice(0, a), args.length, ...shape.slice(a)]);
  },
  run(args, { axis = 0 }, ctx) {
    const shape = unifyShapes(
      args.map((t) => t.shape),
      undefined,
      'stacked tensors must have one shape',
    ) as number[];
    checkElements([args.length, ...shape], ctx);
    return tf.stack([...args], normalizeAxis(axis, argAt(args, 0).rank + 1));
  },
});

/** The ops that join several tensors. */
export const JOIN_OPS: readonly OpDef[] = [concatOp, stackOp];
