/**
 * The layout of the client conformance kit (conformance/README.md): a manifest and one directory per case.
 * The generator writes it, the runner reads it; both name its files through this module.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppError } from '../errors';
import type { Case, ConformanceManifest, Tolerance } from '../generated/conformance-manifest';
import { schemaErrorDetails, validatorFor } from '../schema-validation';

export type { Case as KitCase, ConformanceManifest, Tolerance } from '../generated/conformance-manifest';

/** The `format` of conformance/manifest.json. */
export const KIT_FORMAT = 'roundhouse.conformance/v1';

/** The files of the kit and of each case directory. */
export const KIT_FILES = {
  manifest: 'manifest.json',
  clientPlan: 'client-plan.json',
  broadcast: 'broadcast.safetensors',
  examples: 'examples.csv',
  expected: 'expected.safetensors',
} as const;

/** The directory of a case below the kit. */
export function caseDir(kit: string, c: Pick<Case, 'id'>): string {
  return path.join(kit, ...c.id.split('/'));
}

/** The manifest's text as the generator writes it: two-space JSON and a final newline. */
export function manifestText(cases: readonly Case[]): string {
  const manifest: ConformanceManifest = { format: KIT_FORMAT, cases: [...cases] };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/**
 * Reads and checks a kit's manifest (schema, ids unique); throws an Error naming the file, or an AppError
 * REQUEST_INVALID listing what is wrong with it.
 */
export function readManifest(kit: string): ConformanceManifest {
  const file = path.join(kit, KIT_FILES.manifest);
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new Error(`cannot read the conformance kit's manifest ${file}: ${why}`);
  }
  const validate = validatorFor('conformance-manifest.schema.json');
  if (!validate(doc)) {
    throw new AppError(
      'REQUEST_INVALID',
      `invalid conformance manifest ${file}`,
      schemaErrorDetails(validate.errors),
    );
  }
  const manifest = doc as ConformanceManifest;
  const seen = new Set<string>();
  for (const [i, c] of manifest.cases.entries()) {
    if (seen.has(c.id))
      throw new AppError('REQUEST_INVALID', `invalid conformance manifest ${file}`, [
        { path: `/cases/${i}/id`, message: `"${c.id}" appears twice` },
      ]);
    seen.add(c.id);
  }
  return manifest;
}

/** Whether a float32 element is within a case's tolerance of the expected one. */
export function withinTolerance(got: number, expected: number, t: Tolerance): boolean {
  return Math.abs(got - expected) <= t.abs + t.rel * Math.abs(expected);
}
