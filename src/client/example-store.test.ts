import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { structType, tensorType } from '../compute/types';
import { writeClientsCsv, type ClientExamples } from '../data';
import { MemoryExampleStore, PageExampleStore } from './example-store';
import { CsvExampleStore } from './node';

const element = structType([
  ['x', tensorType('float32', [null, 2])],
  ['y', tensorType('int32', [null])],
]);
const examples = (...rows: [number, number, number][]): ClientExamples => ({
  count: rows.length,
  leaves: [Float32Array.from(rows.flatMap(([a, b]) => [a, b])), Int32Array.from(rows.map((r) => r[2]))],
});
const plain = (e: ClientExamples) => ({ count: e.count, leaves: e.leaves.map((l) => Array.from(l)) });

describe('example stores', () => {
  test('a memory store answers its collection, and zero examples of the right shape for any other', async () => {
    const store = new MemoryExampleStore({ digits: examples([1, 2, 3]) });
    expect(plain(await store.examples('digits', element, 8))).toEqual({ count: 1, leaves: [[1, 2], [3]] });
    const none = await store.examples('other', element, 8);
    expect(none.count).toBe(0);
    expect(none.leaves.map((l) => l.constructor.name)).toEqual(['Float32Array', 'Int32Array']);
  });

  test('a page store answers what is set at the time of the call', async () => {
    const store = new PageExampleStore();
    expect((await store.examples('digits', element, 8)).count).toBe(0);
    store.set('digits', examples([1, 2, 3], [4, 5, 6]));
    expect((await store.examples('digits', element, 8)).count).toBe(2);
    store.clear('digits');
    expect((await store.examples('digits', element, 8)).count).toBe(0);
    store.set('a', examples([1, 1, 1]));
    store.set('b', examples([1, 1, 1]));
    store.clear();
    expect((await store.examples('b', element, 8)).count).toBe(0);
  });

  test('a CSV store reads every row of its file, whatever the client id, at each call', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-csv-store-'));
    try {
      const file = path.join(dir, 'digits.csv');
      const write = (clients: Record<string, ClientExamples>) =>
        fs.writeFileSync(file, writeClientsCsv(new Map(Object.entries(clients)), element));
      write({ me: examples([1, 2, 3]), also: examples([4, 5, 6]) });
      const store = new CsvExampleStore({ digits: file });
      expect(plain(await store.examples('digits', element, 8))).toEqual({
        count: 2,
        leaves: [
          [1, 2, 4, 5],
          [3, 6],
        ],
      });
      write({ me: examples([7, 8, 9]) });
      expect((await store.examples('digits', element, 8)).count).toBe(1);
      expect((await store.examples('other', element, 8)).count).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
