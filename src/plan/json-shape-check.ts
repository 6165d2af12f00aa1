import { AppError } from '../errors';

/**
 * Bounds on the shape of a plan or program document, checked before any recursive code (ajv, the checker)
 * sees it.
 */
export interface JsonShapeLimits {
  /** Nesting depth of objects and arrays; the document itself is depth 1. */
  readonly maxDepth: number;
  /** Entries of any one array. */
  readonly maxArrayLength: number;
  /** Values (objects, arrays, strings, numbers, booleans, nulls) in the whole document. */
  readonly maxValues: number;
}

/**
 * The defaults documented in docs/ir.md. A struct type nests three JSON levels per level of the type, so 64
 * leaves room for the type nesting limit ({@link MAX_TYPE_DEPTH} in compute/types) everywhere a type can sit;
 * a million-entry array is a 4 MiB float32 literal, and larger tensors belong in an `initial_state` bundle.
 */
export const DEFAULT_JSON_SHAPE_LIMITS: JsonShapeLimits = Object.freeze({
  maxDepth: 64,
  maxArrayLength: 1_048_576,
  maxValues: 4_194_304,
});

/** What a document is called in messages: the same checks guard plans and stateful programs. */
export type DocumentKind = 'plan' | 'program';

/** Escapes one JSON pointer token (RFC 6901). */
export function pointerToken(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Walks a parsed JSON document without recursion and throws PLAN_LIMIT_EXCEEDED (400), with the JSON pointer
 * of the first offending place, when it nests too deep, holds too large an array or too many values. ajv
 * validates recursive schemas (TFF types) recursively, so a 2,000-deep type would otherwise overflow the stack
 * and answer 500; the walk costs one visit per value and stops at the first problem.
 */
export function checkJsonShape(
  json: unknown,
  limits: JsonShapeLimits = DEFAULT_JSON_SHAPE_LIMITS,
  kind: DocumentKind = 'plan',
): void {
  // An explicit stack of containers; each frame knows its parent and key, and a JSON pointer is only built
  // for the one place that fails, which keeps the walk over a large document cheap.
  interface Frame {
    readonly value: object;
    readonly depth: number;
    readonly parent: Frame | null;
    readonly key: string | number;
  }
  const pointerOf = (frame: Frame | null): string => {
    const tokens: string[] = [];
    for (let f = frame; f?.parent; f = f.parent) tokens.push(pointerToken(f.key));
    return tokens.length === 0 ? '/' : `/${tokens.reverse().join('/')}`;
  };
  const fail = (frame: Frame | null, message: string): never => {
    throw new AppError('PLAN_LIMIT_EXCEEDED', `the ${kind} document is too large or too deeply nested`, [
      { path: pointerOf(frame), message },
    ]);
  };
  if (json === null || typeof json !== 'object') return;
  const stack: Frame[] = [{ value: json, depth: 1, parent: null, key: '' }];
  let values = 1;
  const visit = (frame: Frame, key: string | number, child: unknown): void => {
    values += 1;
    if (child !== null && typeof child === 'object') {
      stack.push({ value: child, depth: frame.depth + 1, parent: frame, key });
    }
  };
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.depth > limits.maxDepth) {
      fail(frame, `nesting deeper than ${limits.maxDepth} levels is more than the limit`);
    }
    const { value } = frame;
    if (Array.isArray(value)) {
      if (value.length > limits.maxArrayLength) {
        fail(frame, `an array of ${value.length} entries is more than the limit of ${limits.maxArrayLength}`);
      }
      if (values + value.length > limits.maxValues) {
        fail(frame, `the document has more than ${limits.maxValues} values (the limit)`);
      }
      // In reverse, so that the first problem in document order is found first.
      for (let i = value.length - 1; i >= 0; i--) visit(frame, i, value[i]);
      continue;
    }
    // Own keys only; a "__proto__" key from JSON.parse is an own property and is walked like any other.
    const keys = Object.keys(value);
    if (values + keys.length > limits.maxValues) {
      fail(frame, `the document has more than ${limits.maxValues} values (the limit)`);
    }
    for (let i = keys.length - 1; i >= 0; i--)
      visit(frame, keys[i]!, (value as Record<string, unknown>)[keys[i]!]);
  }
}

/** The node limits {@link checkNodeCounts} applies (a subset of compute/limits' `Limits`). */
export interface NodeCountLimits {
  readonly maxNodesPerComputation: number;
  readonly maxNodesPerPlan: number;
}

/**
 * Applies the checker's node limits before the schema runs, on a document that may not be a plan at all:
 * validating a million nodes (each name against its pattern) takes seconds, which the checker's own count,
 * after the schema, cannot save. Looks only at arrays where a plan or a program keeps nodes (a program's
 * `computations` is a map of computations like a plan's form); anything else is left to ajv.
 */
export function checkNodeCounts(json: unknown, limits: NodeCountLimits, kind: DocumentKind = 'plan'): void {
  if (!isObject(json)) return;
  const places: [string, unknown][] = [
    ['/initialize', json.initialize],
    ['/evaluate', json.evaluate],
    ...entries(json.computations).map(([k, v]): [string, unknown] => [`/computations/${pointerToken(k)}`, v]),
    ...entries(json.functions).map(([k, v]): [string, unknown] => [`/functions/${pointerToken(k)}`, v]),
  ];
  let total = 0;
  for (const [pointer, comp] of places) {
    const nodes = isObject(comp) ? comp.nodes : undefined;
    if (!Array.isArray(nodes)) continue;
    if (nodes.length > limits.maxNodesPerComputation) {
      throw tooMany(
        `${pointer}/nodes`,
        `${nodes.length} nodes, more than the limit of ${limits.maxNodesPerComputation}`,
        kind,
      );
    }
    total += nodes.length;
    if (total > limits.maxNodesPerPlan) {
      throw tooMany(pointer, `the ${kind} has more than ${limits.maxNodesPerPlan} nodes (the limit)`, kind);
    }
  }
}

function tooMany(path: string, message: string, kind: DocumentKind): AppError {
  return new AppError('PLAN_LIMIT_EXCEEDED', `the ${kind} has too many nodes`, [{ path, message }]);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function entries(v: unknown): [string, unknown][] {
  return isObject(v) ? Object.entries(v) : [];
}
