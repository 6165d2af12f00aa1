import sumPlan from '../../test/fixtures/sum-plan.json';
import { bundleLeaves, writeBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import { loadConfig } from '../config';
import { AppError } from '../errors';
import { LocalEvaluator } from '../isolate/local-evaluator';
import { checkPlan } from '../plan/validate';
import { finalizeRound } from '../rounds/finalize-step';
import { foldUploads } from './fold';

// Fault classes inside the fold and finalize tasks (docs/server.md, "Fault classes"): an error an upload's
// values cause rejects that upload; an error of a broken backend says nothing of the upload and is thrown,
// so that the isolate faults and the batch is retried instead of a valid upload being rejected.
const { limits } = loadConfig({});
const checked = checkPlan(sumPlan, limits);
const ref = { id: 'sum', document: sumPlan, checked };

function upload(x: number): Uint8Array {
  const [leaf] = bundleLeaves(checked.signatures.work!.result);
  return writeBundle([{ name: leaf!.name, dtype: 'float32', shape: [], data: Float32Array.of(x) }]);
}

/** Makes the interpreter fail `label` the way it reports a kernel that threw `cause`. */
function failing(label: string, cause: Error): void {
  const run = Interpreter.prototype.run;
  jest.spyOn(Interpreter.prototype, 'run').mockImplementation(function (
    this: Interpreter,
    comp,
    arg,
    options,
  ) {
    if (options.label !== label) return run.call(this, comp, arg, options);
    throw new AppError('EVAL_ERROR', `${label}: node "s" (add): ${cause.message}`, [], { cause });
  });
}

afterEach(() => jest.restoreAllMocks());

async function secureParams() {
  const e = new LocalEvaluator(limits);
  return (await e.materials(ref, await e.initialize(ref), 1)).secureParams;
}

test('an accumulate error caused by the upload rejects that upload only', async () => {
  const task = { round: 1, secureParams: await secureParams(), partial: undefined };
  failing('accumulate', new Error('shapes [3] and [] are incompatible'));
  const folded = foldUploads(checked, { ...task, uploads: [{ task: 'a', bytes: upload(1.5) }] }, limits);
  expect(folded).toMatchObject({ clients: 0, rejected: ['a'], gone: [] });
});

test('a backend fault inside accumulate is thrown, not blamed on the upload', async () => {
  const task = { round: 1, secureParams: await secureParams(), partial: undefined };
  failing('accumulate', new WebAssembly.RuntimeError('unreachable'));
  expect(() =>
    foldUploads(checked, { ...task, uploads: [{ task: 'a', bytes: upload(1.5) }] }, limits),
  ).toThrow(/accumulate: node "s" \(add\): unreachable/);
  jest.restoreAllMocks();
  failing('accumulate', new Error('Aborted(). Build with -sASSERTIONS for more info.'));
  expect(() =>
    foldUploads(checked, { ...task, uploads: [{ task: 'a', bytes: upload(1.5) }] }, limits),
  ).toThrow(AppError);
});

test('a backend fault inside finalize is thrown (retried), a plan error fails the round', async () => {
  const params = await secureParams();
  const e = new LocalEvaluator(limits);
  const state = await e.initialize(ref);
  const { partial } = foldUploads(
    checked,
    { round: 1, secureParams: params, partial: undefined, uploads: [{ task: 'a', bytes: upload(2) }] },
    limits,
  );
  const task = { round: 1, secureParams: params, partials: [partial], state, minAggregate: 1 };
  failing('report', new WebAssembly.RuntimeError('memory access out of bounds'));
  await expect(finalizeRound(checked, task, limits)).rejects.toThrow(/memory access out of bounds/);
  jest.restoreAllMocks();
  failing('report', new Error('a plan bug'));
  expect(await finalizeRound(checked, task, limits)).toEqual({
    ok: false,
    error: 'finalize: report: node "s" (add): a plan bug',
  });
  jest.restoreAllMocks();
  expect(await finalizeRound(checked, task, limits)).toMatchObject({ ok: true, clients: 1 });
});
