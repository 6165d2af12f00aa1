import fc from 'fast-check';
import {
  DEFAULT_ORDERS,
  DpAccounting,
  deltaFromRdp,
  epsilonAfter,
  epsilonFromRdp,
  MAX_FINITE_ORDER,
  rdpSubsampledGaussian,
  stepsWithin,
} from './accountant';
import { logErfc } from './special';

function expectClose(actual: number, expected: number, rtol: number, atol = 0): void {
  const tolerance = atol + rtol * Math.abs(expected);
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new Error(`expected ${expected} within ${tolerance}, got ${actual}`);
  }
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('dp_accounting test vectors (rdp_privacy_accountant_test.py)', () => {
  test('50 steps of q = 0.01, sigma = 2.5 at orders 1.5 to Infinity', () => {
    const orders = [1.5, 2.5, 5, 50, 100, Infinity];
    const expected = [6.70579741e-4, 1.0854871e-3, 2.18075656e-3, 2.38460375e-2, 1.67416308e2];
    const rdp = rdpSubsampledGaussian(0.01, 2.5, 50, orders);
    expected.forEach((e, i) => expectClose(rdp[i]!, e, 1e-4));
    expect(rdp[5]).toBe(Infinity);
  });

  test('sigma = 4.530877117 without sampling is (1, 1e-6)-DP over 99,001 orders from 1 to 100', () => {
    const orders = Array.from({ length: 99_001 }, (_, i) => (1000 + i) / 1000);
    const rdp = rdpSubsampledGaussian(1, 4.530877117, 1, orders);
    // dp_accounting asserts these to 7 decimal places; the 1e-4 relative bound is ours.
    const { epsilon } = epsilonFromRdp(orders, rdp, 1e-6);
    expectClose(epsilon, 1, 1e-4, 0);
    expectClose(epsilon, 1, 0, 1e-7);
    const { delta } = deltaFromRdp(orders, rdp, 1);
    expectClose(delta, 1e-6, 1e-4);
  });

  test('a constant RDP of 1.1 at orders 2..32 (pure DP) converts at order 32 both ways', () => {
    const orders = range(2, 32);
    const rdp = orders.map(() => 1.1);
    const e = epsilonFromRdp(orders, rdp, 1e-5);
    expectClose(e.epsilon, 1.32783806176, 1e-4, 0);
    expectClose(e.epsilon, 1.32783806176, 0, 1e-10);
    expect(e.order).toBe(32);
    const d = deltaFromRdp(orders, rdp, 1.32783806176);
    expectClose(d.delta, 1e-5, 1e-4);
    expect(d.order).toBe(32);
  });

  // ln A_α by the integral ∫ N(z; 0, σ²) ((1 - q) + q e^((2z - 1) / 2σ²))^α dz in mpmath at 50 digits, for
  // dp_accounting's own list of hard cases (tiny q, tiny σ, q near 1, orders up to 256.1); the same tolerance
  // as there (rtol 1e-4, atol 1e-8). RDP = ln A_α / (α - 1).
  test.each([
    [1e-7, 0.1, 1.01, 4.003412322526399e-8],
    [1e-6, 0.1, 256, 3260460.5675344868],
    [1e-5, 0.1, 256.1, 3263604.3633439573],
    [1e-6, 1, 27, 8.769511304848498e-10],
    [1e-4, 1, 1.5, 6.4426869538366495e-9],
    [1e-3, 1, 2, 1.7182803522145153e-6],
    [0.01, 10, 20, 0.00019129699912842963],
    [0.1, 100, 20.5, 0.00019991818458068295],
    [0.99, 0.1, 256, 3263994.765351347],
    [0.999, 100, 256.1, 3.260108037973113],
  ])('ln A at q = %p, sigma = %p, order %p agrees with numerical integration', (q, sigma, order, logA) => {
    const [rdp] = rdpSubsampledGaussian(q, sigma, 1, [order]);
    expectClose(rdp! * (order - 1), logA, 1e-4, 1e-8);
  });

  test('epsilon for a delta and delta for that epsilon agree (orders 2..49, extreme q and sigma)', () => {
    const orders = range(2, 49);
    for (const q of [0, 0.01, 0.1, 0.8, 1]) {
      for (const sigma of [0, 0.1, 1, 10, 100]) {
        const rdp = rdpSubsampledGaussian(q, sigma, 1, orders);
        for (const delta of [0.99, 0.9, 0.1, 0.01, 1e-3, 1e-5, 1e-9, 1e-12]) {
          const { epsilon } = epsilonFromRdp(orders, rdp, delta);
          if (epsilon === Infinity) {
            expect(() => deltaFromRdp(orders, rdp, epsilon)).toThrow(RangeError);
            continue;
          }
          const back = deltaFromRdp(orders, rdp, epsilon).delta;
          if (epsilon === 0) expect(back).toBeLessThanOrEqual(delta);
          else expectClose(back, delta, 0, 1e-7);
        }
      }
    }
  });

  test('the delta from RDP lies between the exact Gaussian delta and the classic bound (sigma = 1)', () => {
    const orders = Array.from({ length: 495 }, (_, i) => (10 + i) / 10);
    const rdp = rdpSubsampledGaussian(1, 1, 1, orders);
    const erfc = (x: number): number => Math.exp(logErfc(x));
    for (let k = 0; k < 500; k++) {
      const eps = k / 10;
      const { delta } = deltaFromRdp(orders, rdp, eps);
      // Balle and Wang 2018, Theorem 8: the tight delta of the Gaussian mechanism with sensitivity 1 and sigma 1.
      const exact = erfc((eps - 0.5) / Math.SQRT2) / 2 - (Math.exp(eps) * erfc((eps + 0.5) / Math.SQRT2)) / 2;
      expect(exact).toBeLessThanOrEqual(delta + 1e-300);
      const classic = eps >= 0.5 ? Math.exp(-0.5 * (eps - 0.5) ** 2) : 1;
      expect(delta).toBeLessThanOrEqual(classic + 1e-300);
    }
  });
});

