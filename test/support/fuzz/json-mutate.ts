/**
 * Structural mutations of JSON documents for the fuzz: a mutation is plain data drawn by fast-check (so that
 * it shrinks and replays from a seed) and applied to a deep copy of a valid document. Some values cannot be
 * built as JavaScript objects and serialised safely (nesting thousands deep overflows `JSON.stringify`, and
 * `1e999` is not a JavaScript number): those travel as {@link Raw} fragments spliced into the JSON text.
 */
import fc from 'fast-check';

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Names that break code using plain objects as maps: every one of them is "present" on `{}`. */
export const PROTO_NAMES = [
  '__proto__',
  'constructor',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'prototype',
  'isPrototypeOf',
  '__defineGetter__',
] as const;

/** JSON text spliced in verbatim where a placeholder string stands in the document. */
export class Raw {
  constructor(readonly raw: string) {}
}

const RAW_TAG = '\u0000raw:';

/** A document with its raw fragments, serialised by {@link serialize}. */
export class Doc {
  private readonly raws: string[] = [];
  constructor(public root: Json) {}

  /** A placeholder for `fragment` that {@link serialize} replaces with the fragment's text. */
  placeholder(fragment: Raw): string {
    this.raws.push(fragment.raw);
    return `${RAW_TAG}${this.raws.length - 1}`;
  }

  /** The JSON text, raw fragments spliced in. */
  serialize(): string {
    return this.splice(JSON.stringify(this.root));
  }

  /** Replaces the quoted placeholders in JSON text written from this document with their fragments. */
  splice(text: string): string {
    if (this.raws.length === 0) return text;
    // JSON.stringify writes NUL as \u0000, so the placeholder's quoted form is unambiguous.
    return text.replace(/"\\u0000raw:(\d+)"/g, (_m, i: string) => this.raws[Number(i)]!);
  }
}

/** Sets an own, enumerable property, even `__proto__` (plain assignment would change the prototype). */
export function setOwn(obj: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A deep copy that keeps own `__proto__` keys as data. */
export function cloneJson(v: Json): Json {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(cloneJson);
  const out: { [key: string]: Json } = {};
  for (const k of Object.keys(v)) setOwn(out, k, cloneJson(v[k]!));
  return out;
}

/** One place in a document: a container and a key in it. */
interface Slot {
  readonly parent: Json[] | { [key: string]: Json };
  readonly key: string | number;
  readonly value: Json;
}

/** Every slot of a document in depth-first order (the root has none: mutations replace inside it). */
function slots(root: Json): Slot[] {
  const out: Slot[] = [];
  const walk = (v: Json): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => (out.push({ parent: v, key: i, value: x }), walk(x)));
    } else {
      for (const k of Object.keys(v)) {
        out.push({ parent: v, key: k, value: v[k]! });
        walk(v[k]!);
      }
    }
  };
  walk(root);
  return out;
}

function put(slot: Slot, value: Json): void {
  if (Array.isArray(slot.parent)) slot.parent[slot.key as number] = value;
  else setOwn(slot.parent, slot.key as string, value);
}

/** A value a mutation writes: JSON, or a raw fragment. */
export type Payload = Json | Raw;

function isRaw(p: Payload): p is Raw {
  return p instanceof Raw;
}

function materialize(doc: Doc, p: Payload): Json {
  return isRaw(p) ? doc.placeholder(p) : cloneJson(p);
}

/**
 * One structural mutation. `at` and `pick` are free numbers taken modulo what the document offers, so that
 * a mutation drawn for one document applies to any other.
 */
export type Mutation =
  | { readonly kind: 'delete'; readonly at: number }
  | { readonly kind: 'duplicate'; readonly at: number; readonly key: string }
  | { readonly kind: 'replace'; readonly at: number; readonly payload: Payload }
  | { readonly kind: 'add-key'; readonly at: number; readonly key: string; readonly payload: Payload }
  | { readonly kind: 'rename-all'; readonly pick: number; readonly to: string }
  | { readonly kind: 'rename-key'; readonly at: number; readonly to: string }
  | { readonly kind: 'field'; readonly field: string; readonly pick: number; readonly payload: Payload }
  | { readonly kind: 'swap'; readonly at: number; readonly pick: number };

