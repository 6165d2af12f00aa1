import { logAFractional, logAWhole } from './sampled-gaussian';

// Read once, not looked up as globals in the loops (see special.ts).
const { exp, expm1, floor, log, log1p, max, min } = Math;
const { POSITIVE_INFINITY: INF, isInteger } = Number;

/**
 * Differential-privacy accounting for the Poisson-subsampled Gaussian mechanism by Rényi DP (RDP), with the math
 * of Google's dp_accounting (rdp/rdp_privacy_accountant.py), so that the epsilons Roundhouse reports agree with
 * the library that federated-learning papers and TensorFlow Privacy quote: RDP per order from the binomial
 * expansion (whole orders) or the two-series expansion of Mironov, Talwar and Zhang, arXiv:1908.10530 §3.3
 * (fractional orders), summed over steps, then turned into (ε, δ) by the conversion of Proposition 12 of
 * arXiv:2004.00010 with the KL-divergence bound beside it.
 *
 * Inputs are checked and refused with a RangeError naming the argument. src/dp depends on nothing else in the
 * project, so the caller turns that into its own error (an AppError at the HTTP edge).
 */

/** One DP release per step: each client is in a step's cohort with probability `samplingRate`, independently,
 * and the sum gets Gaussian noise of standard deviation `noiseMultiplier` × the clipping norm. */
export interface DpAccounting {
  /** Poisson sampling rate q, in [0, 1]. */
  readonly samplingRate: number;
  /** Noise standard deviation over the L2 sensitivity, σ >= 0 (0 means no privacy). */
  readonly noiseMultiplier: number;
  /** The δ of the (ε, δ) guarantee, in (0, 1). */
  readonly delta: number;
}

/** An ε with the RDP order whose bound gave it. */
export interface EpsilonAtOrder {
  readonly epsilon: number;
  readonly order: number;
}

/** A δ with the RDP order whose bound gave it. */
export interface DeltaAtOrder {
  readonly delta: number;
  readonly order: number;
}

/** dp_accounting's DEFAULT_RDP_ORDERS: 1.1 to 10.9 by tenths (2 to 10 among them), 11 to 63, then 128, 256, 512
 * and 1024. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
  1024,
]);

/** Whole orders above this are refused: their binomial sum has order + 1 terms. Infinity itself is allowed. */
export const MAX_FINITE_ORDER = 100_000;

// Below this order the conversion to (ε, δ) is numerically unstable, and of no use for the Gaussian anyway.
const MIN_CONVERSION_ORDER = 1.01;

function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : `${typeof value} ${JSON.stringify(value)}`;
}

function checkSamplingRate(q: number): void {
  if (typeof q !== 'number' || !(q >= 0 && q <= 1)) {
    throw new RangeError(`dp: samplingRate must be a number in [0, 1], got ${describe(q)}`);
  }
}

function checkNoiseMultiplier(sigma: number): void {
  if (typeof sigma !== 'number' || !(sigma >= 0) || !Number.isFinite(sigma)) {
    throw new RangeError(`dp: noiseMultiplier must be a finite number >= 0, got ${describe(sigma)}`);
  }
}

function checkDelta(delta: number): void {
  if (typeof delta !== 'number' || !(delta > 0 && delta < 1)) {
    throw new RangeError(`dp: delta must be a number in (0, 1), got ${describe(delta)}`);
  }
}

function checkCount(name: string, n: number): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`dp: ${name} must be a whole number >= 0, got ${describe(n)}`);
  }
}

function checkOrders(orders: readonly number[]): void {
  if (!Array.isArray(orders) || orders.length === 0) {
    throw new RangeError('dp: orders must be a non-empty array of RDP orders');
  }
  orders.forEach((a, i) => {
    const ok = typeof a === 'number' && a >= 1 && (a <= MAX_FINITE_ORDER || a === INF);
    if (!ok) {
      throw new RangeError(
        `dp: orders[${i}] must be a number in [1, ${MAX_FINITE_ORDER}] or Infinity, got ${describe(a)}`,
      );
    }
  });
}

function checkRdp(orders: readonly number[], rdp: readonly number[]): void {
  checkOrders(orders);
  if (!Array.isArray(rdp) || rdp.length !== orders.length) {
    throw new RangeError(`dp: rdp must have one value per order (${orders.length}), got ${rdp?.length}`);
  }
  rdp.forEach((r, i) => {
    // A negative RDP can only come from a broken computation; dp_accounting reads it as ε = 0, which would
    // report perfect privacy for a bug.
    if (typeof r !== 'number' || !(r >= 0)) {
      throw new RangeError(`dp: rdp[${i}] must be a number >= 0 (or Infinity), got ${describe(r)}`);
    }
  });
}

/** RDP of one step at one order (q, σ and the order already checked). */
function rdpOneStep(q: number, sigma: number, order: number): number {
  if (q === 0) return 0;
  if (order === INF || sigma === 0) return INF;
  if (q === 1) return order / (2 * sigma * sigma);
  // ln A_1 / (1 - 1) is 0/0 in dp_accounting (NaN there, never chosen). The order-1 RDP (the KL divergence) of
  // the subsampled Gaussian has no closed form; Infinity is a true bound and likewise never chosen.
  if (order === 1) return INF;
  const logA = isInteger(order) ? logAWhole(q, sigma, order) : logAFractional(q, sigma, order);
  // A_α >= 1, so ln A_α < 0 is rounding only.
  return max(0, logA / (order - 1));
}

/** RDP composes by addition: `steps` equal steps multiply it; no step at all costs nothing, even at Infinity. */
function composed(rdp: readonly number[], steps: number): number[] {
  return rdp.map((r) => (steps === 0 ? 0 : r * steps));
}

