/**
 * Turning what a web page has (CSV text a user picked or the page fetched, plain arrays) into the
 * `ClientExamples` an example store holds. Browser-safe.
 */
import type { ClientExamples, ExampleData } from '../src/data';
import { AppError, type ErrorDetail } from '../src/errors';

/** Pixels per digits image (8x8) and the largest pixel count, as in `src/data/digits.ts`. */
const DIGITS_FEATURES = 64;
const DIGITS_PIXEL_MAX = 16;
const DIGITS_CLASSES = 10;

/**
 * Parses digits CSV text (rows of 64 pixel counts 0..16 and a label 0..9, no header: the format of
 * `data/digits.csv.gz` and of `GET /demo/digits-sample.csv`) into examples for the FedAvg digits plan
 * (`<x=float32[?,64], y=int32[?]>`), pixels scaled to 0..1. Same rules as `parseDigitsCsv` of
 * `src/data/digits.ts`, which cannot be bundled because its module reads files with fs and zlib;
 * test/web-examples.test.ts checks that both agree. Throws DATA_INVALID naming the line and column.
 */
export function digitsExamplesFromCsv(text: string): ClientExamples {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const x = new Float32Array(lines.length * DIGITS_FEATURES);
  const y = new Int32Array(lines.length);
  lines.forEach((line, r) => {
    const cells = line.split(',');
    if (cells.length !== DIGITS_FEATURES + 1) {
      throw new AppError('DATA_INVALID', 'invalid digits data', [
        { path: `line ${r + 1}`, message: `${cells.length} columns, expected ${DIGITS_FEATURES + 1}` },
      ]);
    }
    cells.forEach((cell, c) => {
      const v = Number(cell);
      const max = c < DIGITS_FEATURES ? DIGITS_PIXEL_MAX : DIGITS_CLASSES - 1;
      if (cell.trim() === '' || !Number.isInteger(v) || v < 0 || v > max) {
        throw new AppError('DATA_INVALID', 'invalid digits data', [
          {
            path: `line ${r + 1}, column ${c + 1}`,
            message: `${JSON.stringify(cell)} is not an integer in 0..${max}`,
          },
        ]);
      }
      if (c < DIGITS_FEATURES) x[r * DIGITS_FEATURES + c] = v / DIGITS_PIXEL_MAX;
      else y[r] = v;
    });
  });
  return { count: lines.length, leaves: [x, y] };
}

/** One tensor of every example, as plain numbers: a number per example, or an array per example. */
export interface ExampleColumn {
  readonly dtype: 'float32' | 'int32' | 'bool';
  /** One entry per example: a scalar, or the example's values (flattened row-major when nested). */
  readonly rows: ArrayLike<number | boolean | ArrayLike<number | boolean>>;
}

/**
 * Examples from plain arrays, one column per tensor of the plan's batch element in its order, e.g. for the
 * digits plan `examplesFromArrays([{dtype: 'float32', rows: images}, {dtype: 'int32', rows: labels}])`
 * where `images[i]` holds 64 pixels in 0..1. Every column needs the same number of rows and every row of a
 * column the same length; int32 values must be integers, bools 0/1 or booleans, floats finite. The
 * store checks the result against the plan's element type when a task runs. Throws DATA_INVALID.
 */
export function examplesFromArrays(columns: readonly ExampleColumn[]): ClientExamples {
  const count = columns[0]?.rows.length ?? 0;
  const problems: ErrorDetail[] = [];
  const leaves = columns.map((column, i): ExampleData => {
    const where = `column ${i}`;
    if (column.rows.length !== count) {
      problems.push({ path: where, message: `${column.rows.length} rows, column 0 has ${count}` });
      return new Float32Array(0);
    }
    const width = count === 0 ? 0 : rowLength(column.rows[0]!);
    const out = allocate(column.dtype, count * width);
    for (let r = 0; r < count && problems.length < 10; r++) {
      const row = column.rows[r]!;
      if (rowLength(row) !== width) {
        problems.push({
          path: `${where}, row ${r}`,
          message: `${rowLength(row)} values, row 0 has ${width}`,
        });
        continue;
      }
      for (let k = 0; k < width; k++) {
        const raw = typeof row === 'object' ? row[k]! : row;
        const v = Number(raw);
        const bad = valueProblem(column.dtype, v);
        if (bad) {
          problems.push({ path: `${where}, row ${r}${width > 1 ? `, value ${k}` : ''}`, message: bad });
          break;
        }
        out[r * width + k] = v;
      }
    }
    return out;
  });
  if (problems.length > 0) throw new AppError('DATA_INVALID', 'invalid example arrays', problems);
  return { count, leaves };
}

function rowLength(row: number | boolean | ArrayLike<number | boolean>): number {
  return typeof row === 'object' ? row.length : 1;
}

function allocate(dtype: ExampleColumn['dtype'], n: number): ExampleData {
  if (dtype === 'float32') return new Float32Array(n);
  if (dtype === 'int32') return new Int32Array(n);
  return new Uint8Array(n);
}

function valueProblem(dtype: ExampleColumn['dtype'], v: number): string | null {
  if (dtype === 'float32') return Number.isFinite(v) ? null : `${v} is not a finite number`;
  if (dtype === 'int32') {
    return Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31 ? null : `${v} is not an int32`;
  }
  return v === 0 || v === 1 ? null : `${v} is not a bool (0, 1, false or true)`;
}
