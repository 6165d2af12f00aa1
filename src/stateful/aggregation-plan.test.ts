import { checkPlan } from '../plan/validate';
import { sumProgram } from '../../test/support/stateful-programs';
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
      if (step.op !== 'aggregate') throw new Error('not an aggregate');
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

  it('refuses a step that is not an aggregate', () => {
    const checked = checkProgram(programs['sum-then-scale']);
    expect(() => aggregationPlan(checked, 0, { clients: 2, deadlineS: 60 })).toThrow(/not an aggregate/);
  });
});
