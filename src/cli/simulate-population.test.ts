import { PLAN_LIBRARY } from '../plans';
import { checkPopulationFlags, evaluationNote, type PopulationFlags } from './simulate-population';

const flags = (over: Partial<PopulationFlags>): PopulationFlags => ({
  clients: 100,
  shardsPerClient: 2,
  seed: 0,
  ...over,
});
const fedavg = PLAN_LIBRARY.fedavg!.build({});
const sum = PLAN_LIBRARY['federated-sum']!.build({});

test('--eval-data needs --data, and --target-accuracy with --data needs --eval-data', () => {
  expect(() => checkPopulationFlags(flags({ evalData: 'h.csv' }))).toThrow('--eval-data needs --data');
  expect(() => checkPopulationFlags(flags({ data: 'c.csv', targetAccuracy: 0.9 }))).toThrow(
    '--target-accuracy with --data needs --eval-data',
  );
  expect(() =>
    checkPopulationFlags(flags({ data: 'c.csv', evalData: 'h.csv', targetAccuracy: 0.9 })),
  ).not.toThrow();
  expect(() => checkPopulationFlags(flags({ targetAccuracy: 0.9 }))).not.toThrow();
});

test('the note says when a plan with evaluate gets no held-out evaluation, or --eval-data goes unused', () => {
  expect(evaluationNote(fedavg, flags({ data: 'c.csv' }))).toMatch(
    /^note: no --eval-data: the rounds show no/,
  );
  expect(evaluationNote(fedavg, flags({ data: 'c.csv', evalData: 'h.csv' }))).toBeUndefined();
  expect(evaluationNote(fedavg, flags({}))).toBeUndefined();
  expect(evaluationNote(sum, flags({ data: 'c.csv', evalData: 'h.csv' }))).toBe(
    'note: the plan has no evaluate computation: --eval-data h.csv is not used',
  );
  expect(evaluationNote(sum, flags({ data: 'c.csv' }))).toBeUndefined();
  // Joined by id without --plan-file: there is no evaluate to run.
  expect(evaluationNote(undefined, flags({ data: 'c.csv', evalData: 'h.csv' }))).toMatch(
    /^note: --eval-data needs the plan's JSON \(--plan-file\)/,
  );
});
