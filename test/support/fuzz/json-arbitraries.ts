/**
 * fast-check arbitraries of hostile JSON for the mutations of json-mutate.ts: edge numbers, values that are
 * valid elsewhere in the plan IR, prototype names, huge and deep structures, and the mutations themselves.
 */
import fc from 'fast-check';
import {
  deepFragment,
  PROTO_NAMES,
  Raw,
  setOwn,
  type Json,
  type Mutation,
  type Payload,
} from './json-mutate';

/** Numbers and strings that sit at the edges of every numeric check. */
export const EDGE_SCALARS: readonly Json[] = [
  0,
  -0,
  -1,
  1.5,
  0.5,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  1e308,
  -1e308,
  5e-324,
  1e-300,
  1e300,
  'NaN',
  'Infinity',
  '-Infinity',
  '',
  '0',
  '1e309',
  true,
  false,
  null,
  ...PROTO_NAMES,
];

/** Raw number texts JSON accepts but JavaScript cannot write: they parse to ±Infinity or -0. */
const RAW_NUMBERS: readonly Raw[] = ['1e999', '-1e999', '1E400', '-0', '0.0000000000e-99999'].map(
  (raw) => new Raw(raw),
);

/**
 * Values that are valid somewhere in the plan IR but wrong where they land: other dtypes, op names, shapes,
 * type kinds. They pass the schema more often than random values and so reach the type checker.
 */
const IR_VALUES: readonly Json[] = [
  'float32',
  'int32',
  'bool',
  'float64',
  'int64',
  'add',
  'matmul',
  'reduce_sum',
  'cast',
  'const',
  'reshape',
  'fold',
  'call',
  'repeat',
  'value_and_grad',
  'struct',
  'field',
  'tensor',
  'sequence',
  [],
  [null],
  [null, null],
  [2, 2],
  [0],
  [1, 3],
  [65536, 65536],
  [-1],
  { kind: 'tensor', dtype: 'int32', shape: [] },
  { kind: 'tensor', dtype: 'float32', shape: [null, 4] },
  { kind: 'struct', fields: [] },
  { kind: 'sequence', element: { kind: 'tensor', dtype: 'bool', shape: [] } },
];

/** A hostile replacement value: edge scalars, prototype-laden objects, huge or deep structures, random JSON. */
export function payloadArb(): fc.Arbitrary<Payload> {
  const protoObject = fc
    .tuple(fc.constantFrom(...PROTO_NAMES), fc.jsonValue({ maxDepth: 2 }))
    .map(([k, v]) => {
      const o: { [key: string]: Json } = {};
      setOwn(o, k, v as Json);
      return o as Json;
    });
  return fc.oneof(
    { arbitrary: fc.constantFrom(...EDGE_SCALARS), weight: 6 },
    { arbitrary: fc.constantFrom(...IR_VALUES), weight: 5 },
    { arbitrary: fc.constantFrom(...RAW_NUMBERS), weight: 1 },
    { arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, weight: 3 },
    { arbitrary: protoObject, weight: 2 },
    {
      arbitrary: fc
        .tuple(
          fc.constantFrom('array', 'object', 'type', 'node-args' as const),
          fc.integer({ min: 50, max: 5000 }),
        )
        .map(([k, d]) => deepFragment(k, d)),
      weight: 1,
    },
    { arbitrary: hugeArb(), weight: 1 },
  );
}

/** Large arrays and strings: big enough to cost, small enough that ten thousand requests stay fast. */
export function hugeArb(): fc.Arbitrary<Payload> {
  return fc.oneof(
    fc
      .integer({ min: 1000, max: 60_000 })
      .map((n) => new Raw(`[${new Array<string>(n).fill('1').join(',')}]`)),
    fc
      .integer({ min: 1000, max: 20_000 })
      .map((n) => new Raw(`[${new Array<string>(n).fill('"x"').join(',')}]`)),
    fc
      .integer({ min: 1000, max: 20_000 })
      .map((n) => new Raw(`[${new Array<string>(n).fill('{}').join(',')}]`)),
    fc.integer({ min: 10_000, max: 500_000 }).map((n) => 'x'.repeat(n) as Json),
    fc.constantFrom<Json>([1e9], [1e9, 1e9], [65536, 65536, 65536], new Array<Json>(64).fill(2)),
  );
}

/** A name to use for a key or an identifier: mostly prototype names, else odd strings. */
export function nameArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...PROTO_NAMES), weight: 4 },
    { arbitrary: fc.constantFrom('', ' ', 'a/b', '..', 'x'.repeat(300), '\u0000', 'é', '0'), weight: 1 },
    { arbitrary: fc.string({ maxLength: 12 }), weight: 1 },
  );
}

/** Fields of the plan IR worth aiming at by name. */
export const PLAN_FIELDS = [
  'dtype',
  'shape',
  'value',
  'op',
  'fn',
  'args',
  'attrs',
  'nodes',
  'result',
  'name',
  'names',
  'index',
  'kind',
  'fields',
  'element',
  'parameter',
  'type',
  'epochs',
  'count',
  'axis',
  'batch_size',
  'rounds',
  'target_clients',
  'min_reports',
  'min_clients_in_aggregate',
  'over_selection',
  'selection_timeout_s',
  'reporting_deadline_s',
  'functions',
  'format',
  'population',
  'collection',
] as const;

/** A mutation of any kind, with fields biased towards the plan IR when `fields` is given. */
export function mutationArb(fields: readonly string[] = PLAN_FIELDS): fc.Arbitrary<Mutation> {
  const at = fc.nat();
  return fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('delete' as const), at }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at, key: nameArb() }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('replace' as const), at, payload: payloadArb() }), weight: 4 },
    {
      arbitrary: fc.record({
        kind: fc.constant('add-key' as const),
        at,
        key: nameArb(),
        payload: payloadArb(),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('rename-all' as const), pick: fc.nat(), to: nameArb() }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant('rename-key' as const), at, to: nameArb() }), weight: 2 },
    {
      arbitrary: fc.record({
        kind: fc.constant('field' as const),
        field: fc.constantFrom(...fields),
        pick: fc.nat(),
        payload: payloadArb(),
      }),
      weight: 5,
    },
    { arbitrary: fc.record({ kind: fc.constant('swap' as const), at, pick: fc.nat() }), weight: 1 },
  );
}

/** One of `bases`, with 1 to 3 of `fields` (of one object in it) to set to drawn `values`. */
export function fieldEditsArb<B>(
  bases: readonly B[],
  fields: readonly string[],
  values: fc.Arbitrary<Json>,
): fc.Arbitrary<{ base: B; sets: Array<[string, Json]> }> {
  return fc
    .tuple(
      fc.nat({ max: bases.length - 1 }),
      fc.array(fc.tuple(fc.constantFrom(...fields), values), { minLength: 1, maxLength: 3 }),
    )
    .map(([i, sets]) => ({ base: bases[i]!, sets }));
}
