import { PLAN_LIBRARY } from '../plans';
import { csvSource } from './csv-population';
import { checkServable } from './population';

const sum = (targetClients: number) =>
  PLAN_LIBRARY['federated-sum']!.build({ collection: 'n', targetClients, rounds: 1 });
const csv = (text: string, source = 'clients.csv') => ({ text, source });

test('a clients CSV is one device per client_id, in order of first row, with its rows', () => {
  const population = csvSource(csv('client_id,value\nb,1\na,2\nb,3\n'));
  const data = checkServable(population, sum(2), 'plan.json');
  expect(data.clients.map((c) => [c.count, [...c.leaves[0]!]])).toEqual([
    [2, [1, 3]],
    [1, [2]],
  ]);
  expect(data.heldOut).toBeUndefined();
});

test('held-out rows are one set, with or without client_id', () => {
  const clients = csv('client_id,value\na,1\nb,2\n');
  const without = csvSource(clients, csv('value\n4\n5\n', 'heldout.csv'));
  const withIds = csvSource(clients, csv('client_id,value\nx,4\ny,5\n', 'heldout.csv'));
  for (const population of [without, withIds]) {
    const { heldOut } = population.load(sum(2).client_data.element, 'plan.json');
    expect(heldOut && [heldOut.count, [...heldOut.leaves[0]!]]).toEqual([2, [4, 5]]);
  }
});

test('a population with fewer clients than a round needs is refused, saying which option to change', () => {
  const population = csvSource(csv('client_id,value\na,1\nb,2\n'));
  expect(() => checkServable(population, sum(3), '--submit plan.json')).toThrow(
    '--submit plan.json needs 3 clients to report a round (min_reports, else target_clients), but clients.csv ' +
      'has 2: every round would fail. Build the plan with --target-clients 2',
  );
});

test('a cell that does not fit the plan names the file, row and column', () => {
  const population = csvSource(csv('client_id,value\na,1\nb,1.5\n'));
  expect(() => checkServable(population, sum(1), 'plan.json')).toThrow(
    'clients.csv: row 3, column value: "1.5" is not an integer (int32)',
  );
});

test('the data is read once per batch type', () => {
  const population = csvSource(csv('client_id,value\na,1\n'));
  const element = sum(1).client_data.element;
  expect(population.load(element, 'a')).toBe(population.load(structuredClone(element), 'b'));
});