describe('edge cases', () => {
  const orders = [1, 1.5, 2, 3.14159, 32, 1024, Infinity];

  test('no sampling costs nothing, even without noise', () => {
    for (const sigma of [0, 1]) {
      expect(rdpSubsampledGaussian(0, sigma, 1000, orders)).toEqual(orders.map(() => 0));
      expect(epsilonAfter(1000, { samplingRate: 0, noiseMultiplier: sigma, delta: 1e-10 })).toEqual({
        epsilon: 0,
        order: DEFAULT_ORDERS[0],
      });
      expect(deltaFromRdp(orders, rdpSubsampledGaussian(0, sigma, 1, orders), 1e-10).delta).toBe(0);
    }
  });

  test('no noise means no privacy: Infinity at every order, and epsilon Infinity', () => {
    expect(rdpSubsampledGaussian(0.01, 0, 1, orders)).toEqual(orders.map(() => Infinity));
    expect(epsilonAfter(1, { samplingRate: 1, noiseMultiplier: 0, delta: 0.1 }).epsilon).toBe(Infinity);
    expect(deltaFromRdp(orders, rdpSubsampledGaussian(1, 0, 1, orders), 5).delta).toBe(1);
  });

  test('zero steps cost nothing, even without noise', () => {
    expect(rdpSubsampledGaussian(0.5, 0, 0, orders)).toEqual(orders.map(() => 0));
    expect(epsilonAfter(0, { samplingRate: 0.5, noiseMultiplier: 0, delta: 1e-5 }).epsilon).toBe(0);
  });

  test('without sampling, RDP is the Gaussian mechanism order / (2 sigma^2) per step, at order 1 too', () => {
    const rdp = rdpSubsampledGaussian(1, 2, 7, orders);
    orders.slice(0, -1).forEach((a, i) => expectClose(rdp[i]!, (7 * a) / 8, 1e-15));
    expect(rdp[orders.length - 1]).toBe(Infinity);
  });

  test('with sampling, order 1 is left out (Infinity) as dp_accounting does, and never chosen', () => {
    const [atOne, atTwo] = rdpSubsampledGaussian(0.01, 1, 1, [1, 2]);
    expect(atOne).toBe(Infinity);
    expect(atTwo).toBeGreaterThan(0);
    expect(atTwo).toBeLessThan(1e-3);
    expect(epsilonFromRdp([1, 2], [atOne!, atTwo!], 1e-5).order).toBe(2);
  });

  test('a fractional order whose series does not settle is Infinity, and the conversion passes over it', () => {
    const rdp = rdpSubsampledGaussian(0.01, 1, 1, [2000.5, 10]);
    expect(rdp[0]).toBe(Infinity);
    expect(Number.isFinite(rdp[1])).toBe(true);
    expect(epsilonFromRdp([2000.5, 10], rdp, 1e-5).order).toBe(10);
  });

  test('an infinite order converts as pure DP: epsilon = RDP there, delta 0 up to it', () => {
    expect(epsilonFromRdp([Infinity], [0.7], 1e-5)).toEqual({ epsilon: 0.7, order: Infinity });
    expect(deltaFromRdp([Infinity], [0.7], 0.7).delta).toBe(0);
    expect(deltaFromRdp([Infinity], [0.7], 0.6).delta).toBeCloseTo(Math.sqrt(-Math.expm1(-0.7)), 12);
  });

  test('orders up to 1.01 use only the KL bound', () => {
    // sqrt(1 - e^-r) <= delta gives epsilon 0; otherwise such an order gives no finite epsilon.
    expect(epsilonFromRdp([1.01], [1e-12], 1e-5).epsilon).toBe(0);
    expect(epsilonFromRdp([1.01], [1], 1e-5).epsilon).toBe(Infinity);
  });

  test('DEFAULT_ORDERS is dp_accounting DEFAULT_RDP_ORDERS', () => {
    expect(DEFAULT_ORDERS).toHaveLength(99 + 53 + 4);
    expect(DEFAULT_ORDERS.slice(0, 3)).toEqual([1.1, 1.2, 1.3]);
    expect(DEFAULT_ORDERS[98]).toBe(10.9);
    expect(DEFAULT_ORDERS.slice(99, 101)).toEqual([11, 12]);
    expect(DEFAULT_ORDERS.slice(-5)).toEqual([63, 128, 256, 512, 1024]);
    expect(Object.isFrozen(DEFAULT_ORDERS)).toBe(true);
  });

  test('a typical DP-FedAvg setting matches dp_accounting (q = 0.01, sigma = 1.1, 10,000 steps, delta 1e-5)', () => {
    // Value from dp_accounting's RdpAccountant with the default orders.
    const e = epsilonAfter(10_000, { samplingRate: 0.01, noiseMultiplier: 1.1, delta: 1e-5 });
    expectClose(e.epsilon, 5.632010670081592, 1e-9);
    expect(e.order).toBe(4.7);
  });
});

