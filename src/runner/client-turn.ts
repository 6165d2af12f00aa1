/**
 * One client's turn in a locally run round: `work` on its data, its secure-sum values handed to the round's
 * secure aggregation (summed in the clear or masked), its U checked as the server's upload route checks it
 * and folded into a partial accumulator.
 */
import { boundedU } from '../aggregation/update-bounds';
import { accumulated } from '../dp/mechanism';
import { dpOf } from '../plan/dp-check';
import { decodeBundle, encodeBundle, readTypedBundle, writeBundle } from '../codec';
import type { Interpreter } from '../compute/interpreter';
import { disposeValue, isStruct, tensorsOf, type Value } from '../compute/value';
import { toBatches, type ClientExamples } from '../data';
import { AppError } from '../errors';
import type { CheckedPlan } from '../plan/validate';
import { pair, runSlot, type SecureParams } from '../rounds/form-steps';

/** A round between prepare and update: what the clients' turns fill in. */
export interface OpenRound {
  readonly round: number;
  readonly S: Value;
  readonly C: Value;
  readonly chosen: readonly string[];
  /** The partial accumulators; emptied when merged. */
  readonly accs: Value[];
  readonly params: SecureParams;
  readonly included: string[];
  readonly rejected: { client: string; reason: string }[];
  /** Values of the round to dispose. */
  readonly owned: Value[];
  /** A dp plan's clip for the round. */
  readonly dpClip?: number;
}

/** A client's secure-sum values, one array per tensor of V1, V2, V3. */
export type SecureValues = readonly (readonly ArrayLike<number>[])[];

/**
 * The client (`index` its place in the round's sampling) runs work; `submit` checks (or masks) its
 * secure-sum values and returns how to add them, or throws AppError to refuse the client. TFF fails a client
 * whose secure-sum value is out of range; it then counts in no aggregate. A non-finite U or a broken
 * `reject` update bound refuses the client the same way, as the server's upload route does.
 */
export function clientTurn(
  { interpreter, checked }: { readonly interpreter: Interpreter; readonly checked: CheckedPlan },
  r: OpenRound,
  { id, index, examples }: { readonly id: string; readonly index: number; readonly examples: ClientExamples },
  submit: (values: SecureValues) => () => void,
): void {
  const { plan } = checked;
  const data = toBatches(examples, plan.client_data.element, plan.client_data.batch_size);
  try {
    const out = interpreter.run(plan.computations.work, pair(data, r.C), {
      round: r.round,
      label: `work (client ${id})`,
    });
    try {
      if (!isStruct(out)) throw new Error('work did not return a struct');
      const [sent, ...V] = out.fields.map((f) => f.value) as [Value, Value, Value, Value];
      const values = V.map((v) => tensorsOf(v).map((t) => t.dataSync()));
      let U: Value;
      let add: () => void;
      try {
        add = submit(values);
        U = boundedUpdate(checked, sent, r.dpClip);
      } catch (e) {
        if (!(e instanceof AppError)) throw e;
        r.rejected.push({ client: id, reason: e.message });
        return;
      }
      add();
      r.included.push(id);
      const p = index % r.accs.length;
      let next: Value;
      try {
        next = runSlot(interpreter, plan, 'accumulate', r.round, pair(r.accs[p]!, U));
        // A dp plan's record sums are the server's, not its accumulate's (src/dp/mechanism.ts).
        const dp = dpOf(checked);
        if (dp) {
          const own = accumulated(dp, next, r.accs[p]!, U);
          disposeValue(next);
          next = own;
        }
      } finally {
        if (U !== sent) disposeValue(U);
      }
      disposeValue(r.accs[p]!);
      r.accs[p] = next;
    } finally {
      disposeValue(out);
    }
  } finally {
    disposeValue(data);
  }
}

/**
 * U after the plan's update bounds, computed by the same function on the same typed arrays as the server's
 * upload route (through a bundle of U), so local results match the server's: a non-finite U or one that
 * breaks a `reject` bound throws AppError. U itself when nothing changed, else a fresh value the caller
 * disposes.
 */
function boundedUpdate(checked: CheckedPlan, U: Value, dpClip: number | undefined): Value {
  const type = checked.types.U;
  // The server refuses a non-finite update (BUNDLE_NOT_FINITE) before its bounds; so does this.
  const { tensors } = readTypedBundle(encodeBundle(U, type), type, { requireFinite: true });
  const { data, changed } = boundedU(
    checked,
    tensors.map((t) => t.data),
    dpClip,
  );
  if (!changed) return U;
  return decodeBundle(writeBundle(tensors.map((t, k) => ({ ...t, data: data[k]! }))), type);
}
