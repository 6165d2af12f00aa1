import { checkPlan } from '../plan/validate';
import { secureCountProgram, sumProgram } from '../../test/support/stateful-programs';
import { aggregationPlan } from './aggregation-plan';
import { checkProgram } from './check';
import { buildPersonalised } from './library/personalised';
import { buildTrainThenEvaluate } from './library/train-then-evaluate';

describe('aggregationPlan', () => {
  const programs = {
    'sum-then-scale': sumProgram(2, 4),
    'train-then-evaluate': buildTrainThenEvaluate({ rounds: 2, layers: [64, 8, 10] }),
    personalised: buildPersonalised({ rounds: 2, layers: [64, 8, 10] }),
  };

  it.each(Object.entries(programs))('makes a valid one-round plan of every aggregate of %s', (_, program) => {
    const checked = checkProgram(program);
    expect(checked.aggregations.length).toBeGreaterThan(0);
    for (const index of checked.aggregations) {
      const plan = aggregationPlan(checked, index, { clients: 12, deadlineS: 60 });
      const planChecked = checkPlan(plan);
      const step = program.steps[index]!;
      if (step.op !== 'aggregate') continue;
      // S is the aggregate, and U is what devices contribute: the program's types, not the plumbing's.
      expect(planChecked.types.S).toEqual(checked.types.get(step.result));
      expect(planChecked.types.U).toEqual(checked.types.get(step.value));
      expect(plan.schedule).toMatchObject({
        rounds: 1,
        target_clients: 12,
        min_clients_in_aggregate: step.min_clients,
      });
      expect(plan.computations.accumulate).toBe(program.computations[step.accumulate]);
    }
  });

  it.each([
    ['bitwidth', { bitwidth: 8 }, 0, 'secagg+'],
    ['max_input', { maxInput: 100, protocol: 'secagg' as const }, 1, 'secagg'],
    ['modulus', { modulus: 7, protocol: 'none' as const }, 2, 'none'],
  ])(
    'makes a valid one-round plan of a %s secure_sum: U empty, the value as its V, its sum the state',
    (kind, o, slot, protocol) => {
      const program = secureCountProgram(2, 4, { ...o, deadlineS: 40 });
      const checked = checkProgram(program);
      const index = program.steps.findIndex((s) => s.op === 'secure_sum');
      const step = program.steps[index]!;
      if (step.op !== 'secure_sum') throw new Error('no secure_sum');
      const plan = aggregationPlan(checked, index, { clients: 3, deadlineS: 40 });
      const { types } = checkPlan(plan);
      const V = checked.types.get(step.value);
      const empty = { kind: 'struct', fields: [] };
      expect(types.U).toEqual(empty);
      expect(types.V).toEqual([0, 1, 2].map((k) => (k === slot ? V : empty)));
      expect(types.S).toEqual(V);
      expect(plan.schedule).toMatchObject({
        rounds: 1,
        target_clients: 3,
        min_clients_in_aggregate: 2,
        reporting_deadline_s: 40,
        // With SecAgg, selection and the key exchange take a quarter of the deadline each.
        selection_timeout_s: protocol === 'none' ? 40 : 10,
        secure_aggregation:
          protocol === 'none' ? { protocol } : { protocol, sharing_timeout_s: 10, unmasking_timeout_s: 10 },
      });
      expect(plan.description).toContain(`secure_sum total (${kind}`);
    },
  );

  it('refuses a step that is not an aggregation', () => {
    const checked = checkProgram(programs['sum-then-scale']);
    expect(() => aggregationPlan(checked, 0, { clients: 2, deadlineS: 60 })).toThrow(/not an aggregation/);
  });
});