describe('stepsWithin', () => {
  const a: DpAccounting = { samplingRate: 0.01, noiseMultiplier: 1.1, delta: 1e-5 };

  test('finds the last step under the target', () => {
    // dp_accounting: epsilon 2.99997 after 3132 steps, 3.00047 after 3133.
    expect(stepsWithin(3, a, 1_000_000)).toBe(3132);
    expect(epsilonAfter(3132, a).epsilon).toBeLessThanOrEqual(3);
    expect(epsilonAfter(3133, a).epsilon).toBeGreaterThan(3);
  });

  test('stops at maxSteps, and at 0 when one step is too many', () => {
    expect(stepsWithin(3, a, 100)).toBe(100);
    expect(stepsWithin(0.001, { ...a, samplingRate: 1 }, 100)).toBe(0);
    expect(stepsWithin(10, { ...a, noiseMultiplier: 0 }, 100)).toBe(0);
    expect(stepsWithin(0, { ...a, samplingRate: 0 }, 100)).toBe(100);
  });

  test('answers are the boundary of epsilonAfter', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 0.1, 0.01, 1e-3),
        fc.double({ min: 0.5, max: 20, noNaN: true }),
        fc.double({ min: 0.1, max: 20, noNaN: true }),
        (q, sigma, target) => {
          const acc = { samplingRate: q, noiseMultiplier: sigma, delta: 1e-6 };
          const n = stepsWithin(target, acc, 5000);
          expect(epsilonAfter(n, acc).epsilon).toBeLessThanOrEqual(target);
          if (n < 5000) expect(epsilonAfter(n + 1, acc).epsilon).toBeGreaterThan(target);
        },
      ),
      { numRuns: 40, seed: 20261130 },
    );
  });
});

