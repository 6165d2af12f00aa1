/**
 * Generates the client conformance kit (conformance/README.md) from the reference interpreter:
 * `npm run conformance:generate` (after the build: `node dist/src/conformance/generate.js [dir]`). Every case
 * of `CASES` becomes `<dir>/<id>/`: the client plan as the server serves it (`loadPlan`), round 1's
 * broadcast as the server opens it (`admitPlan`, with a dp plan's clip written in), the examples as CSV, and
 * for an upload case the bundle the reference client uploads. Deterministic: the same code writes the same
 * bytes (test/conformance.test.ts holds the committed kit to it).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTypedBundle, writeBundle } from '../codec';
import { initBackend } from '../compute/backend';
import { DEFAULT_LIMITS } from '../compute/limits';
import type { Plan } from '../generated/plan';
import type { TffType } from '../compute/types';
import { allocateLeaf, exampleLeaves, seededUniform, writeClientsCsv, type ClientExamples } from '../data';
import { broadcastWithClip } from '../dp/mechanism';
import { AppError, type ErrorCode } from '../errors';
import { LocalEvaluator } from '../isolate/local-evaluator';
import { PLAN_LIBRARY } from '../plans';
import { admitPlan } from '../rounds/plan-admission';
import { loadPlan } from '../rounds/plan-cache';
import { planIdFromBytes } from '../store/ids';
import { packageRoot } from '../cli/version';
import { CASES, type Breakage, type CaseSpec, type ToleranceKind } from './cases';
import { caseDir, KIT_FILES, manifestText, type KitCase, type Tolerance } from './kit';
import { referenceWork, type WorkInputs } from './reference-client';

/** The files of one generated case, by their name in the case directory. */
export interface CaseFiles {
  readonly entry: KitCase;
  readonly files: Readonly<Record<string, string | Uint8Array>>;
}

/** One float32 ulp at 1, relative: the rounding of one result. */
const FLOAT32_EPSILON = 2 ** -23;

/**
 * The tolerance of a case (conformance/README.md, "Tolerances"); `values` are the float32 values of the
 * examples, for sums.
 */
function toleranceOf(kind: ToleranceKind, values: readonly number[]): Tolerance {
  switch (kind) {
    case 'exact':
      return { abs: 0, rel: 0 };
    case 'sum': {
      // Recursive summation of n values in any order is off by at most (n-1) u sum|x| (u = 2^-24); two
      // implementations are each that far from the exact sum.
      const n = values.length;
      const bound = 2 * (n - 1) * 2 ** -24 * values.reduce((s, v) => s + Math.abs(v), 0);
      return { abs: roundUp(bound), rel: roundUp(FLOAT32_EPSILON) };
    }
    case 'training':
      return { abs: 1e-5, rel: 1e-4 };
  }
}

/** `x` rounded up to two significant digits (0 stays 0). */
function roundUp(x: number): number {
  if (x === 0) return 0;
  const step = 10 ** (Math.floor(Math.log10(x)) - 1);
  return Number((Math.ceil(x / step) * step).toPrecision(2));
}

/** A case's examples as the storage form, leaf by leaf, from its rows of CSV column values. */
function examplesOf(element: TffType, rows: readonly number[][]): ClientExamples {
  const leaves = exampleLeaves(element);
  const arrays = leaves.map((leaf) => allocateLeaf(leaf, rows.length));
  rows.forEach((row, e) => {
    let c = 0;
    leaves.forEach((leaf, i) => {
      for (let k = 0; k < leaf.exampleSize; k++) arrays[i]![e * leaf.exampleSize + k] = row[c++]!;
    });
    if (c !== row.length) throw new Error(`example ${e} has ${row.length} values, the element ${c}`);
  });
  return { count: rows.length, leaves: arrays };
}

/** The code the reference client refuses each kind of broken input with. */
const REFUSAL_CODE: Readonly<Record<Breakage['kind'], ErrorCode>> = {
  'client-plan-format': 'CLIENT_PLAN_UNSUPPORTED',
  'broadcast-nan': 'BUNDLE_NOT_FINITE',
  'csv-cell': 'DATA_INVALID',
};

/** The inputs of a refuse case: the valid ones with one thing broken. */
function broken(inputs: WorkInputs, breakage: Breakage, C: TffType): WorkInputs {
  switch (breakage.kind) {
    case 'client-plan-format': {
      const doc = JSON.parse(inputs.clientPlan) as Record<string, unknown>;
      return { ...inputs, clientPlan: JSON.stringify({ ...doc, format: breakage.format }) };
    }
    case 'broadcast-nan': {
      const { tensors, metadata } = readTypedBundle(inputs.broadcast, C);
      const k = tensors.findIndex((t) => t.dtype === 'float32');
      if (k < 0) throw new Error('broadcast-nan needs a float32 tensor in the broadcast');
      const data = Float32Array.from(tensors[k]!.data);
      data[0] = NaN;
      const out = tensors.map((t, i) => (i === k ? { ...t, data } : t));
      return { ...inputs, broadcast: writeBundle(out, Object.keys(metadata).length ? metadata : undefined) };
    }
    case 'csv-cell': {
      const lines = inputs.examplesCsv.split('\n');
      const c = lines[0]!.split(',').indexOf(breakage.column);
      const cells = lines[breakage.row + 1]?.split(',');
      if (c < 0 || cells === undefined)
        throw new Error(`no cell ${breakage.column} in example ${breakage.row}`);
      cells[c] = breakage.text;
      lines[breakage.row + 1] = cells.join(',');
      return { ...inputs, examplesCsv: lines.join('\n') };
    }
  }
}

