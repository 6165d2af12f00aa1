/**
 * int32 overflow detection for the ops whose integer result can leave [-2^31, 2^31-1]. TensorFlow.js (like
 * TensorFlow) wraps such results silently, which turns a hostile upload of 2^31-1 into a negative sum; the
 * interpreter makes them an error instead (EVAL_INT_OVERFLOW), so an int32 result is exact or the
 * evaluation fails. Only int32 results are checked: float32 paths run no extra op.
 */
import * as tf from '@tensorflow/tfjs';
import { INT32_MAX, INT32_MIN } from '../types';
import { OpError } from './op';

const TWO_31 = 2 ** 31;
const TWO_32 = 2 ** 32;
/** float32's unit roundoff. */
const U = 2 ** -24;
/** Above this many reduced elements, the float32 bound below is too loose to be worth computing. */
const MAX_FILTERED_ELEMENTS = 2 ** 20;

/** An int32 op's exact result is outside int32; the interpreter reports it as EVAL_INT_OVERFLOW. */
export class IntOverflowError extends OpError {
  constructor(message: string) {
    super(message);
    this.name = 'IntOverflowError';
  }
}

function overflowAt(index: number, approx: number): IntOverflowError {
  return new IntOverflowError(
    `int32 overflow: element ${index} of the result is about ${approx}, outside [${INT32_MIN}, ${INT32_MAX}]`,
  );
}

/**
 * Returns the int32 result `r` of an elementwise op after checking it against `exact`, the same op computed
 * in float32 from the args cast to float32. Throws IntOverflowError where |exact| >= 2^32 or where r is
 * 2^31 or more away from it.
 *
 * This is exact, not a heuristic, for one add, sub, mul, neg, abs, square, squared difference or floor
 * division of int32 values: when |exact| < 2^32 the float32 rounding errors (of the casts and of the one
 * op) stay below 2^10, while a wrapped r differs from the true result by a multiple of 2^32. Results
 * computed by a backend through float32 internally (WASM's int32 neg or floor_div round above 2^24) are
 * therefore accepted when they are merely rounded and refused when they wrapped.
 */
export function checkedElementwise(r: tf.Tensor, exact: () => tf.Tensor): tf.Tensor {
  if (r.dtype !== 'int32' || r.size === 0) return r;
  throwAtFirst(() => {
    const f = exact();
    const far = tf.greaterEqual(tf.abs(tf.sub(tf.cast(r, 'float32'), f)), TWO_31);
    return [tf.logicalOr(tf.greaterEqual(tf.abs(f), TWO_32), far), f];
  });
  return r;
}

/**
 * float32 to int32, truncating toward zero, or IntOverflowError where the truncated value is outside int32.
 * The range is checked directly rather than by {@link checkedElementwise}'s distance to the result, which
 * would let a backend that saturates (3e9 to 2^31-1) pass. Truncated float32 values are exact integers, and
 * 2^31-1 is not a float32, so `t >= 2^31` is the whole upper test.
 */
export function checkedToInt32(x: tf.Tensor): tf.Tensor {
  if (x.size > 0) {
    throwAtFirst(() => {
      const t = tf.mul(tf.sign(x), tf.floor(tf.abs(x)));
      return [tf.logicalOr(tf.less(t, INT32_MIN), tf.greaterEqual(t, TWO_31)), t];
    });
  }
  return tf.cast(x, 'int32');
}

/** Throws IntOverflowError naming the first element where `bad` holds, with its `approx` value. */
function throwAtFirst(check: () => [bad: tf.Tensor, approx: tf.Tensor]): void {
  const first = tf.tidy(() => {
    const [bad, approx] = check();
    if (tf.any(bad).dataSync()[0] !== 1) return undefined;
    const i = tf.argMax(tf.reshape(tf.cast(bad, 'int32'), [-1])).dataSync()[0]!;
    return [i, tf.reshape(approx, [-1]).dataSync()[i]!] as const;
  });
  if (first) throw overflowAt(first[0], first[1]);
}

/** int32 to float32, for the `exact` side of a check. */
export function asFloat(t: tf.Tensor): tf.Tensor {
  return tf.cast(t, 'float32');
}

/**
 * Checks an int32 reduce_sum or reduce_prod over `axes` of `x`, whose wrapped result the caller computed.
 * A float32 bound on the magnitude (sum or product of |x|, widened by its worst-case rounding error)
 * clears the common case with tfjs ops alone; only when it cannot, the exact result of each output is
 * computed from the int32 data (hi/lo 16-bit halves for sums, so no double ever rounds).
 */
export function checkIntReduction(kind: 'sum' | 'prod', x: tf.Tensor, axes: readonly number[]): void {
  if (x.dtype !== 'int32' || x.size === 0) return;
  const n = axes.reduce((p, a) => p * x.shape[a]!, 1);
  if (n <= 1) return;
  if (n < MAX_FILTERED_ELEMENTS) {
    const bound = tf.tidy(() => {
      const mag = tf.abs(asFloat(x));
      const red = kind === 'sum' ? tf.sum(mag, [...axes]) : tf.prod(mag, [...axes]);
      return tf.max(red).dataSync()[0]!;
    });
    // n float32 ops and one cast: relative error at most (n + 1)u / (1 - (n + 1)u) < 2(n + 2)u here.
    if (Number.isFinite(bound) && bound * (1 + 2 * (n + 2) * U) < INT32_MAX) return;
  }
  exactReduction(kind, x, axes, n);
}

/** Throws IntOverflowError when any output of the reduction is outside int32, computed exactly in JS. */
function exactReduction(kind: 'sum' | 'prod', x: tf.Tensor, axes: readonly number[], n: number): void {
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const rows = tf.tidy(() => tf.reshape(tf.transpose(x, [...kept, ...axes]), [-1, n]).dataSync());
  const outputs = rows.length / n;
  for (let row = 0; row < outputs; row++) {
    const at = row * n;
    if (kind === 'sum') {
      let hi = 0;
      let lo = 0;
      for (let i = at; i < at + n; i++) {
        const v = rows[i]!;
        hi += v >> 16;
        lo += v & 0xffff;
      }
      // |hi| <= 2^15 n and lo <= 2^16 n are exact; their combination is exact below 2^53 and out of
      // range above it either way.
      const total = hi * 65536 + lo;
      if (total < INT32_MIN || total > INT32_MAX) throw overflowAt(row, total);
    } else {
      let p = 1;
      let zero = false;
      let over = false;
      for (let i = at; i < at + n; i++) {
        const v = rows[i]!;
        if (v === 0) {
          zero = true;
          break;
        }
        // |p| never shrinks (every |v| >= 1), so once past 2^31 it stays out of range; below that the
        // product is exact, and any product above 2^53 is out of range however it rounds.
        if (!over) p *= v;
        if (Math.abs(p) > TWO_31) over = true;
      }
      if (!zero && (over || p < INT32_MIN || p > INT32_MAX)) throw overflowAt(row, p);
    }
  }
}
