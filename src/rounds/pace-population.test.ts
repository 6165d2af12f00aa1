import { seededRandom, simulatePace, TEN_THOUSAND_DEVICES, type PaceSimResult } from './pace-sim';

/**
 * Pace steering at population scale (issue 11, point 5): 10,000 devices on a virtual clock against the
 * route's pace steering (see pace-sim.ts). docs/pace-steering.md plots the same run (scripts/pace-plot.ts).
 */
const POPULATION = TEN_THOUSAND_DEVICES;

/** The largest one-second count in `[from, to)` over the mean count per second there. */
function peakToMean(perSecond: Int32Array, from: number, to: number): number {
  let peak = 0;
  let sum = 0;
  for (let s = from; s < to; s++) {
    peak = Math.max(peak, perSecond[s]!);
    sum += perSecond[s]!;
  }
  return peak / (sum / (to - from));
}

describe('pace steering, 10,000 devices on a virtual clock', () => {
  let sim: PaceSimResult;
  beforeAll(async () => {
    sim = await simulatePace({ ...POPULATION, random: seededRandom(1) });
  });

  it('runs rounds one after another for the whole hour', () => {
    // At least one round per reporting deadline plus finalize, else the properties below say little.
    expect(sim.rounds.length).toBeGreaterThanOrEqual(POPULATION.durationS / 310);
    expect(sim.rounds.filter((r) => r.outcome === 'failed')).toEqual([]);
  });

  it('keeps every second of check-ins under the configured cap', () => {
    expect(Math.max(...sim.perSecond)).toBeLessThanOrEqual(POPULATION.rateCap);
  });

  it('fills every round within its selection timeout', () => {
    const timeoutMs = POPULATION.selectionTimeoutS * 1000;
    const late = sim.rounds
      .filter((r) => r.openedAt + timeoutMs <= POPULATION.durationS * 1000)
      .filter((r) => r.filledAt === undefined || r.filledAt - r.openedAt > timeoutMs)
      .map((r) => r.round);
    expect(late).toEqual([]);
  });

  it('has no stampede after a round opens: peak/mean of check-ins per second at most 2', () => {
    const steady = sim.rounds.filter(
      (r) =>
        r.openedAt >= POPULATION.firstCheckinS * 1000 &&
        r.openedAt / 1000 + POPULATION.selectionTimeoutS <= POPULATION.durationS,
    );
    expect(steady.length).toBeGreaterThanOrEqual(10);
    const stampedes = steady
      .map((r) => {
        const from = Math.floor(r.openedAt / 1000);
        return { round: r.round, ratio: peakToMean(sim.perSecond, from, from + POPULATION.selectionTimeoutS) };
      })
      .filter((r) => r.ratio > 2);
    expect(stampedes).toEqual([]);
  });

  it('is what the cap does: without it the same population stampedes and passes the cap', async () => {
    // Guards the test itself: the properties above must be able to fail.
    const uncapped = await simulatePace({ ...POPULATION, durationS: 300, rateCap: 0, random: seededRandom(1) });
    expect(Math.max(...uncapped.perSecond)).toBeGreaterThan(POPULATION.rateCap);
  });
});
