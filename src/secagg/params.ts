import { AppError } from '../errors';

/**
 * SecAgg+ graph parameters: a port of FCP's graph parameter finder (fcp/secagg/server/graph_parameter_finder.cc
 * and distribution_utilities.cc in google-parfait/federated-compute), with its constants: the parameters keep a
 * curious or semi-malicious server from learning any single client's input except with probability < 2^-40
 * (security parameter 40), and a round fails for lack of shares with probability < 2^-20 (correctness 20),
 * given at most `adversarialRate * n` colluding clients and `dropoutRate * n` dropouts.
 *
 * Degrees here count the node itself: FCP's finder returns the number of neighbours (even) and its server adds
 * one for the self edge of the Harary graph, so FCP's "72" is our degree 73 (see SecretSharingHararyGraph).
 */

/** Who the server may be: curious follows the protocol; semi-malicious may also lie about who dropped out. */
export type AdversaryClass = 'curious' | 'semi-malicious';

/** The threat model the parameters are found for. */
export interface ThreatModel {
  /** Fraction of the cohort that may collude with the server, in [0, 1). */
  readonly adversarialRate: number;
  /** Fraction of the cohort expected to drop out before the end, in [0, 1). */
  readonly dropoutRate: number;
  readonly adversaryClass: AdversaryClass;
}

/** A secret-sharing graph's shape: each node shares with `degree` nodes (itself included), `threshold` of which
 * must answer to rebuild its secrets. `complete` is true when every node shares with all n (degree = n). */
export interface SecAggParams {
  readonly degree: number;
  readonly threshold: number;
  readonly complete: boolean;
}

/** FCP's bound on n: nothing breaks above it, but its tables were checked only up to there. */
export const MAX_COHORT = 1_000_000;

const SECURITY_BITS = 40;
const CORRECTNESS_BITS = 20;
// FCP splits the 2^-40 failure budget over two bad events (a disconnected graph, too many adversarial shares).
const SECURITY_BITS_PER_EVENT = SECURITY_BITS + 1;
// Nudges rate * n up before floor (and down before ceil) so that 0.29 * 100 = 28.999999999999996 counts as 29
// adversaries: rounding must not err on the insecure side.
const EPSILON = 1e-14;

function fail(message: string): never {
  throw new AppError('BAD_REQUEST', message);
}

function checkCohort(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_COHORT) {
    fail(`secagg: cohort size n must be an integer in [1, ${MAX_COHORT}], got ${n}`);
  }
}

function checkThreatModel(t: ThreatModel): void {
  for (const key of ['adversarialRate', 'dropoutRate'] as const) {
    const rate = t[key];
    if (typeof rate !== 'number' || !(rate >= 0 && rate < 1))
      fail(`secagg: ${key} must be in [0, 1), got ${rate}`);
  }
  const { adversarialRate: a, dropoutRate: d, adversaryClass: cls } = t;
  if (cls !== 'curious' && cls !== 'semi-malicious') {
    fail(`secagg: adversaryClass must be 'curious' or 'semi-malicious', got ${JSON.stringify(cls)}`);
  }
  // FCP's feasibility bounds: the threshold must exceed the adversarial shares (for a semi-malicious server, half
  // of adversarial plus all shares) yet stay within reach of the survivors; 0.9 rather than 1 leaves a margin.
  const [load, what] = cls === 'curious' ? [a + d, 'dropoutRate'] : [a + 2 * d, '2 * dropoutRate'];
  if (load > 0.9) fail(`secagg: adversarialRate + ${what} must be <= 0.9 for a ${cls} server, got ${load}`);
}

/**
 * ln(k!) for a whole k >= 0, standing in for C's lgamma(k + 1), the only form FCP uses: below 171 the log of the
 * product (exact to a few ulps; 171! overflows a double), above it Stirling's series, whose next term is < 1e-19.
 */
export function logFactorial(k: number): number {
  if (k < 171) {
    let product = 1;
    for (let i = 2; i <= k; i++) product *= i;
    return Math.log(product);
  }
  const x = k + 1;
  const x2 = x * x;
  const series = (1 / 12 - (1 / 360 - 1 / (1260 * x2)) / x2) / x;
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series;
}

/**
 * The number of marked items among `sampled` drawn without replacement from `total`, `marked` of them marked.
 * The functions with a `counted` argument work on the marked items (counted = marked) or, mirrored, on the
 * unmarked ones (counted = total - marked), so that a far upper tail is summed as a small lower tail.
 */