/**
 * RDP of `steps` steps of the Gaussian mechanism with noise multiplier `sigma` on a Poisson sample of rate `q`, at
 * each of `orders` (each >= 1, whole or fractional, or Infinity). Values can be Infinity (σ = 0, order Infinity,
 * or an order whose series did not settle).
 */
export function rdpSubsampledGaussian(
  q: number,
  sigma: number,
  steps: number,
  orders: readonly number[] = DEFAULT_ORDERS,
): number[] {
  checkSamplingRate(q);
  checkNoiseMultiplier(sigma);
  checkCount('steps', steps);
  checkOrders(orders);
  return composed(
    orders.map((a) => rdpOneStep(q, sigma, a)),
    steps,
  );
}

/** The ε bound at one order, before the minimum over orders. */
function epsilonAt(order: number, rdp: number, delta: number): number {
  // KL bound: δ >= sqrt(1 - e^-KL) already gives ε = 0, and RDP at any order >= 1 bounds the KL divergence.
  if (delta * delta + expm1(-rdp) > 0) return 0;
  if (order === INF) return rdp; // the limit of the bound below: pure ε-DP
  if (order > MIN_CONVERSION_ORDER) {
    return rdp + log1p(-1 / order) - log(delta * order) / (order - 1);
  }
  return INF;
}

/**
 * The smallest ε such that the mechanism with RDP `rdp` at `orders` is (ε, δ)-DP, with the order that gives it
 * (the first such order on ties), by dp_accounting's compute_epsilon.
 */
export function epsilonFromRdp(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
): EpsilonAtOrder {
  checkRdp(orders, rdp);
  checkDelta(delta);
  let best = 0;
  let bestEpsilon = INF;
  for (let i = 0; i < orders.length; i++) {
    const eps = epsilonAt(orders[i]!, rdp[i]!, delta);
    if (i === 0 || eps < bestEpsilon) {
      best = i;
      bestEpsilon = eps;
    }
  }
  return { epsilon: max(0, bestEpsilon), order: orders[best]! };
}

/** ln δ at one order, before the minimum over orders. */
function logDeltaAt(order: number, rdp: number, epsilon: number): number {
  let logDelta = rdp === 0 ? -INF : 0.5 * log1p(-exp(-rdp)); // KL bound, any order
  if (order === INF) {
    if (rdp <= epsilon) logDelta = -INF;
  } else if (order > MIN_CONVERSION_ORDER) {
    const bound = (order - 1) * (rdp - epsilon + log1p(-1 / order)) - log(order);
    logDelta = min(logDelta, bound);
  }
  return logDelta;
}

/**
 * The smallest δ such that the mechanism with RDP `rdp` at `orders` is (ε, δ)-DP, with the order that gives it,
 * by dp_accounting's compute_delta.
 */
export function deltaFromRdp(
  orders: readonly number[],
  rdp: readonly number[],
  epsilon: number,
): DeltaAtOrder {
  checkRdp(orders, rdp);
  if (typeof epsilon !== 'number' || !(epsilon >= 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(`dp: epsilon must be a finite number >= 0, got ${describe(epsilon)}`);
  }
  let best = 0;
  let bestLog = INF;
  for (let i = 0; i < orders.length; i++) {
    const logDelta = logDeltaAt(orders[i]!, rdp[i]!, epsilon);
    if (i === 0 || logDelta < bestLog) {
      best = i;
      bestLog = logDelta;
    }
  }
  return { delta: min(exp(bestLog), 1), order: orders[best]! };
}

function checkAccounting(a: DpAccounting): void {
  if (typeof a !== 'object' || a === null) throw new RangeError('dp: accounting parameters are missing');
  checkSamplingRate(a.samplingRate);
  checkNoiseMultiplier(a.noiseMultiplier);
  checkDelta(a.delta);
}

/** The ε spent after `steps` steps at `a`'s sampling rate and noise, for `a.delta`. */
export function epsilonAfter(
  steps: number,
  a: DpAccounting,
  orders: readonly number[] = DEFAULT_ORDERS,
): EpsilonAtOrder {
  checkAccounting(a);
  const rdp = rdpSubsampledGaussian(a.samplingRate, a.noiseMultiplier, steps, orders);
  return epsilonFromRdp(orders, rdp, a.delta);
}

/**
 * The largest number of steps, at most `maxSteps`, whose ε stays <= `targetEpsilon` (0 if even one step
 * exceeds it). ε never falls as steps grow, so a binary search finds it; the per-step RDP is computed once.
 */
export function stepsWithin(
  targetEpsilon: number,
  a: DpAccounting,
  maxSteps: number,
  orders: readonly number[] = DEFAULT_ORDERS,
): number {
  if (typeof targetEpsilon !== 'number' || !(targetEpsilon >= 0)) {
    throw new RangeError(`dp: targetEpsilon must be a number >= 0, got ${describe(targetEpsilon)}`);
  }
  checkAccounting(a);
  checkCount('maxSteps', maxSteps);
  const perStep = rdpSubsampledGaussian(a.samplingRate, a.noiseMultiplier, 1, orders);
  const within = (steps: number): boolean =>
    epsilonFromRdp(orders, composed(perStep, steps), a.delta).epsilon <= targetEpsilon;
  if (within(maxSteps)) return maxSteps;
  // Invariant: `lo` steps fit, `hi` steps do not (0 steps cost ε = 0, which fits any target).
  let lo = 0;
  let hi = maxSteps;
  while (hi - lo > 1) {
    const mid = lo + floor((hi - lo) / 2);
    if (within(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
