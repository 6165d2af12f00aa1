import { decodePartial } from '../aggregation/partial';
import { bundleLeaves, decodeBundle, encodeBundle, firstNonFinite, readBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import type { Limits } from '../compute/limits';
import type { TffType } from '../compute/types';
import { disposeValue, type Value } from '../compute/value';
import { AppError } from '../errors';
import { brokenBackend } from '../isolate/backend-fault';
import type { FinalizeResult, FinalizeTask } from '../isolate/contract';
import type { CheckedPlan } from '../plan/validate';
import { SecureSum } from '../aggregation/secure-sum';
import { noisyAggregate, noisySecureSum, serverSums, type DpRoundResult } from '../dp/mechanism';
import { dpOf } from '../plan/dp-check';
import { unmaskSums } from '../secagg/protocol-server';
import { mergeAll, newSecureSums, runSlot, SECURE_KINDS, updateStep } from './form-steps';

/**
 * Finalizes a closed round attempt from its committed partials, exactly as the local runner computes a
 * round: merge, the min-clients check, report, the secure sums, update. A next state holding NaN or ±Inf
 * is refused (the round fails, the old state stays), so that a poisoned aggregate cannot make the plan
 * unable to complete another round. Plan errors fail the round; anything else is thrown, a plan error caused
 * by a broken backend too (the isolate faults and finalize is retried). Runs inside an isolate on the server.
 */
export async function finalizeRound(
  checked: CheckedPlan,
  task: FinalizeTask,
  limits: Limits,
): Promise<FinalizeResult> {
  const { types, plan } = checked;
  const interpreter = new Interpreter(plan.functions ?? {}, limits);
  const owned: Value[] = [];
  try {
    const masking = task.unmask?.moduli;
    const decoded = task.partials.map((bytes) => decodePartial(bytes, types, task.secureParams, masking));
    const dp = dpOf(checked);
    // Read before merge consumes the partials: the server's own sums of the clipped records.
    const dpSums = dp
      ? serverSums(
          dp,
          decoded.map((p) => p.acc),
        )
      : [];
    let merged = mergeAll(
      interpreter,
      plan,
      decoded.map((p) => p.acc),
      task.round,
    );
    owned.push(merged);
    const clients = decoded.reduce((n, p) => n + p.clients, 0);
    if (clients < task.minAggregate) {
      return {
        ok: false,
        error: `${clients} clients in the aggregate, fewer than min_clients_in_aggregate (${task.minAggregate})`,
      };
    }
    let dpResult: DpRoundResult | undefined;
    if (dp) {
      if (task.dpClip === undefined) throw new Error('a round of a dp plan was finalized without its clip');
      const noisy = noisyAggregate(dp, merged, dpSums, clients, task.dpClip);
      owned.push(noisy.acc);
      merged = noisy.acc;
      dpResult = noisy.result;
    }
    let sums = newSecureSums(checked, task.secureParams, masking);
    for (const p of decoded) p.sums.forEach((sum, k) => sums[k]!.merge(sum));
    if (task.unmask) {
      // SecAgg: the finalizer is the one place a sum is unmasked; every mask of U3 comes off, whatever
      // worker's partial its upload is in (src/secagg/protocol-server.ts).
      const masked = sums;
      const exact = await unmaskSums({
        ...task.unmask,
        maskedSums: {
          bitwidth: masked[0].partialSums(),
          max_input: masked[1].partialSums(),
          modulus: masked[2].partialSums(),
        },
      });
      sums = SECURE_KINDS.map((kind) =>
        SecureSum.restore(kind, task.secureParams[kind], exact[kind], clients),
      ) as typeof sums;
    }
    // A secure record's noise goes on its unmasked sum (src/dp/mechanism.ts).
    if (dp?.secure) {
      const k = dp.secure.index;
      sums[k] = noisySecureSum(dp, sums[k]!, clients, task.dpClip!);
    }
    const S = decodeBundle(task.state, types.S, { requireFinite: false });
    owned.push(S);
    const R = runSlot(interpreter, plan, 'report', task.round, merged);
    owned.push(R);
    const next = updateStep(interpreter, checked, S, R, sums, task.round);
    owned.push(next.state);
    const state = encodeBundle(next.state, types.S);
    const bad = nonFinitePath(state, types.S);
    if (bad !== undefined) {
      return {
        ok: false,
        error: `update gave a server state with a non-finite value at ${bad}; the state is kept`,
      };
    }
    return { ok: true, state, output: next.output, clients, ...(dpResult ? { dp: dpResult } : {}) };
  } catch (e) {
    // A plan computation failing on this round's data cannot succeed by retrying: the attempt fails. A
    // broken backend says nothing of the plan: finalize faults, and is retried.
    if (!(e instanceof AppError) || brokenBackend(e)) throw e;
    // The first line; a message with details ends it with a colon.
    return { ok: false, error: `finalize: ${e.message.split('\n')[0]!.replace(/:$/, '')}` };
  } finally {
    for (const v of owned) disposeValue(v);
  }
}

/**
 * The path (`S/<field>...[index]`) of the first NaN or ±Inf in an encoded state of type `type` (the bytes
 * `encodeBundle` gave, so the tensors are read once), or undefined when every float is finite. Integer and
 * bool tensors are finite by construction.
 */
export function nonFinitePath(bytes: Uint8Array, type: TffType): string | undefined {
  const byName = new Map(readBundle(bytes).tensors.map((t) => [t.name, t]));
  for (const { name, leaf } of bundleLeaves(type)) {
    const t = byName.get(name);
    if (t?.dtype !== 'float32') continue;
    const at = firstNonFinite(t.data as Float32Array);
    if (at >= 0) {
      const path = leaf.path.join('/');
      return `S${path ? `/${path}` : ''}[${at}]`;
    }
  }
  return undefined;
}
