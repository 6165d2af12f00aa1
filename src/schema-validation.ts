import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import computationSchema from '../schemas/computation.schema.json';
import jobsSchema from '../schemas/jobs.schema.json';
import planSchema from '../schemas/plan.schema.json';
import typeSchema from '../schemas/type.schema.json';
import type { ErrorDetail } from './errors';

/**
 * The one ajv instance of the process, holding every schema in schemas/. Schemas are the single source of
 * truth for plans and requests; compiled validators are cached by ajv.
 */
export const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addSchema(typeSchema);
ajv.addSchema(computationSchema);
ajv.addSchema(planSchema);
ajv.addSchema(jobsSchema);

/** The compiled validator of a schema from schemas/, by its `$id`'s file name (e.g. `plan.schema.json`). */
export function validatorFor(file: string): ValidateFunction {
  const v = ajv.getSchema(`https://roundhouse.dev/schemas/${file}`);
  if (!v) throw new Error(`no schema ${file}`);
  return v;
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
    if (e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const detail = { path: base + e.instancePath || '/', message: describe(e) };
    const key = `${detail.path} ${detail.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      details.push(detail);
    }
  }
  return details;
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
    default:
      return e.message ?? e.keyword;
  }
}
