import { structType, tensorType } from '../compute/types';
import { AppError } from '../errors';
import type { ClientExamples } from './client-examples';
import { clientsCsvHeader, formatFloat32, readClientsCsv, writeClientsCsv } from './clients-csv';

const element = structType([
  ['x', tensorType('float32', [null, 2, 2])],
  ['y', tensorType('int32', [null])],
  ['m', tensorType('bool', [null])],
]);
const HEADER = 'client_id,x.0,x.1,x.2,x.3,y,m';

/** The first detail of the DATA_INVALID error `fn` throws. */
function problem(fn: () => unknown): { path: string; message: string; all: string } {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AppError);
  const err = caught as AppError;
  expect(err.code).toBe('DATA_INVALID');
  return { ...err.details[0]!, all: err.message };
}

describe('clients CSV', () => {
  test('header names leaves by path, flattening per-example shapes', () => {
    expect(clientsCsvHeader(element).join(',')).toBe(HEADER);
    expect(clientsCsvHeader(tensorType('float32', [null])).join(',')).toBe('client_id,value');
    const unnamed = structType([
      [undefined, tensorType('int32', [null, 2])],
      ['p', structType([['q', tensorType('float32', [null])]])],
    ]);
    expect(clientsCsvHeader(unnamed).join(',')).toBe('client_id,0.0,0.1,p.q');
  });

  test('round-trips many clients', () => {
    const clients = new Map<string, ClientExamples>([
      [
        'alice',
        {
          count: 2,
          leaves: [
            new Float32Array([0.1, -2, 3.5e-8, 1e30, 0, 1, 2, 3]),
            new Int32Array([-2147483648, 7]),
            new Uint8Array([1, 0]),
          ],
        },
      ],
      [
        'bob, "the builder"',
        {
          count: 1,
          leaves: [new Float32Array([1 / 3, 0, 0, 0]), new Int32Array([2147483647]), new Uint8Array([1])],
        },
      ],
      ['empty', { count: 0, leaves: [new Float32Array(0), new Int32Array(0), new Uint8Array(0)] }],
    ]);
    const text = writeClientsCsv(clients, element);
    const lines = text.split('\n');
    expect(lines[0]).toBe(HEADER);
    expect(lines[1]).toBe('alice,0.1,-2,3.5e-8,1e+30,-2147483648,1');
    expect(lines[3]).toBe('"bob, ""the builder""",0.33333334,0,0,0,2147483647,1');
    const back = readClientsCsv(text, element);
    // A client without examples has no rows, so it cannot come back.
    expect([...back.keys()]).toEqual(['alice', 'bob, "the builder"']);
    expect(back.get('alice')).toEqual(clients.get('alice'));
    expect(back.get('bob, "the builder"')).toEqual(clients.get('bob, "the builder"'));
  });

  test('groups rows by client, in order of first appearance, and tolerates a BOM, CRLF and blank lines', () => {
    const text = `\ufeff${HEADER}\r\nb,1,2,3,4,5,0\r\n\r\na,0,0,0,0,1,1\r\nb,5,6,7,8,9,1\r\n`;
    const clients = readClientsCsv(text, element);
    expect([...clients.keys()]).toEqual(['b', 'a']);
    expect(clients.get('b')).toEqual({
      count: 2,
      leaves: [new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), new Int32Array([5, 9]), new Uint8Array([0, 1])],
    });
  });

  test('quotes client ids with spaces at the ends or line breaks so they survive a round trip', () => {
    const el = tensorType('int32', [null]);
    const ids = [' x ', 'a\nb'];
    const clients = new Map(ids.map((id) => [id, { count: 1, leaves: [new Int32Array([1])] }]));
    expect([...readClientsCsv(writeClientsCsv(clients, el), el).keys()]).toEqual(ids);
  });

  test('a header-only file has no clients', () => {
    expect(readClientsCsv(`${HEADER}\n`, element).size).toBe(0);
  });

  test('formats float32 values as their shortest exact decimal', () => {
    for (const x of [0.1, 1 / 3, -1e-7, 16777217, 3.4028234663852886e38, 1.401298464324817e-45]) {
      const f = Math.fround(x);
      expect(Math.fround(Number(formatFloat32(f)))).toBe(f);
    }
    expect(formatFloat32(Math.fround(0.1))).toBe('0.1');
  });

  describe('rejects with DATA_INVALID naming row and column', () => {
    const row = (cells: string) => `${HEADER}\nc1,0,0,0,0,0,0\n${cells}\n`;
    test.each([
      ['a non-number', 'c2,0,abc,0,0,0,0', 'row 3, column x.1', /"abc" is not a number/],
      ['an empty cell', 'c2,0,0,,0,0,0', 'row 3, column x.2', /"" is not a number/],
      ['a hex number', 'c2,0x10,0,0,0,0,0', 'row 3, column x.0', /not a number/],
      ['NaN', 'c2,NaN,0,0,0,0,0', 'row 3, column x.0', /not a number/],
      ['a float32 overflow', 'c2,1e39,0,0,0,0,0', 'row 3, column x.0', /float32 range/],
      ['a non-integral int32', 'c2,0,0,0,0,1.5,0', 'row 3, column y', /not an integer/],
      ['an int32 overflow', 'c2,0,0,0,0,2147483648,0', 'row 3, column y', /int32 range/],
      ['a bool other than 0/1', 'c2,0,0,0,0,0,2', 'row 3, column m', /not 0 or 1/],
      ['a bool written as true', 'c2,0,0,0,0,0,true', 'row 3, column m', /not 0 or 1/],
      ['too few cells', 'c2,0,0,0,0,0', 'row 3', /6 cells, the header has 7/],
      ['too many cells', 'c2,0,0,0,0,0,0,0', 'row 3', /8 cells/],
      ['an empty client id', ',0,0,0,0,0,0', 'row 3, column client_id', /empty client id/],
    ])('%s', (_, cells, path, message) => {
      const p = problem(() => readClientsCsv(row(cells), element));
      expect(p.path).toBe(path);
      expect(p.message).toMatch(message);
      expect(p.all).toContain(path);
    });

    test('a header that does not match the type', () => {
      const p = problem(() => readClientsCsv('client_id,x.0,x.1,x.2,x.4,y,m\n', element));
      expect(p.path).toBe('row 1, column 5');
      expect(p.message).toBe('header has "x.4", expected "x.3"');
      expect(problem(() => readClientsCsv('id,x.0,x.1,x.2,x.3,y,m\n', element)).path).toBe('row 1, column 1');
      expect(problem(() => readClientsCsv(`${HEADER},z\n`, element)).message).toMatch(
        /"z", expected no column/,
      );
    });

    test('an empty file', () => {
      expect(problem(() => readClientsCsv('', element)).message).toMatch(/no header/);
    });

    test('unbalanced quotes', () => {
      expect(problem(() => readClientsCsv(`${HEADER}\n"c1,0,0,0,0,0,0\n`, element)).path).toBe('csv');
    });

    test('every bad cell, up to a cap', () => {
      const bad = Array.from({ length: 30 }, (_, i) => `c${i},a,0,0,0,0,0`).join('\n');
      let err: AppError | undefined;
      try {
        readClientsCsv(`${HEADER}\n${bad}\n`, element);
      } catch (e) {
        err = e as AppError;
      }
      expect(err?.details).toHaveLength(20);
      expect(err?.details[19]?.path).toBe('row 21, column x.0');
    });

    test('a row number that counts blank lines', () => {
      expect(problem(() => readClientsCsv(`${HEADER}\n\n\nc,0,0,0,0,0,x\n`, element)).path).toBe(
        'row 4, column m',
      );
    });

    test('writing examples that do not fit the type', () => {
      const bad = new Map([
        ['a', { count: 1, leaves: [new Float32Array(4), new Int32Array(2), new Uint8Array(1)] }],
      ]);
      expect(problem(() => writeClientsCsv(bad, element)).path).toBe('client "a": y');
    });
  });
});
