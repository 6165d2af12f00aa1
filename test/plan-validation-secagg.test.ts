import { AppError } from '../src/errors';
import type { Plan } from '../src/generated/plan';
import { DEFAULT_LIMITS } from '../src/compute/limits';
import { checkPlan } from '../src/plan/validate';
import { buildFederatedSum } from '../src/plans/federated-sum';
import { threeSumsPlan } from './support/secure-plans';

// `schedule.secure_aggregation` at submission: a plan with secure sums must say how they are aggregated,
// and a SecAgg setting must be one the server can run.

const schedule: Plan['schedule'] = { rounds: 1, target_clients: 10 };

/** The three-sums plan with a schedule changed after it was built (the builder checks what it builds). */
function plan(setting: Record<string, unknown> | undefined, extra: Partial<Plan['schedule']> = {}): Plan {
  const built = threeSumsPlan('p', schedule, { protocol: 'none' });
  const changed = { ...built.schedule, ...extra, secure_aggregation: setting } as Plan['schedule'];
  if (setting === undefined) delete changed.secure_aggregation;
  return { ...built, schedule: changed };
}

function problems(plan: Plan): string[] {
  try {
    checkPlan(plan, DEFAULT_LIMITS);
    return [];
  } catch (e) {
    if (!(e instanceof AppError)) throw e;
    return e.details.map((d) => `${d.path}: ${d.message}`);
  }
}

test('secagg+, secagg and none are accepted for a plan with secure sums', () => {
  for (const protocol of ['secagg+', 'secagg', 'none'] as const) {
    expect(problems(plan({ protocol }))).toEqual([]);
  }
});

test('a plan with secure sums and no setting is refused with a pointer and the choices', () => {
  expect(problems(plan(undefined))).toEqual([
    expect.stringMatching(
      /^\/schedule\/secure_aggregation: work has secure-sum outputs .*"secagg\+".*"none"/,
    ),
  ]);
});

test.each([
  ['degree without threshold', { degree: 5 }, /degree and threshold together/],
  ['an even degree', { degree: 6, threshold: 3 }, /degree 6 is even/],
  ['a threshold above the degree', { degree: 5, threshold: 6 }, /threshold 6 is more than degree 5/],
])('%s is refused', (_what, extra, message) => {
  expect(problems(plan({ protocol: 'secagg+', ...extra }))).toEqual([expect.stringMatching(message)]);
});

test('the reporting deadline must leave time after selection and the key exchange', () => {
  const short = plan(
    { protocol: 'secagg+', sharing_timeout_s: 40 },
    { selection_timeout_s: 60, reporting_deadline_s: 100 },
  );
  expect(problems(short)).toEqual([
    expect.stringMatching(
      /^\/schedule\/reporting_deadline_s: .*\(100\).*selection \(60 s\).*exchange \(40 s\)/,
    ),
  ]);
});

test('a cohort that would need neighbourhoods beyond 255 shares, or that no graph can protect, is refused', () => {
  const big = plan(
    { protocol: 'secagg+', adversary: 'semi-malicious' },
    { target_clients: 1000, over_selection: 1 },
  );
  expect(problems(big)).toEqual([
    expect.stringMatching(/needs neighbourhoods of 399 clients, more than the 255/),
  ]);
  const complete = plan({ protocol: 'secagg' }, { target_clients: 300, over_selection: 1 });
  expect(problems(complete)).toEqual([expect.stringMatching(/neighbourhoods of 300 clients/)]);
  // Rates no graph can meet: the finder's own reason.
  const hopeless = plan({ protocol: 'secagg+', dropout_rate: 0.6, adversarial_rate: 0.4 });
  expect(problems(hopeless)).toEqual([expect.stringMatching(/^\/schedule\/secure_aggregation: secagg/)]);
});

test('secagg+ on a plan without secure sums is refused', () => {
  const plain = buildFederatedSum({ collection: 'p', targetClients: 10 });
  const plan = {
    ...plain,
    schedule: { ...plain.schedule, secure_aggregation: { protocol: 'secagg+' as const } },
  };
  expect(problems(plan)).toEqual([
    '/schedule/secure_aggregation/protocol: secagg+ masks secure sums, and work has none',
  ]);
  // 'none' on it is harmless.
  expect(
    problems({ ...plain, schedule: { ...plain.schedule, secure_aggregation: { protocol: 'none' } } }),
  ).toEqual([]);
});
