/**
 * Many clients' examples in one CSV file, for `roundhouse run-local plan.json --data clients.csv`: a header
 * `client_id,<leaf columns...>`, then one example per row. Leaf columns follow `tensorLeaves(element)` order;
 * a leaf with a per-example shape is flattened row-major into columns `<path>.<i>` (e.g. `x.0 ... x.63`), a
 * per-example scalar is one column `<path>`. Paths join field names (or indices of unnamed fields) with ".".
 * Strings only: this runs in Node and browsers alike.
 */
import { parse } from 'csv-parse/sync';
import { AppError, type ErrorDetail } from '../errors';
import type { TffType } from '../compute/types';
import {
  allocateLeaf,
  checkClientExamples,
  exampleLeaves,
  leafLabel,
  mergeExamples,
  outOfRange,
  type ClientExamples,
  type ExampleData,
  type ExampleLeaf,
} from './client-examples';

/** The first CSV column: which client a row (example) belongs to. */
export const CLIENT_ID_COLUMN = 'client_id';

/** Stop collecting after this many problems: a wholly wrong file should not produce a million-line error. */
const MAX_PROBLEMS = 20;

function invalid(details: readonly ErrorDetail[], source?: string): AppError {
  return new AppError(
    'DATA_INVALID',
    `invalid client data CSV${source === undefined ? '' : ` ${source}`}`,
    details,
  );
}

/** The CSV header for an element type: `client_id` and then every leaf's flattened columns. */
export function clientsCsvHeader(element: TffType): string[] {
  return [CLIENT_ID_COLUMN, ...leafColumns(exampleLeaves(element))];
}

function leafColumns(leaves: readonly ExampleLeaf[]): string[] {
  const columns = leaves.flatMap((leaf) => {
    const base = leafLabel(leaf.path);
    if (leaf.exampleShape.length === 0) return [base];
    return Array.from({ length: leaf.exampleSize }, (_, i) => `${base}.${i}`);
  });
  // Field names may contain "." so `x.0` could come from two leaves; such a type has no CSV form.
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c))
      throw invalid([{ path: 'element', message: `two leaves both map to CSV column "${c}"` }]);
    seen.add(c);
  }
  return columns;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;

/** Parses one cell for a dtype, or returns why it cannot. */
function parseCell(text: string, dtype: ExampleLeaf['dtype']): number | string {
  if (dtype === 'bool')
    return text === '0' ? 0 : text === '1' ? 1 : `${JSON.stringify(text)} is not 0 or 1 (bool)`;
  if (dtype === 'int32') {
    const v = Number(text);
    if (!INTEGER.test(text)) return `${JSON.stringify(text)} is not an integer (int32)`;
    if (v < -2147483648 || v > 2147483647) return `${text} is out of the int32 range`;
    return v;
  }
  if (!DECIMAL.test(text)) return `${JSON.stringify(text)} is not a number (float32)`;
  const v = Math.fround(Number(text));
  return Number.isFinite(v) ? v : `${text} is out of the float32 range`;
}

interface ParsedRecord {
  readonly info: { readonly lines: number };
  readonly record: string[];
}

/** Options of {@link readClientsCsv}. */
export interface ReadClientsCsvOptions {
  /** Names the file in every problem (`clients.csv: row 5, column y`). */
  readonly source?: string;
  /**
   * The client that every row belongs to when the header has no `client_id` column (a held-out set, one
   * client); without it, that column is required.
   */
  readonly singleClient?: string;
}

/**
 * Reads many clients' examples from CSV text; throws DATA_INVALID naming the file (`source`), the row (the
 * file's line number) and column of each problem: a header that does not match the element type, a wrong
 * number of cells, an empty client id, a cell that is not a number, a non-integral or out-of-range int32, a
 * bool other than 0/1, a value outside the `range` its tensor declares (labels, for example).
 * Clients keep the order of their first row; a client's examples keep file order.
 */
