import { logErfc, logGamma } from './special';

/**
 * ln A_α for the Poisson-subsampled Gaussian mechanism, A_α = E_{z ~ N(0, σ²)} [((1 - q) + q e^((2z - 1) / 2σ²))^α],
 * whose logarithm over α - 1 is the RDP of one step at order α (dp_accounting's _compute_log_a_int and
 * _compute_log_a_frac). Everything is summed in log space: the terms span hundreds of orders of magnitude.
 */

// Read once, not looked up as globals in the loops (see special.ts).
const { LN2, SQRT2, exp, log, log1p, max, min } = Math;
const { POSITIVE_INFINITY: INF } = Number;

// dp_accounting gives up on the fractional-order series after this many terms and leaves the order out.
const MAX_SERIES_TERMS = 1000;
// The series stops once both halves are falling and their last terms are below e^-30 of the total.
const SERIES_CUTOFF = 30;

/** ln(e^x + e^y). */
function logAdd(x: number, y: number): number {
  const lo = min(x, y);
  const hi = max(x, y);
  if (lo === -INF || hi === INF) return hi;
  return hi + log1p(exp(lo - hi));
}

/** ln|C(n, k)|, for real n (a fractional order) as well as whole. */
function logBinomial(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** ln A_α for a whole order α and 0 < q < 1: A_α = Σ_i C(α, i) q^i (1-q)^(α-i) e^((i² - i) / 2σ²). */
export function logAWhole(q: number, sigma: number, alpha: number): number {
  const logQ = log(q);
  const log1mQ = log1p(-q);
  const twoVar = 2 * sigma * sigma;
  let logA = -INF;
  for (let i = 0; i <= alpha; i++) {
    const logTerm = logBinomial(alpha, i) + i * logQ + (alpha - i) * log1mQ + (i * i - i) / twoVar;
    logA = logAdd(logA, logTerm);
  }
  return logA;
}

/**
 * ln A_α for a fractional order α and 0 < q < 1: the integral split at z0, where the two Gaussians' mixture
 * ratio crosses 1, each half expanded as a series of erfc terms. Infinity if the series has not settled after
 * MAX_SERIES_TERMS terms (very large fractional orders): an infinite RDP is a true bound, and that order simply
 * never gives the best ε, as in dp_accounting.
 */
export function logAFractional(q: number, sigma: number, alpha: number): number {
  const logQ = log(q);
  const log1mQ = log1p(-q);
  const twoVar = 2 * sigma * sigma;
  const sqrt2Sigma = SQRT2 * sigma;
  // σ² ln(1/q - 1) + 1/2, with the log taken as ln(1-q) - ln q so that q near 1 keeps its digits.
  const z0 = sigma * sigma * (log1mQ - logQ) + 0.5;
  let logA0 = -INF;
  let logA1 = -INF;
  let lastS0 = -INF;
  let lastS1 = -INF;
  for (let i = 0; i < MAX_SERIES_TERMS; i++) {
    const logCoef = logBinomial(alpha, i);
    const j = alpha - i;
    const logS0 =
      logCoef + i * logQ + j * log1mQ + (i * i - i) / twoVar - LN2 + logErfc((i - z0) / sqrt2Sigma);
    const logS1 =
      logCoef + j * logQ + i * log1mQ + (j * j - j) / twoVar - LN2 + logErfc((z0 - j) / sqrt2Sigma);
    logA0 = logAdd(logA0, logS0);
    logA1 = logAdd(logA1, logS1);
    const total = logAdd(logA0, logA1);
    if (logS0 < lastS0 && logS1 < lastS1 && max(logS0, logS1) < total - SERIES_CUTOFF) return total;
    lastS0 = logS0;
    lastS1 = logS1;
  }
  return INF;
}
