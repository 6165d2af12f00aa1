import { logErfc, logGamma } from './special';

// Reference values from mpmath at 40 digits: log(abs(gamma(x))) and log(erfc(x)).
describe('logGamma', () => {
  test.each([
    [0.5, 0.5723649429247001],
    [1, 0],
    [1.5, -0.12078223763524522],
    [2, 0],
    [2.1, 0.04543773854448518],
    [3, 0.6931471805599453],
    [10.5, 13.940625219403763],
    [171, 706.5730622457874],
    [172.5, 714.2877462975342],
    [256.1, 1162.2664429900865],
    [1025, 6078.211884750051],
    [100000.5, 1051293.4654351394],
    [-0.5, 1.2655121234846454],
    [-2.5, -0.056243716497674054],
    [-997.3, -5892.1228706783195],
    [-1e-8, 18.42068074972452],
    [1e-8, 18.42068073818021],
  ])('ln|Gamma(%p)| = %p', (x, expected) => {
    // Absolute near the zeros at 1 and 2, relative elsewhere: what a difference of log-gammas needs.
    expect(Math.abs(logGamma(x) - expected)).toBeLessThanOrEqual(2e-15 * Math.max(1, Math.abs(expected)));
  });

  test('whole numbers are exact where the accountant leans on them, and poles are Infinity', () => {
    expect(logGamma(1)).toBe(0);
    expect(logGamma(2)).toBe(0);
    expect(logGamma(0)).toBe(Infinity);
    expect(logGamma(-3)).toBe(Infinity);
    expect(logGamma(NaN)).toBeNaN();
  });
});

describe('logErfc', () => {
  test.each([
    [-30, 0.6931471805599453],
    [-3, 0.6931361352504468],
    [-1, 0.6112323176780705],
    [-0.001, 0.0011277426501148766],
    [0, 0],
    [0.3, -0.39843005144008525],
    [1, -1.8496055099332482],
    [1.9999999, -5.364940822800566],
    [2, -5.364941264616638],
    [2.5, -7.806815272727264],
    [5, -27.200889545537436],
    [10, -102.87988902484489],
    // erfc itself underflows from about 27 on.
    [27, -732.8688865078974],
    [30, -903.9741171106439],
    [100, -10005.177585122665],
    [1e4, -100000009.78270532],
    [1e8, -1.0000000000000018e16],
  ])('ln erfc(%p) = %p', (x, expected) => {
    expect(Math.abs(logErfc(x) - expected)).toBeLessThanOrEqual(1e-14 * Math.max(1e-3, Math.abs(expected)));
  });

  test('the limits', () => {
    expect(logErfc(Infinity)).toBe(-Infinity);
    expect(logErfc(-Infinity)).toBe(Math.LN2);
    expect(logErfc(NaN)).toBeNaN();
  });
});
