import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { checkClientExamples, exampleLeaves } from '../src/data';
import { defaultDigitsPath, digitsElementType, parseDigitsCsv } from '../src/data/digits';
import { AppError } from '../src/errors';
import { digitsExamplesFromCsv, examplesFromArrays } from '../web/examples';

// The browser SDK's data helpers (web/examples.ts). Its digits parser repeats src/data/digits.ts's rules,
// which cannot be bundled (that module reads files): both must read the data set the same way.

function thrown(f: () => unknown): AppError {
  try {
    f();
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('digitsExamplesFromCsv', () => {
  test('reads the digits data exactly as parseDigitsCsv does, in the plan element type', () => {
    const text = zlib.gunzipSync(fs.readFileSync(defaultDigitsPath())).toString('utf8');
    const node = parseDigitsCsv(text);
    const web = digitsExamplesFromCsv(text);
    expect(web.count).toBe(node.n);
    expect(web.leaves[0]).toEqual(node.x);
    expect(web.leaves[1]).toEqual(node.y);
    expect(() => checkClientExamples(web, exampleLeaves(digitsElementType()))).not.toThrow();
  });

  test('names the line and column of a bad cell, as parseDigitsCsv does', () => {
    const row = Array.from({ length: 64 }, () => '0');
    const text = `${[...row, '3'].join(',')}\n${[...row.slice(1), '17', '3'].join(',')}\n`;
    const web = thrown(() => digitsExamplesFromCsv(text));
    const node = thrown(() => parseDigitsCsv(text));
    expect(web.code).toBe('DATA_INVALID');
    expect(web.details).toEqual(node.details);
    expect(web.details[0]!.path).toBe('line 2, column 64');
    expect(thrown(() => digitsExamplesFromCsv('1,2,3')).details[0]!.message).toMatch(
      /3 columns, expected 65/,
    );
  });
});

describe('examplesFromArrays', () => {
  test('flattens rows of arrays, keeps scalars, one typed array per column', () => {
    const ex = examplesFromArrays([
      { dtype: 'float32', rows: [[0.5, 1], Float32Array.from([2, 3])] },
      { dtype: 'int32', rows: [7, 8] },
      { dtype: 'bool', rows: [true, 0] },
    ]);
    expect(ex.count).toBe(2);
    expect(ex.leaves[0]).toEqual(Float32Array.from([0.5, 1, 2, 3]));
    expect(ex.leaves[1]).toEqual(Int32Array.from([7, 8]));
    expect(ex.leaves[2]).toEqual(Uint8Array.from([1, 0]));
    expect(examplesFromArrays([])).toEqual({ count: 0, leaves: [] });
  });

  test('refuses ragged columns and values that do not fit the dtype, saying where', () => {
    const e = thrown(() =>
      examplesFromArrays([
        { dtype: 'float32', rows: [[1, 2], [3], [4, NaN]] },
        { dtype: 'int32', rows: [1, 2.5, 3] },
        { dtype: 'bool', rows: [1, 2, 0] },
        { dtype: 'int32', rows: [1] },
      ]),
    );
    expect(e.code).toBe('DATA_INVALID');
    expect(e.details).toEqual([
      { path: 'column 0, row 1', message: '1 values, row 0 has 2' },
      { path: 'column 0, row 2, value 1', message: 'NaN is not a finite number' },
      { path: 'column 1, row 1', message: '2.5 is not an int32' },
      { path: 'column 2, row 1', message: '2 is not a bool (0, 1, false or true)' },
      { path: 'column 3', message: '1 rows, column 0 has 3' },
    ]);
  });
});
