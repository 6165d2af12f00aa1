import type { PlanSummary } from '../store/types';
import type { RoundRow } from '../client/operator';
import { formatPlanRounds, formatPlans, formatTable } from './status';

const plan: PlanSummary = {
  id: 'p0123456789ab',
  name: 'sum',
  population: 'phones',
  status: 'active',
  round: 2,
  attempt: 2,
  rounds: 3,
  created_at: Date.UTC(2024, 0, 2, 3, 4, 5, 678),
  phase: 'selecting',
};

const round = (over: Partial<RoundRow>): RoundRow => ({
  round: 1,
  attempt: 1,
  phase: 'completed',
  target: 3,
  selection_target: 4,
  assigned: 4,
  reported: 3,
  rejected: 1,
  late: 0,
  aggregated_clients: 3,
  opened_at: 0,
  ...over,
});

test('formatTable pads every column but the last', () => {
  expect(
    formatTable(
      ['A', 'BB'],
      [
        ['xyz', '1'],
        ['', '22'],
      ],
    ),
  ).toBe('A    BB\nxyz  1\n     22\n');
});

test('formatPlans shows the round position, the attempt when retried, and the creation time', () => {
  const text = formatPlans([plan]);
  expect(text.split('\n')[1]).toMatch(
    /^p0123456789ab\s+sum\s+phones\s+active\s+2\/3 \(attempt 2\)\s+selecting\s+2024-01-02T03:04:05Z$/,
  );
  expect(formatPlans([])).toContain('no plans');
});

test('formatPlanRounds shows counts, the output, and why an attempt failed', () => {
  const text = formatPlanRounds(
    plan,
    [
      round({ output: { sum: 18 } }),
      round({ round: 2, phase: 'failed', error: 'too few reports', output: undefined }),
      round({
        round: 2,
        attempt: 2,
        phase: 'selecting',
        assigned: 0,
        reported: 0,
        rejected: 0,
        aggregated_clients: 0,
      }),
    ],
    80,
  );
  const lines = text.split('\n');
  expect(lines[0]).toContain(
    'plan p0123456789ab  sum  population=phones  status=active  round=2/3 (attempt 2)',
  );
  expect(text).toMatch(/^1\.1\s+completed\s+4\s+3\s+1\s+0\s+3\s+\{"sum":18\}$/m);
  expect(text).toMatch(/^2\.1\s+failed\s+.*error: too few reports$/m);
  expect(text).toMatch(/^2\.2\s+selecting\s+0\s+0\s+0\s+0\s+0$/m);
});

test('formatPlanRounds cuts long outputs to the width asked', () => {
  const long = { values: Array.from({ length: 100 }, (_, i) => i) };
  const text = formatPlanRounds(plan, [round({ output: long })], 20);
  expect(text).toContain(`${JSON.stringify(long).slice(0, 19)}…`);
});

test('formatPlanRounds shows SecAgg counts (cohort/shared/unmasked) when a round ran secure aggregation', () => {
  const text = formatPlanRounds(plan, [
    round({ secure_aggregation: { protocol: 'secagg+', advertised: 50, shared: 45, unmasked: 30 } }),
    round({ round: 2 }),
  ]);
  const [header, first, second] = text.split('\n').slice(2);
  expect(header).toMatch(/AGGREGATED\s+SECAGG COHORT\/SHARED\/UNMASKED\s+OUTPUT/);
  expect(first).toMatch(/\s50\/45\/30\s*$/);
  expect(second).toMatch(/\s-\s*$/);
  // Without any, the column is left out.
  expect(formatPlanRounds(plan, [round({})])).not.toMatch(/SECAGG/);
});

test("formatPlanRounds shows a dp plan's privacy spent, why it stopped, and each round's clip and epsilon", () => {
  const dpPlan: PlanSummary = {
    ...plan,
    status: 'completed',
    reason:
      'privacy budget: round 3 would take epsilon to 9.100 (delta 0.00001, no-amplification), past the target 8',
    dp: {
      epsilon: 7.25,
      delta: 1e-5,
      target_epsilon: 8,
      accounting: 'no-amplification',
      noise_multiplier: 1.1,
      rounds: 2,
      clip: 0.8,
    },
  };
  const text = formatPlanRounds(dpPlan, [
    round({ dp: { clip: 1, epsilon: 4.5, next_clip: 0.9 } }),
    round({ round: 2, dp: { clip: 0.9, epsilon: 7.25, next_clip: 0.8 } }),
    round({ round: 3, phase: 'selecting', dp: { clip: 0.8 } }),
  ]);
  expect(text).toContain(
    'privacy: epsilon 7.250 of 8 spent (delta 0.00001, no-amplification, z 1.1) over 2 rounds; next clip 0.8000',
  );
  expect(text).toContain('stopped: privacy budget: round 3 would take epsilon');
  expect(text).toMatch(/AGGREGATED\s+CLIP\s+EPSILON\s+OUTPUT/);
  expect(text).toMatch(/^1\.1\s+completed\s+4\s+3\s+1\s+0\s+3\s+1\.000\s+4\.500$/m);
  expect(text).toMatch(/^3\.1\s+selecting\s.*\s0\.8000\s+-$/m);
  // An infinite epsilon (no noise) arrives as null in JSON.
  const open = formatPlanRounds({ ...dpPlan, dp: { ...dpPlan.dp!, epsilon: null as unknown as number } }, []);
  expect(open).toContain('privacy: epsilon inf of 8 spent');
});
