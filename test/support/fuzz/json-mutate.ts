/**
 * Structural mutations of JSON documents for the fuzz: a mutation is plain data drawn by fast-check (so that
 * it shrinks and replays from a seed) and applied to a deep copy of a valid document. Some values cannot be
 * built as JavaScript objects and serialised safely (nesting thousands deep overflows `JSON.stringify`, and
 * `1e999` is not a JavaScript number): those travel as {@link Raw} fragments spliced into the JSON text.
 */
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