/** Builds one case's files; throws when the reference client does not do what the case expects. */
export async function generateCase(spec: CaseSpec, evaluator: LocalEvaluator): Promise<CaseFiles> {
  const library = PLAN_LIBRARY[spec.plan];
  if (library === undefined) throw new Error(`case ${spec.id}: no library plan ${spec.plan}`);
  // The plan as POST /v1/plans receives it: JSON, so that nothing but what JSON carries reaches the checks.
  const plan = JSON.parse(JSON.stringify(library.build(spec.options))) as Plan;
  // A fixed id per case, so that the client plan (which names it) is the same on every generation.
  const id = planIdFromBytes(createHash('sha256').update(spec.id).digest());
  const { checked, dp, materials } = await admitPlan(plan, { limits: DEFAULT_LIMITS, evaluator }, id);
  const C = checked.types.C;
  // The server writes a dp plan's clip into every broadcast it serves (RoundEngine); round 1 has the first.
  const broadcast = dp ? broadcastWithClip(dp, C, materials.broadcast, dp.initialClip) : materials.broadcast;
  const element = plan.client_data.element;
  const examples = examplesOf(element, spec.rows(seededUniform(spec.id)));
  const valid: WorkInputs = {
    clientPlan: loadPlan(id, checked).clientPlan.json,
    broadcast,
    examplesCsv: writeClientsCsv(new Map([['client', examples]]), element, { withClientId: false }),
  };
  const inputs = spec.breakage ? broken(valid, spec.breakage, C) : valid;
  const files: Record<string, string | Uint8Array> = {
    [KIT_FILES.clientPlan]: inputs.clientPlan,
    [KIT_FILES.broadcast]: inputs.broadcast,
    [KIT_FILES.examples]: inputs.examplesCsv,
  };
  const base = { id: spec.id, plan: spec.plan, description: spec.description };
  if (spec.breakage) {
    try {
      referenceWork(inputs);
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      // Refused, and for the reason the case breaks: a refusal for another reason would test nothing.
      const intended = REFUSAL_CODE[spec.breakage.kind];
      if (e.code !== intended) {
        throw new Error(`case ${spec.id}: refused with ${e.code} (${e.message}), not ${intended}`);
      }
      return { entry: { ...base, expect: 'refuse' }, files };
    }
    throw new Error(`case ${spec.id}: the reference client does not refuse it`);
  }
  if (spec.tolerance === undefined) throw new Error(`case ${spec.id}: an upload case needs a tolerance`);
  files[KIT_FILES.expected] = referenceWork(inputs);
  const values = examples.leaves.flatMap((d) => (d instanceof Float32Array ? [...d] : []));
  return { entry: { ...base, expect: 'upload', tolerance: toleranceOf(spec.tolerance, values) }, files };
}

/** Every case of the kit, generated in manifest order. */
export async function generateCases(specs: readonly CaseSpec[] = CASES): Promise<CaseFiles[]> {
  const evaluator = new LocalEvaluator(DEFAULT_LIMITS);
  try {
    const out: CaseFiles[] = [];
    for (const spec of specs) out.push(await generateCase(spec, evaluator));
    return out;
  } finally {
    await evaluator.close();
  }
}

/**
 * Writes the kit into `dir`: the manifest and every case directory. Directories of cases no longer
 * generated are removed; other files at the top (the kit's README) are kept.
 */
export async function writeKit(dir: string): Promise<KitCase[]> {
  const cases = await generateCases();
  fs.mkdirSync(dir, { recursive: true });
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) fs.rmSync(path.join(dir, entry.name), { recursive: true });
  }
  for (const { entry, files } of cases) {
    const at = caseDir(dir, entry);
    fs.mkdirSync(at, { recursive: true });
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(at, name), content);
  }
  const entries = cases.map((c) => c.entry);
  fs.writeFileSync(path.join(dir, KIT_FILES.manifest), manifestText(entries));
  return entries;
}

async function main(): Promise<void> {
  // WASM, whatever else is installed, so that the committed kit does not depend on the machine.
  await initBackend('wasm');
  const dir = path.resolve(process.argv[2] ?? path.join(packageRoot(), 'conformance'));
  const cases = await writeKit(dir);
  const upload = cases.filter((c) => c.expect === 'upload').length;
  process.stdout.write(`${dir}: ${cases.length} cases (${upload} upload, ${cases.length - upload} refuse)\n`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
