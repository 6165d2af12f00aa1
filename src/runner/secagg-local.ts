/**
 * The SecAgg exchange of one locally simulated round (`run-local` of a plan whose
 * `schedule.secure_aggregation` is secagg+ or secagg): the round's sampled clients, in memory, advertise
 * keys and share them over the server's graph, mask their secure-sum values, and the survivors' shares take
 * the masks off the sum, exactly as through the server (src/secagg/in-process.ts). Dropouts are drawn from a
 * seed, and so is the graph, so that a run is reproducible: only the keys and masks are fresh randomness, and
 * they do not change what is released.
 */
import { sha256 } from '@noble/hashes/sha2';
import { utf8ToBytes } from '@noble/hashes/utils';
import seedrandom from 'seedrandom';
import { SecureSum } from '../aggregation/secure-sum';
import { AppError } from '../errors';
import type { Plan } from '../generated/plan';
import { SECURE_KINDS, type SecureParams } from '../rounds/form-steps';
import {
  maskRound,
  shareRound,
  sumMasked,
  unmaskRound,
  type CohortGraph,
  type SharedRound,
} from '../secagg/in-process';
import type { PerKind } from '../secagg/masks';
import { fromBase64Url, toBase64Url } from '../secagg/protocol';
import { KEY_BYTES } from '../secagg/crypto';
import { cohortGraph, newSecAggSetup, type SecAggSetup } from '../secagg/setup';
import type { SecureValues } from './client-turn';

/** Dropouts of a simulated SecAgg round, each a fraction of the round's cohort (rounded to a count). */
export interface SecAggDropouts {
  /** Clients that share their keys in R1, then vanish before uploading (U2 \ U3). */
  readonly afterShares?: number;
  /** Clients that upload their masked input, then do not answer the unmasking request (U3 \ U4). */
  readonly afterUpload?: number;
}

/** What a simulated round's exchange did; the counts are the server's round info `secure_aggregation`. */
export interface SecAggRoundSummary {
  readonly protocol: 'secagg+' | 'secagg';
  readonly degree: number;
  readonly threshold: number;
  readonly advertised: number;
  readonly shared: number;
  readonly unmasked: number;
  /** The clients that left after sharing their keys, in sampling order. */
  readonly droppedAfterShares: readonly string[];
  /** The clients whose upload is in the sum but who did not help unmask it, in sampling order. */
  readonly droppedAfterUpload: readonly string[];
}

/** Throws BAD_REQUEST unless the dropouts are fractions that leave room for each other. */
export function checkDropouts(d: SecAggDropouts): void {
  for (const [name, f] of [
    ['afterShares', d.afterShares],
    ['afterUpload', d.afterUpload],
  ] as const) {
    if (f !== undefined && !(f >= 0 && f <= 1)) {
      throw new AppError('BAD_REQUEST', `SecAgg dropouts: ${name} must be a fraction in [0, 1], got ${f}`);
    }
  }
  if ((d.afterShares ?? 0) + (d.afterUpload ?? 0) > 1) {
    throw new AppError(
      'BAD_REQUEST',
      `SecAgg dropouts: ${d.afterShares} after shares and ${d.afterUpload} after upload are more than the cohort`,
    );
  }
}

/** One round's exchange between the cohort (the round's sampled clients, by sampling index). */
export class LocalSecAggRound {
  /** Masked uploads accepted into the sum (U3), by cohort index. */
  private readonly uploads = new Map<number, PerKind<Int32Array>>();
  private unmasked = 0;

  private constructor(
    private readonly setup: SecAggSetup,
    private readonly cohort: readonly string[],
    private readonly graph: CohortGraph,
    private readonly shared: SharedRound,
    private readonly leaving: {
      readonly afterShares: ReadonlySet<number>;
      readonly afterUpload: ReadonlySet<number>;
    },
  ) {}