class Hypergeometric {
  constructor(
    private readonly total: number,
    private readonly marked: number,
    private readonly sampled: number,
  ) {}

  private pmf(x: number, counted: number): number {
    const { total: N, sampled: s } = this;
    if (x < 0 || x > s || x > counted || N + x < counted + s) return 0;
    const lf = logFactorial;
    // Summed in FCP's order, so that rounding matches its lgamma sum as closely as it can.
    const log = lf(s) + lf(counted) + lf(N - counted) + lf(N - s);
    return Math.exp(log - lf(x) - lf(s - x) - lf(counted - x) - lf(N) - lf(N - s - counted + x));
  }

  /** P[X <= x], summed downwards from x until the terms stop mattering, by the pmf's ratio recurrence. */
  private lowerTail(x: number, counted: number): number {
    const { total: N, sampled: s } = this;
    let term = this.pmf(x, counted);
    let sum = 0;
    while (term > sum * 1e-16) {
      sum += term;
      term *= x;
      term *= N - counted - s + x;
      term /= counted - x + 1;
      term /= s - x + 1;
      x--;
    }
    return sum;
  }

  /** P[X <= x]; above the mean as one minus the mirrored tail. */
  cdf(x: number): number {
    x = Math.floor(x);
    const mean = (this.marked * this.sampled) / this.total;
    if (x > mean) return 1 - this.lowerTail(this.sampled - x - 1, this.total - this.marked);
    return this.lowerTail(x, this.marked);
  }

  /**
   * The integer whose cdf is `q`, rounded away from the median; `complement` asks for the 1 - q quantile, computed
   * on the mirrored distribution so that a tiny upper tail keeps its precision.
   */
  quantile(q: number, complement = false): number {
    if (q > 0.5) {
      q = 1 - q;
      complement = !complement;
    }
    if (complement) return this.sampled - this.lowerQuantile(q, this.total - this.marked) - 1;
    return this.lowerQuantile(q, this.marked);
  }

  private lowerQuantile(q: number, counted: number): number {
    const { total: N, sampled: s } = this;
    // Start from the larger of two lower bounds (the support's, and Hoeffding's inverted tail) and walk up.
    const support = counted + s - N - 1;
    const hoeffding = s * (counted / N - Math.sqrt(-Math.log(q) / (2 * s)));
    let x = -1;
    if (support > x) x = support;
    if (hoeffding > x) x = hoeffding;
    x = Math.floor(x);
    let cdf = this.lowerTail(x, counted);
    let pmf = this.pmf(x, counted);
    while (cdf < q && x < s) {
      if (pmf > 0) {
        pmf /= x + 1;
        pmf /= N - counted - s + x + 1;
        pmf *= counted - x;
        pmf *= s - x;
      } else {
        pmf = this.pmf(x + 1, counted);
      }
      cdf += pmf;
      x++;
    }
    return x - 1;
  }
}

/**
 * A union bound on the log probability that removing the adversarial and dropped nodes disconnects the Harary
 * graph with `neighbours` neighbours per node: that needs `neighbours` removed nodes in two runs of neighbours / 2
 * consecutive ring places, and there are n (n - neighbours - 1) / 2 pairs of places for the runs.
 */
function logProbDisconnected(n: number, t: ThreatModel, neighbours: number): number {
  const bad = Math.floor((t.adversarialRate + EPSILON) * n) + Math.floor((t.dropoutRate + EPSILON) * n);
  if (neighbours > bad) return -Infinity;
  const logPairs = Math.log(n) + Math.log(n - neighbours - 1) - Math.log(2);
  const lf = logFactorial;
  return logPairs + lf(bad) + lf(n - neighbours) - lf(n) - lf(bad - neighbours);
}

