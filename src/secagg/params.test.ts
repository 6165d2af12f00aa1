import { AppError } from '../errors';
import {
  AdversaryClass,
  findGraphParameters,
  logFactorial,
  MAX_COHORT,
  secAggParameters,
  ThreatModel,
} from './params';

const threat = (
  adversarialRate: number,
  dropoutRate: number,
  adversaryClass: AdversaryClass,
): ThreatModel => ({
  adversarialRate,
  dropoutRate,
  adversaryClass,
});

// FCP's graph_parameter_finder_test.cc table (n, adversarial rate, dropout rate, class -> neighbours, threshold):
// FCP compares the neighbour count exactly (EXPECT_EQ) and the threshold as an upper bound (EXPECT_LE). Its
// neighbour count is even and leaves out the node itself, which FCP's server then adds as the Harary graph's self
// edge; our degree is that odd total, so degree = neighbours + 1.
const C: AdversaryClass = 'curious';
const S: AdversaryClass = 'semi-malicious';
const fcpTable: [number, number, number, AdversaryClass, number, number][] = [
  [1000, 0.05, 0.33, C, 72, 24],
  [10000, 0.05, 0.33, C, 86, 29],
  [1000, 0.33, 0.33, C, 286, 150],
  [100, 0.05, 0.33, C, 28, 6],
  [1000, 0.05, 0.33, S, 398, 223],
  [100, 0.45, 0.45, C, 92, 46],
  [1000, 0.45, 0.45, C, 822, 417],
  [10, 0.33, 0.33, C, 8, 4],
  [100, 0.33, 0.33, C, 68, 34],
  [10000, 0.33, 0.33, C, 422, 221],
  [100, 0.3, 0.3, S, 92, 62],
  [1000, 0.3, 0.3, S, 872, 584],
  [10, 0.05, 0.33, C, 4, 2],
  [10, 0.05, 0.33, S, 8, 5],
  [100, 0.05, 0.33, S, 72, 39],
  [10000, 0.05, 0.33, S, 746, 420],
  [10, 0.33, 0.05, C, 4, 4],
  [1000, 0.33, 0.05, C, 78, 60],
  [100, 0.33, 0.05, S, 42, 37],
  [10000, 0.33, 0.05, S, 178, 146],
  [10, 0.05, 0.05, C, 2, 2],
  [1000, 0.05, 0.05, C, 30, 17],
  [100, 0.05, 0.05, S, 16, 11],
  [10000, 0.05, 0.05, S, 62, 44],
  [100, 0.33, 0, C, 26, 25],
  [1000, 0.33, 0, S, 38, 37],
  [1000, 0, 0.33, C, 38, 2],
  [100, 0, 0.33, S, 68, 35],
  [10000, 0, 0.33, S, 326, 164],
  [1000, 0, 0, C, 2, 2],
  [10000, 0, 0, S, 2, 2],
];

