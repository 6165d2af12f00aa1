import { readTypedBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import type { Limits } from '../compute/limits';
import { disposeValue, type Value } from '../compute/value';
import { AppError } from '../errors';
import { brokenBackend } from '../isolate/backend-fault';
import type { FoldResult, FoldTask } from '../isolate/contract';
import type { CheckedPlan } from '../plan/validate';
import { newSecureSums, pair, runSlot, SECURE_KINDS, uploadParts } from '../rounds/form-steps';
import { fromLanes } from '../secagg/masks';
import { maskedUploadType } from '../secagg/upload-type';
import { accumulated, zeroed } from '../dp/mechanism';
import { dpOf } from '../plan/dp-check';
import { decodePartial, encodePartial, valueFromTensors } from './partial';
import type { SecureSum } from './secure-sum';

/**
 * Errors of `accumulate` that fail the round instead of rejecting the one upload: an int32 accumulator
 * that overflowed is the plan's problem (its sum can no longer be exact), not the client's.
 */
const ROUND_FAILING: ReadonlySet<string> = new Set(['EVAL_INT_OVERFLOW']);

/**
 * Folds a batch of uploads into a partial (docs/server.md, "Aggregation, exactly once"): decodes the
 * partial (or starts from `zero`), runs `accumulate` for each upload whose bundle and secure-sum values
 * are valid, and encodes the result. An upload whose content fails is rejected and changes nothing (a client
 * fault); an `EVAL_INT_OVERFLOW` is thrown (a plan fault: the round fails), and so is an error of a broken
 * backend, which says nothing of the upload (an infrastructure fault: the isolate is replaced and the batch
 * retried, so that a valid upload is never rejected for it). Runs inside an isolate on the server.
 */
export function foldUploads(checked: CheckedPlan, task: FoldTask, limits: Limits): FoldResult {
  const { plan, types } = checked;
  const plainType = checked.signatures.work!.result;
  const uploadType = task.masking ? maskedUploadType(plainType) : plainType;
  const moduli = task.masking ? SECURE_KINDS.map((kind) => task.masking![kind]) : undefined;
  const interpreter = new Interpreter(plan.functions ?? {}, limits);
  // A dp plan's record sums are the server's, not its accumulate's (src/dp/mechanism.ts).
  const dp = dpOf(checked);
  let acc: Value;
  let sums: [SecureSum, SecureSum, SecureSum];
  let clients: number;
  if (task.partial) {
    ({ acc, sums, clients } = decodePartial(task.partial, types, task.secureParams, task.masking));
  } else {
    acc = runSlot(interpreter, plan, 'zero', task.round);
    if (dp) acc = replaced(acc, zeroed(dp, acc));
    sums = newSecureSums(checked, task.secureParams, task.masking);
    clients = 0;
  }
  const rejected: string[] = [];
  const gone: string[] = [];
  try {
    for (const { task: id, bytes } of task.uploads) {
      if (!bytes) {
        gone.push(id);
        continue;
      }
      try {
        // The API validated the upload already; this guards against a bundle that changed on the way.
        const parts = uploadParts(uploadType, readTypedBundle(bytes, uploadType).tensors);
        const values = parts.V.map((part, k) =>
          part.map((t, leaf) =>
            // Masked residues travel as lanes; fromLanes refuses any that is not below its modulus.
            moduli ? fromLanes(t.data, moduli[k]![leaf]!, `V${k + 1}/${leaf}`) : t.data,
          ),
        );
        values.forEach((v, k) => sums[k]!.check(v));
        const U = valueFromTensors(types.U, parts.U);
        let next: Value;
        try {
          next = runSlot(interpreter, plan, 'accumulate', task.round, pair(acc, U));
          if (dp) next = replaced(next, accumulated(dp, next, acc, U));
        } finally {
          disposeValue(U);
        }
        values.forEach((v, k) => sums[k]!.add(v));
        disposeValue(acc);
        acc = next;
        clients += 1;
      } catch (e) {
        if (!(e instanceof AppError) || ROUND_FAILING.has(e.code) || brokenBackend(e)) throw e;
        rejected.push(id);
      }
    }
    return { partial: encodePartial(types, acc, sums, clients), clients, rejected, gone };
  } finally {
    disposeValue(acc);
  }
}

/** `by`, after disposing `old` (which `by` was computed from). */
function replaced(old: Value, by: Value): Value {
  disposeValue(old);
  return by;
}