function objectSlots(all: Slot[]): Slot[] {
  return all.filter((s) => s.value !== null && typeof s.value === 'object' && !Array.isArray(s.value));
}

/** Applies a mutation in place; a mutation that finds nothing to act on leaves the document as it is. */
export function applyMutation(doc: Doc, m: Mutation): void {
  const all = slots(doc.root);
  if (all.length === 0) {
    if (m.kind === 'replace') doc.root = materialize(doc, m.payload);
    return;
  }
  const slot = (at: number, among: Slot[] = all): Slot | undefined => among[at % Math.max(1, among.length)];
  switch (m.kind) {
    case 'delete': {
      const s = slot(m.at)!;
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
      else delete s.parent[s.key as string];
      return;
    }
    case 'duplicate': {
      const s = slot(m.at)!;
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 0, cloneJson(s.value));
      else setOwn(s.parent, m.key, cloneJson(s.value));
      return;
    }
    case 'replace':
      put(slot(m.at)!, materialize(doc, m.payload));
      return;
    case 'add-key': {
      const s = slot(m.at, objectSlots(all));
      if (s) setOwn(s.value as { [key: string]: Json }, m.key, materialize(doc, m.payload));
      return;
    }
    case 'rename-all': {
      // Renames one name everywhere it occurs (as a string value or a key), so that references stay
      // consistent: a node or function named `__proto__` that the plan really uses.
      const names = [
        ...new Set(all.filter((s) => typeof s.value === 'string').map((s) => s.value as string)),
      ];
      const from = names[m.pick % Math.max(1, names.length)];
      if (from === undefined) return;
      for (const s of all) if (s.value === from) put(s, m.to);
      for (const s of objectSlots(all)) renameKey(s.value as { [key: string]: Json }, from, m.to);
      if (doc.root !== null && typeof doc.root === 'object' && !Array.isArray(doc.root))
        renameKey(doc.root, from, m.to);
      return;
    }
    case 'rename-key': {
      const s = slot(m.at, objectSlots(all));
      if (!s) return;
      const obj = s.value as { [key: string]: Json };
      const keys = Object.keys(obj);
      const from = keys[m.at % Math.max(1, keys.length)];
      if (from !== undefined) renameKey(obj, from, m.to);
      return;
    }
    case 'field': {
      // Targets a field by name (dtype, shape, value, op, fn, ...) wherever it occurs.
      const named = all.filter((s) => s.key === m.field);
      const s = named[m.pick % Math.max(1, named.length)];
      if (s) put(s, materialize(doc, m.payload));
      return;
    }
    case 'swap': {
      const a = slot(m.at)!;
      const b = slot(m.pick)!;
      const va = a.value;
      put(a, b.value);
      put(b, va);
      return;
    }
  }
}

function renameKey(obj: { [key: string]: Json }, from: string, to: string): void {
  if (!Object.hasOwn(obj, from) || from === to) return;
  const v = obj[from]!;
  delete obj[from];
  setOwn(obj, to, v);
}

/** Nested arrays, objects or TFF struct types `depth` levels deep, as raw JSON text. */
export function deepFragment(kind: 'array' | 'object' | 'type' | 'node-args', depth: number): Raw {
  switch (kind) {
    case 'array':
      return new Raw('['.repeat(depth) + ']'.repeat(depth));
    case 'object':
      return new Raw('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
    case 'type':
      return new Raw(
        '{"kind":"struct","fields":[{"name":"x","type":'.repeat(depth) +
          '{"kind":"tensor","dtype":"float32","shape":[]}' +
          '}]}'.repeat(depth),
      );
    case 'node-args':
      return new Raw('{"name":"n","op":"struct","args":['.repeat(depth) + '"x"' + ']}'.repeat(depth));
  }
}

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
