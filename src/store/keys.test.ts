import { Keys } from './keys';

describe('keys', () => {
  const keys = new Keys('rh');
  const ref = { plan: 'pabc', round: 2, attempt: 3 };

  it("tags every plan key with {planId}, a population's keys with {population}, no other global key", () => {
    const plan = keys.plan('pabc');
    const round = keys.round(ref);
    const planKeys = [
      plan.plan,
      plan.meta,
      plan.state,
      plan.history,
      round.round,
      round.broadcast,
      round.tasks,
      round.devices,
      round.covered,
      round.partials,
      round.upload('t1'),
      round.partial('w1'),
    ];
    for (const k of planKeys) expect(k).toMatch(/^rh:\{pabc\}:/);
    expect(new Set(planKeys).size).toBe(planKeys.length);
    for (const k of [keys.global.plans, keys.global.checkinLimit]) expect(k).not.toMatch(/[{}]/);
    // A population's set and rate share the population's tag (one script reads the one and writes the other).
    for (const k of [keys.global.population('x'), keys.global.populationRate('x')]) {
      expect(k).toMatch(/^rh:pop:\{x\}/);
    }
  });

  it('spells the documented layout', () => {
    expect(keys.plan('pabc').meta).toBe('rh:{pabc}:meta');
    expect(keys.round(ref).round).toBe('rh:{pabc}:r:2.3');
    expect(keys.round(ref).upload('t')).toBe('rh:{pabc}:r:2.3:upload:t');
    expect(keys.round(ref).partial('w')).toBe('rh:{pabc}:r:2.3:partial:w');
    expect(keys.plan('pabc').roundPrefix + '2.3').toBe(keys.round(ref).round);
    expect(keys.global.population('pop')).toBe('rh:pop:{pop}');
    expect(keys.global.populationRate('pop')).toBe('rh:pop:{pop}:rate');
    expect(keys.round(ref).devices).toBe('rh:{pabc}:r:2.3:devices');
    expect(keys.global.checkinLimit).toBe('rh:limit:checkin');
  });

  it('refuses a prefix that would steal the hash tag, and escapes globs', () => {
    expect(() => new Keys('a{b}')).toThrow(/braces/);
    expect(() => new Keys('')).toThrow();
    expect(new Keys('a*b').pattern).toBe('a\\*b:*');
  });
});
