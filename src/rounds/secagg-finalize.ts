/**
 * What the finalizer needs to unmask a SecAgg round's sums (docs/server.md, "Secure aggregation"): the
 * unmasking plan over U2 and U3, the cohort's mask keys and the survivors' R3 shares, read from the store
 * once the round is finalizing (no step of the exchange changes them any more).
 */
import { AppError } from '../errors';
import type { FinalizeTask } from '../isolate/contract';
import { fromBase64Url } from '../secagg/protocol';
import { unmaskingPlan } from '../secagg/protocol-server';
import { KEY_BYTES, SHARE_BYTES } from '../secagg/crypto';
import { cohortGraph } from '../secagg/setup';
import type { RoundInfo, RoundRef, RoundStore } from '../store/types';

/** The unmasking input of a round (undefined without SecAgg), or why the round must abort. */
export async function unmaskInput(
  store: Pick<RoundStore, 'secagg' | 'aggregationCounts'>,
  ref: RoundRef,
  info: RoundInfo,
): Promise<{ ok: true; input?: FinalizeTask['unmask'] } | { ok: false; error: string }> {
  const counts = info.secure_aggregation;
  if (!counts) return { ok: true };
  const setup = await store.secagg.setup(ref);
  if (!setup) throw new Error(`round ${ref.plan} ${ref.round}.${ref.attempt} lost its SecAgg setup`);
  // Every upload of U3 is masked into the sum by its sender's accepted bytes; one a worker could not fold
  // (rejected, or gone) leaves its masks without its input, and no share can tell them apart any more.
  const aggregation = await store.aggregationCounts(ref);
  if (aggregation && aggregation.dropped > 0) {
    return {
      ok: false,
      error: `secure aggregation: ${aggregation.dropped} masked upload(s) could not be folded, so the sum cannot be unmasked`,
    };
  }
  const { graph, threshold } = cohortGraph(setup, counts.advertised);
  const { shared, uploaded } = await store.secagg.survivors(ref);
  let plan;
  try {
    plan = unmaskingPlan({
      threshold,
      neighbourhood: (i) => graph.neighbourhood(i),
      u2: [...shared],
      u3: [...uploaded],
    });
  } catch (e) {
    if (e instanceof AppError) return { ok: false, error: `secure aggregation: ${e.message}` };
    throw e;
  }
  const [keys, byTarget] = await Promise.all([
    store.secagg.allPublicKeys(ref),
    store.secagg.unmaskShares(ref),
  ]);
  const shares = new Map<number, Uint8Array[]>();
  for (const [of, { shares: list }] of byTarget) {
    shares.set(
      of,
      list.map((s, k) => fromBase64Url(s, SHARE_BYTES, `unmask/${of}/${k}`)),
    );
  }
  return {
    ok: true,
    input: {
      plan,
      session: fromBase64Url(setup.session, KEY_BYTES, 'session'),
      maskKeys: keys.map((k, i) => fromBase64Url(k.s, KEY_BYTES, `keys/${i}/s`)),
      shares,
      moduli: setup.moduli,
    },
  };
}