describe('monotonicity', () => {
  const samplingRate = fc.oneof(
    fc.constantFrom(1, 0.5, 0.01, 1e-4),
    fc.double({ min: 1e-5, max: 1, noNaN: true }),
  );

  test('epsilon never falls as steps grow', () => {
    fc.assert(
      fc.property(
        samplingRate,
        fc.double({ min: 0.3, max: 30, noNaN: true }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        (q, sigma, s1, s2) => {
          const acc = { samplingRate: q, noiseMultiplier: sigma, delta: 1e-5 };
          const [few, many] = s1 <= s2 ? [s1, s2] : [s2, s1];
          expect(epsilonAfter(few, acc).epsilon).toBeLessThanOrEqual(epsilonAfter(many, acc).epsilon);
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  test('epsilon never rises as the noise grows', () => {
    fc.assert(
      fc.property(
        samplingRate,
        fc.double({ min: 0.3, max: 30, noNaN: true }),
        fc.double({ min: 0.3, max: 30, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        (q, x, y, steps) => {
          const [low, high] = x <= y ? [x, y] : [y, x];
          const eps = (sigma: number): number =>
            epsilonAfter(steps, { samplingRate: q, noiseMultiplier: sigma, delta: 1e-5 }).epsilon;
          // Two sigmas an ulp apart can swap by rounding (1e-13 relative: the series stop at different terms).
          expect(eps(high)).toBeLessThanOrEqual(eps(low) * (1 + 1e-9));
        },
      ),
      { numRuns: 200, seed: 11 },
    );
  });
});

describe('input validation', () => {
  const ok: DpAccounting = { samplingRate: 0.1, noiseMultiplier: 1, delta: 1e-5 };

  test.each([
    [{ ...ok, samplingRate: -0.1 }, /samplingRate must be a number in \[0, 1\], got -0.1/],
    [{ ...ok, samplingRate: 1.5 }, /samplingRate .* got 1.5/],
    [{ ...ok, samplingRate: NaN }, /samplingRate .* got NaN/],
    [{ ...ok, noiseMultiplier: -1 }, /noiseMultiplier must be a finite number >= 0, got -1/],
    [{ ...ok, noiseMultiplier: Infinity }, /noiseMultiplier .* got Infinity/],
    [{ ...ok, delta: 0 }, /delta must be a number in \(0, 1\), got 0/],
    [{ ...ok, delta: 1 }, /delta .* got 1/],
    [{ ...ok, delta: '1e-5' as unknown as number }, /delta .* got string "1e-5"/],
  ])('epsilonAfter refuses %p', (acc, message) => {
    expect(() => epsilonAfter(10, acc)).toThrow(RangeError);
    expect(() => epsilonAfter(10, acc)).toThrow(message);
  });

  test.each([-1, 1.5, NaN, Infinity])('steps = %p is refused', (steps) => {
    expect(() => epsilonAfter(steps, ok)).toThrow(/steps must be a whole number >= 0/);
    expect(() => rdpSubsampledGaussian(0.1, 1, steps, [2])).toThrow(RangeError);
  });

  test.each([[[]], [[0.5]], [[2, NaN]], [[MAX_FINITE_ORDER + 1]]])('orders %p are refused', (orders) => {
    expect(() => rdpSubsampledGaussian(0.1, 1, 1, orders)).toThrow(RangeError);
  });

  test('the conversions refuse mismatched, negative or NaN RDP and a bad epsilon', () => {
    expect(() => epsilonFromRdp([2, 3], [0.1], 1e-5)).toThrow(/one value per order \(2\), got 1/);
    expect(() => epsilonFromRdp([2], [-0.1], 1e-5)).toThrow(/rdp\[0\] must be a number >= 0/);
    expect(() => deltaFromRdp([2], [NaN], 1)).toThrow(/rdp\[0\]/);
    expect(() => deltaFromRdp([2], [0.1], -1)).toThrow(/epsilon must be a finite number >= 0, got -1/);
    expect(() => epsilonFromRdp([0.9], [0.1], 1e-5)).toThrow(/orders\[0\]/);
  });

  test('stepsWithin refuses a bad target or maxSteps', () => {
    expect(() => stepsWithin(-1, ok, 10)).toThrow(/targetEpsilon must be a number >= 0, got -1/);
    expect(() => stepsWithin(1, ok, 2.5)).toThrow(/maxSteps must be a whole number >= 0, got 2.5/);
  });
});
