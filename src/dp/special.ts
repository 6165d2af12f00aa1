/**
 * The two special functions the RDP accountant needs, log|Γ(x)| and log(erfc(x)), written out here because the
 * accountant works in log space and must not lose the far tails: erfc(x) underflows to 0 past x ≈ 27, where the
 * accountant still needs its logarithm (scipy's log_ndtr plays this part in dp_accounting).
 */

// Math and Number (with Infinity) are read once per module: in a vm context, as under jest, every lookup of a
// global goes through an interceptor, which made the accountant's loops thirty times slower than in plain Node.
const { PI, abs, exp, log, log1p, round, sin, sqrt } = Math;
const { POSITIVE_INFINITY: INF, isInteger } = Number;

// Lanczos approximation with g = 7 and nine coefficients: about 15 significant digits for Γ on x >= 0.5, which
// keeps log-binomial coefficients of orders up to 10^5 within 1e-10 absolute.
const LANCZOS_G = 7;
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
] as const;
const LOG_SQRT_2PI = 0.5 * log(2 * PI);
const LOG_SQRT_PI = 0.5 * log(PI);

// ln((n-1)!) = ln Γ(n) for whole n in [1, 171], exact to rounding: the accountant's dominant terms carry
// ln Γ(1) and ln Γ(2), whose Lanczos values are off by 1e-15, and with q ≈ 1e-6 the RDP itself can be 1e-14.
const LOG_GAMMA_WHOLE: readonly number[] = (() => {
  const table = [INF, 0];
  let factorial = 1;
  for (let n = 2; n <= 171; n++) {
    factorial *= n - 1;
    table.push(log(factorial));
  }
  return table;
})();

/** sin(πx), reduced before the multiplication so that a large |x| or one near a whole number keeps its digits. */
function sinPi(x: number): number {
  let r = x - 2 * round(x / 2); // in [-1, 1], exactly
  if (r > 0.5) r = 1 - r;
  else if (r < -0.5) r = -1 - r;
  return sin(PI * r);
}

/**
 * ln|Γ(x)| for any real x (Infinity at the poles 0, -1, -2, ...), as scipy's gammaln: the accountant's
 * fractional-order series takes binomial coefficients C(α, i) with i > α, whose Γ(α - i + 1) is negative.
 */
export function logGamma(x: number): number {
  if (x < 0.5) {
    if (isInteger(x) || x === -INF) return INF;
    // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
    return log(PI / abs(sinPi(x))) - logGamma(1 - x);
  }
  if (x <= 171 && isInteger(x)) return LOG_GAMMA_WHOLE[x]!;
  if (!(x < INF)) return x; // Infinity, and NaN
  const y = x - 1;
  let sum = LANCZOS[0];
  for (let k = 1; k < LANCZOS.length; k++) sum += LANCZOS[k]! / (y + k);
  const t = y + LANCZOS_G + 0.5;
  return LOG_SQRT_2PI + (y + 0.5) * log(t) - t + log(sum);
}

/** erf(x) for |x| <= 3 by its series of positive terms, 2x/√π e^(-x²) Σ (2x²)^n / (1·3·…·(2n+1)), which does
 * not cancel (the alternating Taylor series loses four digits at x = 3). */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = 1;
  let sum = 1;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return ((2 * x) / sqrt(PI)) * exp(-x2) * sum;
}

/**
 * ln(√π e^(x²) erfc(x)) for x >= 2, from the continued fraction √π e^(x²) erfc(x) = 1 / (x + (1/2) / (x + (2/2) /
 * (x + (3/2) / (x + …)))), evaluated by the modified Lentz method. It never under- or overflows, however large x.
 */
function logScaledErfcTail(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    d = 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const step = c * d;
    f *= step;
    if (abs(step - 1) < 1e-16) break;
  }
  return -log(f);
}

/** Where the continued fraction takes over from 1 - erf: it needs about 60 terms at 2, fewer further out. */
const TAIL_FROM = 2;

/** ln(erfc(x)) for any real x, accurate to about 1e-14 relative even where erfc(x) itself underflows. */
export function logErfc(x: number): number {
  if (x >= TAIL_FROM) return x === INF ? -INF : logScaledErfcTail(x) - x * x - LOG_SQRT_PI;
  if (x >= 0) return log1p(-erfSeries(x));
  // erfc(x) = 1 + erf(-x) = 2 - erfc(-x) lies in (1, 2] here: nothing cancels.
  if (x <= -TAIL_FROM) return log(2 - exp(logErfc(-x)));
  if (x < 0) return log1p(erfSeries(-x));
  return x; // NaN
}