describe('findGraphParameters', () => {
  it.each(fcpTable)(
    'n=%d adversarial=%d dropout=%d %s: FCP neighbours %d, threshold <= %d',
    (n, a, d, cls, nb, t) => {
      const p = findGraphParameters(n, threat(a, d, cls));
      expect(p).toEqual({ degree: nb + 1, threshold: expect.any(Number), complete: false });
      expect(p.threshold).toBeLessThanOrEqual(t);
    },
  );

  // FCP's second test: the neighbour count lies between analytical bounds that do not come from the search.
  it.each(fcpTable)(
    'n=%d adversarial=%d dropout=%d %s: degree within FCP analytical bounds',
    (n, a, d, cls) => {
      const { degree, threshold } = findGraphParameters(n, threat(a, d, cls));
      const neighbours = degree - 1;
      const unconstrained = a === 0 && d === 0;
      const lower = unconstrained || n < 20 ? 1 : Math.log(n) + (40 * Math.log(2)) / 5;
      const beta = threshold / neighbours;
      // FCP's alpha is n / (n - 1) in C++ integers, so 1 for every n here.
      const b = 2 * (1 - d - beta) ** 2;
      const c = Math.min(2 * (beta - a) ** 2, -Math.log(a + d));
      let upper = unconstrained ? 3 : Math.max(lower / c + 1, (Math.log(n) + 20 * Math.log(2)) / b);
      if (cls === S) upper *= 1.2;
      expect(neighbours).toBeGreaterThan(lower);
      expect(neighbours).toBeLessThan(upper);
      expect(degree).toBeGreaterThanOrEqual(threshold);
      expect(threshold).toBeGreaterThan(0);
    },
  );

  it('returns odd degrees below n with a threshold of at least 2', () => {
    for (const n of [8, 9, 50, 257, 1000]) {
      for (const model of [threat(0.05, 0.33, C), threat(0.2, 0.2, S)]) {
        const { degree, threshold, complete } = findGraphParameters(n, model);
        expect({ n, odd: degree % 2, below: degree < n, complete }).toEqual({
          n,
          odd: 1,
          below: true,
          complete: false,
        });
        expect(threshold).toBeGreaterThanOrEqual(2);
      }
    }
  });

  it('falls back to the complete graph for tiny cohorts, with threshold ceil(n * (1 - dropout))', () => {
    // Hand-computed: 2 * 0.67 -> 2, 3 * 0.67 = 2.01 -> 3, 7 * 0.67 = 4.69 -> 5 (FCP's full-graph threshold).
    expect(findGraphParameters(2, threat(0.05, 0.33, C))).toEqual({
      degree: 2,
      threshold: 2,
      complete: true,
    });
    expect(findGraphParameters(3, threat(0.05, 0.33, C))).toEqual({
      degree: 3,
      threshold: 3,
      complete: true,
    });
    expect(findGraphParameters(7, threat(0.33, 0.33, C))).toEqual({
      degree: 7,
      threshold: 5,
      complete: true,
    });
    expect(findGraphParameters(5, threat(0.05, 0.33, S))).toEqual({
      degree: 5,
      threshold: 4,
      complete: true,
    });
    // Four clients leave room for a Harary graph only at 5% adversarial, not at 33%.
    expect(findGraphParameters(4, threat(0.05, 0.33, C)).complete).toBe(false);
    expect(findGraphParameters(4, threat(0.33, 0.33, C)).complete).toBe(true);
  });

  it('refuses cohorts whose complete graph is insecure, as FCP does', () => {
    // One client: a threshold of 1 would hand its secrets to anyone.
    expect(() => findGraphParameters(1, threat(0.05, 0.33, C))).toThrow(/no secure parameters for n = 1/);
    // Two clients, semi-malicious: threshold 2 does not exceed ceil((2 + 0.1) / 2) = 2.
    expect(() => findGraphParameters(2, threat(0.05, 0.33, S))).toThrow(
      /must exceed 2 for a semi-malicious server/,
    );
  });

  it('grows the degree with the dropout rate and with the adversarial rate', () => {
    for (const cls of [C, S]) {
      let previous = 0;
      for (let d = 0; d <= 0.42; d += 0.02) {
        const { degree } = findGraphParameters(1000, threat(0.05, d, cls));
        expect(degree).toBeGreaterThanOrEqual(previous);
        previous = degree;
      }
      expect(previous).toBeGreaterThan(findGraphParameters(1000, threat(0.05, 0, cls)).degree);
    }
    const degrees = [0, 0.1, 0.2, 0.3].map((a) => findGraphParameters(5000, threat(a, 0.2, C)).degree);
    expect(degrees).toEqual([...degrees].sort((x, y) => x - y));
    expect(new Set(degrees).size).toBe(degrees.length);
  });

  it.each([
    [0, threat(0.05, 0.33, C), `cohort size n must be an integer in [1, ${MAX_COHORT}], got 0`],
    [2.5, threat(0.05, 0.33, C), 'n must be an integer in [1, 1000000], got 2.5'],
    [MAX_COHORT + 1, threat(0.05, 0.33, C), 'got 1000001'],
    [100, threat(-0.1, 0.33, C), 'adversarialRate must be in [0, 1), got -0.1'],
    [100, threat(0.05, 1, C), 'dropoutRate must be in [0, 1), got 1'],
    [100, threat(0.05, NaN, C), 'dropoutRate must be in [0, 1), got NaN'],
    [100, threat(0.5, 0.5, C), 'adversarialRate + dropoutRate must be <= 0.9 for a curious server, got 1'],
    [
      100,
      threat(0.33, 0.33, S),
      'adversarialRate + 2 * dropoutRate must be <= 0.9 for a semi-malicious server',
    ],
    [
      100,
      threat(0.05, 0.33, 'malicious' as AdversaryClass),
      `adversaryClass must be 'curious' or 'semi-malicious'`,
    ],
  ])('n=%p %p throws a BAD_REQUEST naming the argument and its range', (n, model, message) => {
    let caught: unknown;
    try {
      findGraphParameters(n, model);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AppError);
    expect((caught as AppError).code).toBe('BAD_REQUEST');
    expect((caught as AppError).message).toContain(message);
  });
});

describe('secAggParameters', () => {
  it('finds the parameters from a threat model', () => {
    expect(secAggParameters(1000, threat(0.05, 0.33, C))).toEqual(
      findGraphParameters(1000, threat(0.05, 0.33, C)),
    );
  });

  it('takes valid explicit parameters as they are', () => {
    expect(secAggParameters(100, { degree: 21, threshold: 8 })).toEqual({
      degree: 21,
      threshold: 8,
      complete: false,
    });
    expect(secAggParameters(10, { degree: 10, threshold: 7 })).toEqual({
      degree: 10,
      threshold: 7,
      complete: true,
    });
    expect(secAggParameters(9, { degree: 9, threshold: 1 })).toEqual({
      degree: 9,
      threshold: 1,
      complete: true,
    });
    expect(secAggParameters(1, { degree: 1, threshold: 1 })).toEqual({
      degree: 1,
      threshold: 1,
      complete: true,
    });
  });

  it.each([
    [10, { degree: 4, threshold: 2 }, 'degree must be an odd integer in [1, 10] or n = 10 itself, got 4'],
    [10, { degree: 11, threshold: 2 }, 'got 11'],
    [10, { degree: 0, threshold: 1 }, 'got 0'],
    [10, { degree: 5, threshold: 0 }, 'threshold must be an integer in [1, degree = 5], got 0'],
    [10, { degree: 5, threshold: 6 }, 'got 6'],
    [10, { degree: 5, threshold: 2.5 }, 'got 2.5'],
    [0, { degree: 1, threshold: 1 }, 'n must be an integer in [1, 1000000], got 0'],
    [
      10,
      { degree: 5, threshold: 2, ...threat(0.05, 0.33, C) },
      'either degree and threshold or the threat model',
    ],
  ])('n=%p %p throws naming the argument', (n, opts, message) => {
    expect(() => secAggParameters(n, opts)).toThrow(message);
  });
});

describe('logFactorial', () => {
  it('agrees with a plain sum of logs on both sides of the switch to Stirling', () => {
    let sum = 0;
    for (let k = 1; k <= 3000; k++) {
      sum += Math.log(k);
      expect(Math.abs(logFactorial(k) - sum)).toBeLessThanOrEqual(1e-12 * sum);
    }
    expect(logFactorial(0)).toBe(0);
  });
});
