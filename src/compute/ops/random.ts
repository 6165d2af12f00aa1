import * as tf from '@tensorflow/tfjs';
import { defineOp, OpError, type OpDef } from './op';
import { checkElements, result, STATIC_SHAPE_SCHEMA } from './shape-infer';

interface RandomNormalAttrs {
  shape: number[];
  mean?: number;
  stddev?: number;
  seed?: number;
}

/**
 * The seed of one draw: FNV-1a (32 bit) of the plan's seed, the round and the node, so a round that is
 * re-run (after a crash) draws the same noise while rounds and nodes differ from one another.
 */
export function drawSeed(seed: number, round: number, node: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}/${round}/${node}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Normal noise of a static shape; server only, so clients cannot be told to draw predictable noise. */
export const randomNormalOp: OpDef = defineOp<RandomNormalAttrs>({
  name: 'random_normal',
  arity: 0,
  serverOnly: true,
  attrs: {
    type: 'object',
    additionalProperties: false,
    required: ['shape'],
    properties: {
      shape: STATIC_SHAPE_SCHEMA,
      mean: { type: 'number' },
      stddev: { type: 'number' },
      seed: { type: 'integer' },
    },
  },
  infer(_args, { shape, stddev }) {
    if (stddev !== undefined && stddev < 0) throw new OpError(`attr stddev: ${stddev} is negative`);
    return result('float32', shape);
  },
  run(_args, { shape, mean = 0, stddev = 1, seed }, ctx) {
    checkElements(shape, ctx);
    const s = seed === undefined ? undefined : drawSeed(seed, ctx.round, ctx.node);
    return tf.randomNormal(shape, mean, stddev, 'float32', s);
  },
});

/** The random ops. */
export const RANDOM_OPS: readonly OpDef[] = [randomNormalOp];
