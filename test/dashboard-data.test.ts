import {
  PROGRAM_ACTIONS,
  latestAttempts,
  numericFields,
  plotsOf,
  programLine,
  progress,
  type PlanView,
  type ProgramView,
  type RoundView,
} from '../web/dashboard-data';

// What the operator dashboard derives from the operator API's answers (web/dashboard-data.ts): no DOM.

const round = (r: Partial<RoundView> & Pick<RoundView, 'round'>): RoundView => ({
  attempt: 1,
  phase: 'completed',
  assigned: 3,
  reported: 2,
  rejected: 0,
  late: 1,
  aggregated_clients: 2,
  output: null,
  error: null,
  opened_at: 1000,
  finished_at: 3500,
  ...r,
});

const plan = (p: Partial<PlanView>): PlanView => ({
  id: 'p0000000000000',
  name: 'mean',
  population: 'values',
  status: 'active',
  round: 1,
  attempt: 1,
  rounds: 5,
  created_at: 0,
  ...p,
});

describe('dashboard data', () => {
  test('progress: rounds before the current one while running; the last one run once completed', () => {
    expect(progress(plan({ status: 'active', round: 1 }))).toEqual({ done: 0, total: 5 });
    expect(progress(plan({ status: 'paused', round: 4 }))).toEqual({ done: 3, total: 5 });
    expect(progress(plan({ status: 'completed', round: 5 }))).toEqual({ done: 5, total: 5 });
    // A dp plan that stopped early, at its privacy target.
    expect(progress(plan({ status: 'completed', round: 2 }))).toEqual({ done: 2, total: 5 });
  });

  test('numericFields: numbers by dotted path, arrays and strings left out', () => {
    const fields = numericFields({ train_loss: 0.5, stats: { mean: 2, name: 'x' }, counts: [1, 2], n: null });
    expect([...fields]).toEqual([
      ['train_loss', 0.5],
      ['stats.mean', 2],
    ]);
    expect([...numericFields(7)]).toEqual([['value', 7]]);
    expect([...numericFields(null)]).toEqual([]);
  });

  test('latestAttempts keeps the last attempt of each round, by round', () => {
    const all = [
      round({ round: 1, attempt: 1, phase: 'failed' }),
      round({ round: 1, attempt: 2 }),
      round({ round: 2, attempt: 1, phase: 'selecting', finished_at: null }),
    ];
    expect(latestAttempts(all).map((r) => [r.round, r.attempt])).toEqual([
      [1, 2],
      [2, 1],
    ]);
  });

  test('plotsOf: one plot per output field over completed rounds, then participation and durations', () => {
    const plots = plotsOf([
      round({ round: 1, attempt: 1, phase: 'failed', output: null }),
      round({ round: 1, attempt: 2, output: { train_loss: 0.9, clients: 2 }, dp: { clip: 1, epsilon: 0.3 } }),
      round({ round: 2, output: { train_loss: 0.4, clients: 3 }, opened_at: 0, finished_at: 1500 }),
      round({ round: 3, phase: 'reporting', assigned: 4, reported: 1, finished_at: null }),
    ]);
    expect(plots.map((p) => p.key)).toEqual([
      'output:train_loss',
      'output:clients',
      'output:dp.clip',
      'output:dp.epsilon',
      'participation',
      'duration',
    ]);
    const byKey = Object.fromEntries(plots.map((p) => [p.key, p]));
    expect(byKey['output:train_loss']).toMatchObject({ rounds: [1, 2], series: [{ values: [0.9, 0.4] }] });
    // Round 2 has no dp section: a gap, not a zero.
    expect(byKey['output:dp.clip']!.series[0]!.values).toEqual([1, null]);
    expect(byKey.participation!.rounds).toEqual([1, 2, 3]);
    expect(byKey.participation!.series.find((s) => s.label === 'assigned')!.values).toEqual([3, 3, 4]);
    expect(byKey.duration).toMatchObject({ rounds: [1, 2], series: [{ values: [2.5, 1.5] }] });
  });
});

describe('programs', () => {
  const program = (p: Partial<ProgramView>): ProgramView => ({
    id: 'g0000000000000',
    name: 'sum-then-scale',
    population: 'sensors',
    status: 'running',
    created_at: 1000,
    step: 4,
    steps: 12,
    cohort: 5,
    live: 4,
    target_clients: 5,
    min_clients: 3,
    join_deadline: 61_000,
    ...p,
  });

  test('a line says where a program stands, its sessions and why it failed', () => {
    expect(programLine(program({ status: 'recruiting', live: 2 }))).toBe(
      'recruiting: 2 of 5 devices joined (at least 3); population sensors',
    );
    expect(programLine(program({ sessions: { live: 4, failed: 1, left: 0 } }))).toBe(
      'running: step 4 of 12; 4 of 5 devices live; sessions failed 1, left 0; population sensors',
    );
    expect(
      programLine(
        program({ status: 'failed', step: 7, error: '2 devices are live, fewer than 3', error_step: 7 }),
      ),
    ).toBe(
      'failed: step 7 of 12; 4 of 5 devices live; population sensors. 2 devices are live, fewer than 3 (step 7)',
    );
    // All steps done: the step shown stops at the last.
    expect(programLine(program({ status: 'completed', step: 12 }))).toMatch(/^completed: step 12 of 12/);
  });

  test('cancel while it recruits or runs; delete once it has ended', () => {
    expect(PROGRAM_ACTIONS.cancel).toEqual(['recruiting', 'running']);
    expect(PROGRAM_ACTIONS.delete).toEqual(['completed', 'failed', 'cancelled']);
  });
});