  /**
   * Plays R0 and R1 for `cohort` under the plan's setting, with the round's secure-sum parameters. `seed`
   * names the round of the run (the run's seed and the round number): it fixes the graph and the dropouts.
   */
  static async open(
    plan: Plan,
    params: SecureParams,
    cohort: readonly string[],
    seed: string,
    dropouts: SecAggDropouts,
  ): Promise<LocalSecAggRound> {
    const n = cohort.length;
    // The cohort is the largest the round can have, so it is the selection target that fixes the moduli.
    const fresh = newSecAggSetup(plan, params, n);
    if (!fresh) throw new Error('the plan does not mask its secure sums');
    const setup = {
      ...fresh,
      graph_seed: toBase64Url(sha256(utf8ToBytes(`roundhouse/run-local/graph:${seed}`))),
    };
    const { graph, threshold } = cohortGraph(setup, n);
    const g: CohortGraph = {
      n,
      neighbourhood: (i) => graph.neighbourhood(i),
      degree: graph.degree,
      threshold,
    };
    const shared = await shareRound({ ...g, session: fromBase64Url(setup.session, KEY_BYTES, 'session') });
    return new LocalSecAggRound(setup, cohort, g, shared, pickDropouts(n, dropouts, seed));
  }

  /** Whether cohort member i leaves after sharing its keys (it then runs no work: nothing of it is used). */
  leavesAfterShares(i: number): boolean {
    return this.leaving.afterShares.has(i);
  }

  /**
   * R2 for cohort member i: masks its values of V1, V2, V3 (one array per tensor); throws AppError
   * SECURE_SUM_OUT_OF_RANGE, as the client does, for values out of range. Returns the upload's acceptance,
   * for the caller to call once the rest of the upload is accepted too.
   */
  mask(i: number, values: SecureValues): () => void {
    const [bitwidth, max_input, modulus] = values;
    const outcome = maskRound(
      this.shared,
      i,
      { bitwidth: bitwidth!, max_input: max_input!, modulus: modulus! },
      this.setup.params,
      this.setup.n_max,
    );
    if (outcome.status === 'aborted') throw outcome.error;
    return () => this.uploads.set(i, outcome.lanes);
  }

  /**
   * R3 and the unmasking: the exact sums of the accepted uploads, as secure sums in the clear for the update
   * step. Throws AppError SECAGG_BELOW_THRESHOLD when too few clients are left to unmask, as the server fails
   * such a round.
   */
  async unmask(): Promise<SecureSum[]> {
    const u3 = [...this.uploads.keys()];
    const { moduli } = this.setup;
    const { sums, u4 } = await unmaskRound(this.shared, {
      graph: this.graph,
      u3,
      answers: (i) => !this.leaving.afterUpload.has(i),
      moduli,
      maskedSums: sumMasked(this.uploads.values(), moduli),
    });
    this.unmasked = u4.length;
    return SECURE_KINDS.map((kind) =>
      SecureSum.restore(kind, this.setup.params[kind], sums[kind], u3.length),
    );
  }

  /** What the exchange did, once unmasked. */
  summary(): SecAggRoundSummary {
    const ids = (pick: (i: number) => boolean) => this.cohort.filter((_, i) => pick(i));
    return {
      protocol: this.setup.protocol,
      degree: this.graph.degree,
      threshold: this.graph.threshold,
      advertised: this.cohort.length,
      shared: this.cohort.length,
      unmasked: this.unmasked,
      droppedAfterShares: ids((i) => this.leaving.afterShares.has(i)),
      droppedAfterUpload: ids((i) => this.uploads.has(i) && this.leaving.afterUpload.has(i)),
    };
  }
}

/** Disjoint sets of cohort indexes leaving after R1 and after R2, drawn by a shuffle seeded by `seed`. */
function pickDropouts(
  n: number,
  d: SecAggDropouts,
  seed: string,
): { afterShares: Set<number>; afterUpload: Set<number> } {
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = seedrandom(`roundhouse/run-local/dropouts:${seed}`);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const a = Math.round((d.afterShares ?? 0) * n);
  const b = Math.min(n - a, Math.round((d.afterUpload ?? 0) * n));
  return { afterShares: new Set(order.slice(0, a)), afterUpload: new Set(order.slice(a, a + b)) };
}
