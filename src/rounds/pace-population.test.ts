import { roundFigures } from './pace-figures';
import { seededRandom, simulatePace, TEN_THOUSAND_DEVICES, type PaceSimResult } from './pace-sim';

/**
 * Pace steering at population scale (issue 11, point 5): 10,000 devices on a virtual clock against the
 * route's pace steering (see pace-sim.ts). docs/pace-steering.md plots the same run (scripts/pace-plot.js).
 */
const POPULATION = TEN_THOUSAND_DEVICES;

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
    const late = roundFigures(sim, POPULATION)
      .filter((r) => r.openedS + POPULATION.selectionTimeoutS <= POPULATION.durationS)
      .filter((r) => !(r.fillS <= POPULATION.selectionTimeoutS));
    expect(late).toEqual([]);
  });

  it('has no stampede after a round opens: peak/mean of check-ins per second at most 2', () => {
    // The rounds that open once every device has checked in at least once: before that, arrivals are not
    // yet paced by this server (the first round of this run is at 1.64, for the record).
    const steady = roundFigures(sim, POPULATION).filter(
      (r) => r.openedS >= POPULATION.firstCheckinS && !Number.isNaN(r.peakToMean),
    );
    expect(steady.length).toBeGreaterThanOrEqual(10);
    expect(steady.filter((r) => !(r.peakToMean <= 2))).toEqual([]);
  });

  it('fails both without the cap (the windows as they were before it), so the checks above can fail', async () => {
    const uncapped = await simulatePace({
      ...POPULATION,
      durationS: 300,
      rateCap: 0,
      random: seededRandom(1),
    });
    expect(Math.max(...uncapped.perSecond)).toBeGreaterThan(POPULATION.rateCap);
    const ratios = roundFigures(uncapped, POPULATION).map((r) => r.peakToMean);
    expect(ratios.some((x) => x > 2)).toBe(true);
  });
});
