import { readTypedBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import type { Limits } from '../compute/limits';
import { tensorLeaves } from '../compute/types';
import { disposeValue, type Value } from '../compute/value';
import { AppError } from '../errors';
import type { LoadedPlan } from '../rounds/contracts';
import { pair, runSlot } from '../rounds/form-steps';
import { valueFromTensors } from './partial';
import { SecureSum } from './secure-sum';

/** A worker's partial of one round attempt as last committed, kept in memory between batches. */
export interface Held {
  acc: Value;
  sums: [SecureSum, SecureSum, SecureSum];
  clients: number;
  usedAt: number;
}

/** What folding a batch into a copy of the held partial produced. */
export interface Folded {
  readonly acc: Value;
  readonly sums: [SecureSum, SecureSum, SecureSum];
  readonly clients: number;
  /** Uploads that failed validation (type, finiteness, secure-sum range) or whose accumulate failed. */
  readonly rejected: string[];
  /** Tasks whose upload is gone although no partial covers it (evicted or lost): covered without effect. */
  readonly gone: string[];
}

/**
 * Folds the uploads of `tasks` into a copy of `held` (held itself is not changed), running the plan's
 * `accumulate` for `round`. Nothing is committed here: the caller commits the result or disposes its `acc`
 * when it is not `held.acc`, so that a refused commit can be redone from the partial as committed.
 */
export function foldUploads(
  loaded: LoadedPlan,
  round: number,
  held: Held,
  tasks: readonly string[],
  uploads: ReadonlyMap<string, Uint8Array | undefined>,
  limits: Limits,
): Folded {
  const { plan, types } = loaded.checked;
  const interpreter = new Interpreter(plan.functions ?? {}, limits);
  const counts = [types.U, ...types.V].map((t) => tensorLeaves(t).length);
  const sums = held.sums.map((s) =>
    SecureSum.restore(s.kind, s.parameters, s.partialSums(), s.clients),
  ) as Folded['sums'];
  const rejected: string[] = [];
  const gone: string[] = [];
  let acc = held.acc;
  let clients = held.clients;
  try {
    for (const task of tasks) {
      const bytes = uploads.get(task);
      if (!bytes) {
        gone.push(task);
        continue;
      }
      try {
        // The API validated the upload already; this guards against a bundle that changed on the way.
        const { tensors } = readTypedBundle(bytes, loaded.uploadType);
        let at = counts[0]!;
        const values = [1, 2, 3].map((k) => {
          const part = tensors.slice(at, at + counts[k]!).map((t) => t.data);
          at += counts[k]!;
          return part;
        });
        values.forEach((v, k) => sums[k]!.check(v));
        const U = valueFromTensors(types.U, tensors.slice(0, counts[0]!));
        let next: Value;
        try {
          next = runSlot(interpreter, plan, 'accumulate', round, pair(acc, U));
        } finally {
          disposeValue(U);
        }
        values.forEach((v, k) => sums[k]!.add(v));
        if (acc !== held.acc) disposeValue(acc);
        acc = next;
        clients += 1;
      } catch (e) {
        if (!(e instanceof AppError)) throw e;
        rejected.push(task);
      }
    }
  } catch (e) {
    if (acc !== held.acc) disposeValue(acc);
    throw e;
  }
  return { acc, sums, clients, rejected, gone };
}
