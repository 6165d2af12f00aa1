import { retryWindow, type PaceInput } from './pace';

const bounds = { minSeconds: 1, maxSeconds: 600 };
const mid = (): number => 0.5;

function mean(w: { min_seconds: number; max_seconds: number }): number {
  return (w.min_seconds + w.max_seconds) / 2;
}

describe('retryWindow', () => {
  it('tells a small population to come back together when it is needed', () => {
    const w = retryWindow({ checkinRate: 0.5, need: 10, secondsUntilNeeded: 120, ...bounds }, mid);
    expect(w.min_seconds).toBeGreaterThanOrEqual(120);
    expect(w.max_seconds - w.min_seconds).toBeLessThanOrEqual(15);
  });

  it('tells a small population to come back soon while a round is selecting', () => {
    const w = retryWindow({ checkinRate: 1, need: 50, secondsUntilNeeded: 0, ...bounds }, mid);
    expect(w.min_seconds).toBe(1);
    expect(w.max_seconds).toBeLessThanOrEqual(3);
  });

  it('spreads a large population over a window that grows with the surplus', () => {
    const at = (checkinRate: number) =>
      retryWindow({ checkinRate, need: 100, secondsUntilNeeded: 0, ...bounds }, mid);
    const w1 = at(1_000);
    const w2 = at(5_000);
    expect(w1.max_seconds - w1.min_seconds).toBeGreaterThanOrEqual(9);
    expect(w2.max_seconds - w2.min_seconds).toBeGreaterThan(w1.max_seconds - w1.min_seconds);
    // Each second's rejected clients come back at about `need` per base period.
    expect(1_000 / (w1.max_seconds - w1.min_seconds)).toBeCloseTo(100, -1);
  });

  it('clamps to the configured bounds', () => {
    const huge = retryWindow({ checkinRate: 1e9, need: 1, secondsUntilNeeded: 0, ...bounds }, mid);
    expect(huge).toEqual({ min_seconds: 1, max_seconds: 600 });
    const late = retryWindow({ checkinRate: 1, need: 1, secondsUntilNeeded: 10_000, ...bounds }, mid);
    expect(late).toEqual({ min_seconds: 600, max_seconds: 600 });
    const tight = retryWindow(
      { checkinRate: 10, need: 1, secondsUntilNeeded: 0, minSeconds: 5, maxSeconds: 5 },
      mid,
    );
    expect(tight).toEqual({ min_seconds: 5, max_seconds: 5 });
  });

  it('sends clients away late and spread when nothing is needed', () => {
    const w = retryWindow({ checkinRate: 3, need: 0, secondsUntilNeeded: 0, ...bounds }, mid);
    expect(w.min_seconds).toBeGreaterThanOrEqual(300);
    expect(w.max_seconds).toBe(600);
  });

  it('jitters the window without opening it before the clients are needed', () => {
    const input: PaceInput = { checkinRate: 200, need: 20, secondsUntilNeeded: 60, ...bounds };
    const lo = retryWindow(input, () => 0);
    const hi = retryWindow(input, () => 0.999);
    expect(lo.min_seconds).toBe(60);
    expect(hi.min_seconds).toBeGreaterThan(lo.min_seconds);
    expect(hi.max_seconds).toBeGreaterThan(lo.max_seconds);
    for (let i = 0; i < 200; i++) {
      const w = retryWindow(input);
      expect(w.min_seconds).toBeGreaterThanOrEqual(60);
      expect(w.max_seconds).toBeGreaterThan(w.min_seconds);
      expect(w.max_seconds).toBeLessThanOrEqual(600);
    }
  });

  it('treats nonsense inputs as zero', () => {
    const w = retryWindow({ checkinRate: NaN, need: -3, secondsUntilNeeded: -1, ...bounds }, mid);
    expect(w.min_seconds).toBeGreaterThanOrEqual(1);
    expect(w.max_seconds).toBeLessThanOrEqual(600);
    expect(w.min_seconds).toBeLessThanOrEqual(w.max_seconds);
  });

  it('gives longer mean waits as the rate grows', () => {
    const means = [10, 100, 1_000, 10_000].map((r) =>
      mean(retryWindow({ checkinRate: r, need: 100, secondsUntilNeeded: 0, ...bounds }, mid)),
    );
    for (let i = 1; i < means.length; i++) expect(means[i]).toBeGreaterThanOrEqual(means[i - 1]!);
    expect(means[3]).toBeGreaterThan(means[0]!);
  });
});

describe('retryWindow with a rate cap', () => {
  const capped = { ...bounds, rateCap: 100 };

  it('widens the window with the square of the rate against the cap', () => {
    const at = (checkinRate: number) =>
      retryWindow({ checkinRate, need: 130, secondsUntilNeeded: 0, ...capped }, mid);
    // 2 · 600 · (r / 100)²: 48 s at 20/s, 300 s at 50/s; the need's window (r / 130 s) is narrower.
    expect(at(20).max_seconds).toBeGreaterThanOrEqual(45);
    expect(at(20).max_seconds).toBeLessThanOrEqual(52);
    expect(at(50).max_seconds).toBeGreaterThanOrEqual(290);
    expect(at(50).max_seconds).toBeLessThanOrEqual(310);
    // At 71/s and above the window is the whole range: the most that windows can do for the cap.
    expect(at(100)).toEqual({ min_seconds: 1, max_seconds: 600 });
  });

  it('tells a large population from a small one by the population the cap implies', () => {
    // 50/s with need 130 looks small by the need's rule (50 <= 130), but 50/s over a 300 s window is some
    // 7,500 devices: a large population, spread and not sent back together in 120 s.
    const w = retryWindow({ checkinRate: 50, need: 130, secondsUntilNeeded: 120, ...capped }, mid);
    expect(w.min_seconds).toBeLessThanOrEqual(2);
    // 5/s over a 3 s window is 8 devices: all needed, so they come back together when needed.
    const small = retryWindow({ checkinRate: 5, need: 130, secondsUntilNeeded: 120, ...capped }, mid);
    expect(small.min_seconds).toBeGreaterThanOrEqual(120);
    expect(small.max_seconds - small.min_seconds).toBeLessThanOrEqual(15);
  });

  // The model changed with the cap (issue 11): a surplus window starts at `secondsUntilNeeded` only while the
  // need's window is the wider; with the cap's, a large population came back all at once when the next
  // round opened (the 10,000-device simulation, pace-population.test.ts).
  it('does not hold a population that the cap steers back to when it is needed', () => {
    const later = retryWindow({ checkinRate: 200, need: 20, secondsUntilNeeded: 60, ...capped }, mid);
    const now = retryWindow({ checkinRate: 200, need: 20, secondsUntilNeeded: 0, ...capped }, mid);
    expect(later).toEqual(now);
    expect(later.min_seconds).toBe(1);
    // Without a cap, as before: the surplus is spread from when it is needed.
    const uncapped = retryWindow({ checkinRate: 200, need: 20, secondsUntilNeeded: 60, ...bounds }, mid);
    expect(uncapped.min_seconds).toBeGreaterThanOrEqual(60);
  });

  it('leaves small populations as they were without a cap', () => {
    for (const [checkinRate, need, secondsUntilNeeded] of [
      [3, 13, 0],
      [3, 13, 40],
      [5, 3, 30],
    ] as const) {
      const input: PaceInput = { checkinRate, need, secondsUntilNeeded, ...bounds };
      expect(retryWindow({ ...input, rateCap: 1000 }, mid)).toEqual(retryWindow(input, mid));
    }
  });
});