/** The threshold that makes `neighbours` neighbours secure and correct, or undefined if none does. */
function thresholdFor(n: number, t: ThreatModel, neighbours: number): number | undefined {
  if (logProbDisconnected(n, t, neighbours) >= -SECURITY_BITS_PER_EVENT * Math.log(2)) return undefined;
  const adversarial = new Hypergeometric(n, Math.floor((t.adversarialRate + EPSILON) * n), neighbours);
  const surviving = new Hypergeometric(n, Math.ceil((1 - t.dropoutRate - EPSILON) * n), neighbours);
  // t1: a node has more than t1 adversarial neighbours with probability <= 2^-41 / n (security, over all nodes).
  let t1 = adversarial.quantile(2 ** -SECURITY_BITS_PER_EVENT / n, true);
  // t2: a node has at most t2 surviving neighbours with probability >= 2^-20 / n; any t in (t1, t2] works.
  const tooFewSurvive = 2 ** -CORRECTNESS_BITS / n;
  let t2 = surviving.quantile(tooFewSurvive);
  if (surviving.cdf(t2) < tooFewSurvive) t2++;
  // A semi-malicious server may tell some honest neighbours that a node survived and others that it dropped, and
  // so collect both kinds of its shares: t1 adversarial ones plus the honest ones split in two. Safe iff
  // 2t > t1 + neighbours; t = t1' + 1 below is the least such t (FCP's 1.25 acts as 1 on whole numbers).
  if (t.adversaryClass === 'semi-malicious') t1 = Math.ceil((t1 + neighbours - 1.25) / 2);
  if (t2 <= t1) return undefined;
  // The smallest secure threshold is the cheapest to rebuild; Shamir needs at least 2 shares.
  return Math.max(t1 + 1, 2);
}

/**
 * The complete graph's threshold, as FCP's server picks it when no Harary graph fits: every node shares with all
 * n, and the threshold is the number of clients that must survive, ceil(n (1 - dropoutRate)), checked as FCP's
 * CheckFullGraphParameters does.
 */
export function completeGraph(n: number, t: ThreatModel): SecAggParams {
  const threshold = Math.ceil(n * (1 - t.dropoutRate));
  const floor =
    t.adversaryClass === 'curious'
      ? Math.ceil(t.adversarialRate * n)
      : Math.ceil((n + t.adversarialRate * n) / 2);
  const need = Math.max(floor, 1);
  if (threshold <= need) {
    fail(
      `secagg: no secure parameters for n = ${n}: the complete graph's threshold ceil(n * (1 - dropoutRate)) = ` +
        `${threshold} must exceed ${need} for a ${t.adversaryClass} server; lower dropoutRate or adversarialRate, ` +
        'or gather more clients',
    );
  }
  return { degree: n, threshold, complete: true };
}

/**
 * The smallest Harary graph degree (odd, the node itself included) and its threshold that meet the threat model
 * for n clients, as FCP's ComputeHararyGraphParameters; else, as FCP's server falls back to, the complete graph.
 * The search stops below n - 1 neighbours, so only tiny cohorts end complete (n <= 3 at 5% adversarial and 33%
 * dropout, a few n <= 7 at 33% and 33%); the complete graph's own check refuses n = 1 and some tiny n.
 */
export function findGraphParameters(n: number, threat: ThreatModel): SecAggParams {
  checkCohort(n);
  checkThreatModel(threat);
  for (let neighbours = 2; neighbours < n - 1; neighbours += 2) {
    const threshold = thresholdFor(n, threat, neighbours);
    if (threshold !== undefined) return { degree: neighbours + 1, threshold, complete: false };
  }
  return completeGraph(n, threat);
}

/** Parameters given outright rather than found. */
export interface ExplicitParams {
  readonly degree: number;
  readonly threshold: number;
}

/**
 * The graph parameters for n clients, either given outright (checked: an odd degree in [1, n] or n itself, and
 * 1 <= threshold <= degree) or found for a threat model by {@link findGraphParameters}.
 */
export function secAggParameters(n: number, opts: ExplicitParams | ThreatModel): SecAggParams {
  const explicit = 'degree' in opts || 'threshold' in opts;
  const rates = 'adversarialRate' in opts || 'dropoutRate' in opts || 'adversaryClass' in opts;
  if (explicit && rates) fail('secagg: give either degree and threshold or the threat model, not both');
  if (!explicit) return findGraphParameters(n, opts as ThreatModel);
  checkCohort(n);
  const { degree, threshold } = opts as ExplicitParams;
  if (!Number.isInteger(degree) || degree < 1 || degree > n || (degree % 2 === 0 && degree !== n)) {
    fail(`secagg: degree must be an odd integer in [1, ${n}] or n = ${n} itself, got ${degree}`);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > degree) {
    fail(`secagg: threshold must be an integer in [1, degree = ${degree}], got ${threshold}`);
  }
  return { degree, threshold, complete: degree === n };
}
