import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import clientPlanSchema from '../schemas/client-plan.schema.json';
import computationSchema from '../schemas/computation.schema.json';
import conformanceManifestSchema from '../schemas/conformance-manifest.schema.json';
import jobsSchema from '../schemas/jobs.schema.json';
import planSchema from '../schemas/plan.schema.json';
import programSchema from '../schemas/program.schema.json';
import typeSchema from '../schemas/type.schema.json';
import type { ErrorDetail } from './errors';

/**
 * The process's ajv instances, each holding every schema in schemas/ (schemas are the single source of truth
 * for plans and requests; compiled validators are cached by ajv): one that stops at the first error, and one
 * that lists them all.
 *
 * Listing every error costs more than linear time in their number: ajv concatenates the errors of each
 * recursive `$ref` (a TFF type) into those gathered so far, so a struct of 47,440 invalid fields took 9.5 s of
 * one thread (the API stalled for every request; the fuzz found it). So a document is validated first up to
 * its first error, which is linear and is all a valid one needs; every error is listed only for a document
 * of at most {@link LIST_ALL_MAX_VALUES} values, and a larger one gets its first error and a note saying so.
 */
const ajvFirst = new Ajv({ allErrors: false, strict: false });
const ajvAll = new Ajv({ allErrors: true, strict: false });

/**
 * Largest document (in JSON values) whose schema errors are all listed: a plan of 10,000 values, 9,455 of
 * them invalid, listed its errors in 82-96 ms (200 ms the first time, compiling; a 2-core VM); a plan of a
 * few hundred nodes has a few thousand values.
 */
export const LIST_ALL_MAX_VALUES = 10_000;

/** A compiled schema: true when `data` is valid; else `errors` says why (see {@link ajvFirst}). */
export interface SchemaValidator {
  (data: unknown): boolean;
  errors: ErrorObject[] | null;
}

/** Registers a schema with a `$id` in both instances (once). */
export function addSchema(schema: { readonly $id: string }): void {
  for (const a of [ajvFirst, ajvAll]) if (!a.getSchema(schema.$id)) a.addSchema(schema);
}

for (const schema of [
  typeSchema,
  computationSchema,
  planSchema,
  programSchema,
  jobsSchema,
  clientPlanSchema,
  conformanceManifestSchema,
]) {
  addSchema(schema);
}

function twoStage(first: ValidateFunction, all: () => ValidateFunction): SchemaValidator {
  const v = ((data: unknown): boolean => {
    if (first(data)) {
      v.errors = null;
      return true;
    }
    if (valuesAtMost(data, LIST_ALL_MAX_VALUES)) {
      const every = all();
      every(data);
      v.errors = every.errors ?? first.errors ?? null;
    } else {
      v.errors = [...(first.errors ?? []), onlyFirst()];
    }
    return false;
  }) as SchemaValidator;
  v.errors = null;
  return v;
}

/** The note that ends the errors of a document too large for all of them to be listed. */
function onlyFirst(): ErrorObject {
  return {
    keyword: 'onlyFirst',
    instancePath: '',
    schemaPath: '',
    params: {},
    message: `is more than ${LIST_ALL_MAX_VALUES} JSON values: only its first schema problem is listed`,
  };
}

/** Whether `data` holds at most `max` JSON values; stops counting past it, without recursion. */
function valuesAtMost(data: unknown, max: number): boolean {
  const stack: unknown[] = [data];
  let n = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (++n > max) return false;
    if (v !== null && typeof v === 'object') {
      for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push(child);
    }
  }
  return true;
}

const validators = new Map<string, SchemaValidator>();

/** The compiled validator of a schema from schemas/, by its `$id`'s file name (e.g. `plan.schema.json`). */
export function validatorFor(file: string): SchemaValidator {
  const id = file.startsWith('https://') ? file : `https://roundhouse.dev/schemas/${file}`;
  let v = validators.get(id);
  if (!v) {
    const first = ajvFirst.getSchema(id);
    if (!first) throw new Error(`no schema ${file}`);
    v = twoStage(first, () => ajvAll.getSchema(id)!);
    validators.set(id, v);
  }
  return v;
}

/** Compiles a schema without an `$id` (an op's attrs); the caller keeps the validator. */
export function compileSchema(schema: object): SchemaValidator {
  let all: ValidateFunction | undefined;
  return twoStage(ajvFirst.compile(schema), () => (all ??= ajvAll.compile(schema)));
}

/**
 * Turns ajv errors into located, plain-language details. `base` is prefixed to each JSON pointer so that a
 * nested document (a node's attrs) is reported where it sits in the plan.
 */
export function schemaErrorDetails(
  errors: readonly ErrorObject[] | null | undefined,
  base = '',
): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    // oneOf over types reports every branch; the branch errors underneath are the useful ones.
    // propertyNames repeats its inner error without the name; the inner one says what is wrong with it.
    if (e.keyword === 'oneOf' || e.keyword === 'if' || e.keyword === 'propertyNames') continue;
    // An error about a property's name points at that property.
    const name = (e as ErrorObject & { propertyName?: string }).propertyName;
    const at = name === undefined ? e.instancePath : `${e.instancePath}/${pointerToken(name)}`;
    const detail = {
      path: base + at || '/',
      message: name === undefined ? describe(e) : `property name "${name}" ${describe(e)}`,
    };
    const key = `${detail.path} ${detail.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      details.push(detail);
    }
  }
  return details;
}

function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown property "${String(p.additionalProperty)}"`;
    case 'required':
      return `missing required property "${String(p.missingProperty)}"`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'pattern':
      // Every name pattern of the plan schemas reserves "__proto__"; say so rather than show the lookahead.
      return String(p.pattern).startsWith('^(?!__proto__$)')
        ? `must match ${String(p.pattern).replace('(?!__proto__$)', '')} and not be "__proto__" (reserved)`
        : (e.message ?? e.keyword);
    default:
      return e.message ?? e.keyword;
  }
}