export function readClientsCsv(
  text: string,
  element: TffType,
  options: ReadClientsCsvOptions = {},
): Map<string, ClientExamples> {
  const located = (details: readonly ErrorDetail[]): AppError =>
    invalid(
      options.source === undefined
        ? details
        : details.map((d) => ({ ...d, path: `${options.source}: ${d.path}` })),
      options.source,
    );
  const leaves = exampleLeaves(element);

  let records: ParsedRecord[];
  try {
    // `info: true` makes each record `{info, record}`; csv-parse's typings do not model that option.
    records = parse(text, {
      bom: true,
      info: true,
      trim: true,
      skip_empty_lines: true,
      relax_column_count: true,
    }) as unknown as ParsedRecord[];
  } catch (e) {
    throw located([{ path: 'csv', message: (e as Error).message }]);
  }
  const [head, ...rows] = records;
  const single = options.singleClient !== undefined && head?.record[0] !== CLIENT_ID_COLUMN;
  // With a client id, its column comes first and the leaves' columns start at 1.
  const first = single ? 0 : 1;
  const columns = [...(single ? [] : [CLIENT_ID_COLUMN]), ...leafColumns(leaves)];
  if (head === undefined)
    throw located([{ path: 'row 1', message: `no header; expected ${columns.slice(0, 4).join(',')},...` }]);
  const header = head.record;
  const headerProblems: ErrorDetail[] = [];
  for (let c = 0; c < Math.max(header.length, columns.length); c++) {
    if (header[c] !== columns[c]) {
      const got = header[c] === undefined ? 'nothing' : JSON.stringify(header[c]);
      const want = columns[c] === undefined ? 'no column' : JSON.stringify(columns[c]);
      headerProblems.push({
        path: `row ${head.info.lines}, column ${c + 1}`,
        message: `header has ${got}, expected ${want}`,
      });
      if (headerProblems.length >= MAX_PROBLEMS) break;
    }
  }
  if (headerProblems.length > 0) throw located(headerProblems);

  // Parsed values of each example, by client, until the per-leaf arrays can be sized.
  const width = columns.length - first;
  const byClient = new Map<string, Float64Array[]>();
  const problems: ErrorDetail[] = [];
  for (const { info, record } of rows) {
    if (problems.length >= MAX_PROBLEMS) break;
    const row = `row ${info.lines}`;
    if (record.length !== columns.length) {
      problems.push({ path: row, message: `${record.length} cells, the header has ${columns.length}` });
      continue;
    }
    const id = single ? options.singleClient! : record[0]!;
    if (id === '') {
      problems.push({ path: `${row}, column ${CLIENT_ID_COLUMN}`, message: 'empty client id' });
      continue;
    }
    const values = new Float64Array(width);
    let c = first;
    for (const leaf of leaves) {
      for (let k = 0; k < leaf.exampleSize; k++, c++) {
        const parsed = parseCell(record[c]!, leaf.dtype);
        const v = typeof parsed === 'number' ? (outOfRange(leaf, parsed) ?? parsed) : parsed;
        if (typeof v === 'string') {
          if (problems.length < MAX_PROBLEMS)
            problems.push({ path: `${row}, column ${columns[c]}`, message: v });
        } else {
          values[c - first] = v;
        }
      }
    }
    let list = byClient.get(id);
    if (list === undefined) byClient.set(id, (list = []));
    list.push(values);
  }
  if (problems.length > 0) throw located(problems);

  const clients = new Map<string, ClientExamples>();
  for (const [id, examples] of byClient) {
    let offset = 0;
    const arrays = leaves.map((leaf): ExampleData => {
      const out = allocateLeaf(leaf, examples.length);
      examples.forEach((values, e) =>
        out.set(values.subarray(offset, offset + leaf.exampleSize), e * leaf.exampleSize),
      );
      offset += leaf.exampleSize;
      return out;
    });
    clients.set(id, { count: examples.length, leaves: arrays });
  }
  return clients;
}

/**
 * Reads a held-out set from CSV text as one set of examples: its rows are one client when the header has no
 * `client_id` column (as `data split` writes it), else every client's rows together.
 */
export function readHeldOutCsv(text: string, element: TffType, source?: string): ClientExamples {
  const parts = readClientsCsv(text, element, {
    ...(source === undefined ? {} : { source }),
    singleClient: 'heldout',
  });
  return mergeExamples([...parts.values()], element);
}

/** The shortest decimal text that reads back as the same float32 (so 0.1f is "0.1", not "0.10000000149011612"). */
export function formatFloat32(x: number): string {
  for (let p = 1; p < 9; p++) {
    const shorter = Number(x.toPrecision(p));
    if (Math.fround(shorter) === x) return String(shorter);
  }
  return String(x);
}

function quote(cell: string): string {
  // Quote what CSV would split or what trimming on read would change.
  return /[",\r\n]|^\s|\s$/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

/**
 * Writes many clients' examples as CSV text (header, then one row per example, "\n" line ends), the format
 * `readClientsCsv` reads; throws DATA_INVALID when a client's examples do not fit the element type.
 * `withClientId: false` writes one client without the `client_id` column (a held-out set), which
 * `readClientsCsv` reads with its `singleClient` option.
 */
export function writeClientsCsv(
  clients: ReadonlyMap<string, ClientExamples>,
  element: TffType,
  options: { readonly withClientId?: boolean } = {},
): string {
  const withId = options.withClientId ?? true;
  if (!withId && clients.size > 1)
    throw invalid([{ path: CLIENT_ID_COLUMN, message: 'several clients need the client_id column' }]);
  const leaves = exampleLeaves(element);
  const lines = [[...(withId ? [CLIENT_ID_COLUMN] : []), ...leafColumns(leaves)].join(',')];
  for (const [id, examples] of clients) {
    if (id === '') throw invalid([{ path: CLIENT_ID_COLUMN, message: 'empty client id' }]);
    checkClientExamples(examples, leaves, `client ${JSON.stringify(id)}`);
    const idCell = quote(id);
    for (let e = 0; e < examples.count; e++) {
      const cells = withId ? [idCell] : [];
      leaves.forEach((leaf, i) => {
        const data = examples.leaves[i]!;
        for (let k = e * leaf.exampleSize; k < (e + 1) * leaf.exampleSize; k++) {
          cells.push(leaf.dtype === 'float32' ? formatFloat32(data[k]!) : String(data[k]));
        }
      });
      lines.push(cells.join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}
