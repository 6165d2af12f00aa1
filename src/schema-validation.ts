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
 * The one ajv instance of the process, holding every schema in schemas/. Schemas are the single source of
 * truth for plans and requests; compiled validators are cached by ajv.
 */
export const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addSchema(typeSchema);
ajv.addSchema(computationSchema);
ajv.addSchema(planSchema);
ajv.addSchema(programSchema);
ajv.addSchema(jobsSchema);
ajv.addSchema(clientPlanSchema);
ajv.addSchema(conformanceManifestSchema);

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
