import { AppError } from '../errors';

/** Bounds on the shape of a plan document, checked before any recursive code (ajv, the checker) sees it. */
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
export function checkJsonShape(json: unknown, limits: JsonShapeLimits = DEFAULT_JSON_SHAPE_LIMITS): void {
  // An explicit stack of [value, depth, pointer]; pointers are only built for containers, which keeps the
  // walk over a large numeric array cheap.
  const stack: [unknown, number, string][] = [[json, 1, '']];
  let values = 0;
  const fail = (pointer: string, message: string): never => {
    throw new AppError('PLAN_LIMIT_EXCEEDED', 'the plan document is too large or too deeply nested', [
      { path: pointer || '/', message },
    ]);
  };
  while (stack.length > 0) {
    const [value, depth, pointer] = stack.pop()!;
    values += 1;
    if (values > limits.maxValues) {
      fail(pointer, `the document has more than ${limits.maxValues} values (the limit)`);
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth > limits.maxDepth) {
      fail(pointer, `nesting deeper than ${limits.maxDepth} levels is more than the limit`);
    }
    if (Array.isArray(value)) {
      if (value.length > limits.maxArrayLength) {
        fail(
          pointer,
          `an array of ${value.length} entries is more than the limit of ${limits.maxArrayLength}`,
        );
      }
      if (values + value.length > limits.maxValues) {
        fail(pointer, `the document has more than ${limits.maxValues} values (the limit)`);
      }
      for (let i = value.length - 1; i >= 0; i--) {
        const item: unknown = value[i];
        if (item !== null && typeof item === 'object') stack.push([item, depth + 1, `${pointer}/${i}`]);
        else values += 1;
      }
      continue;
    }
    // Own keys only, in reverse so that the first problem in document order is found first; a "__proto__"
    // key from JSON.parse is an own property and is walked like any other.
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      stack.push([(value as Record<string, unknown>)[key], depth + 1, `${pointer}/${pointerToken(key)}`]);
    }
  }
}
