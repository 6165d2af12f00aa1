/**
 * Test support: graphs built inside the tests (a ring and a complete graph; the real Harary graph lives in
 * graph.ts), a seeded random source, and one in-process SecAgg+ round (in-process.ts) with the clients'
 * inputs and dropouts given, checked against the same sums computed in the clear.
 */
import { chacha20 } from '@noble/ciphers/chacha';
import { sha256 } from '@noble/hashes/sha2';
import { SecureSum } from '../aggregation/secure-sum';
import type { RandomBytes } from './crypto';
import { maskRound, shareRound, sumMasked, unmaskRound, type ShareOptions } from './in-process';
import { MASKED_KINDS, maskingModuli, type PerKind } from './masks';
import type { Neighbourhood, R3Survivors } from './protocol';
import type { UnmaskingPlan } from './protocol-server';

export { shareRound, type SharedRound } from './in-process';

/** A ring of n nodes where each node's neighbourhood is itself and (degree - 1) / 2 nodes on each side. */
export function ring(n: number, degree: number): Neighbourhood {
  const half = (degree - 1) / 2;
  return (i) =>
    [...new Set(Array.from({ length: degree }, (_, d) => (((i + d - half) % n) + n) % n))].sort(
      (a, b) => a - b,
    );
}

/** Every node is everyone's neighbour (plain SecAgg). */
export function complete(n: number): Neighbourhood {
  const all = Array.from({ length: n }, (_, i) => i);
  return () => all;
}

/** A reproducible stream of random bytes (ChaCha20 keyed by the label's SHA-256), for statistics. */
export function seededRandom(label: string): RandomBytes {
  const key = sha256(new TextEncoder().encode(label));
  let counter = 0;
  return (length) => {
    const blocks = Math.ceil(length / 64);
    const out = chacha20(key, new Uint8Array(12), new Uint8Array(blocks * 64), undefined, counter);
    counter += blocks;
    return out.slice(0, length);
  };
}

/** One simulated round. */
export interface RoundOptions extends ShareOptions {
  readonly params: PerKind<number>;
  readonly nMax: number;
  /** Client i's secure-sum values. */
  readonly input: (i: number) => PerKind<number[]>;
  /** Clients that send their shares in R1, then vanish (U2 \ U3). */
  readonly dropAfterR1?: ReadonlySet<number>;
  /** Clients that upload their masked input in R2, then do not answer R3 (U3 \ U4). */
  readonly dropAfterR2?: ReadonlySet<number>;
  /** Replaces the R3 request the server sends client i (a dishonest server). */
  readonly r3Request?: (i: number, honest: R3Survivors) => R3Survivors;
}

/** What a simulated round produced. */
export interface RoundResult {
  readonly u3: readonly number[];
  readonly plan: UnmaskingPlan;
  /** Each U3 client's masked upload. */
  readonly uploads: ReadonlyMap<number, PerKind<Int32Array>>;
  /** The unmasked sums the server released. */
  readonly sums: PerKind<Float64Array>;
  /** The U3 clients' sums computed in the clear with SecureSum, TFF's semantics. */
  readonly expected: PerKind<Int32Array>;
}

/** Plays one round, R0 to unmasking; throws what the protocol throws (SECAGG_BELOW_THRESHOLD, refusals). */
export async function simulateRound(o: RoundOptions): Promise<RoundResult> {
  const shared = await shareRound(o);
  const uploads = new Map<number, PerKind<Int32Array>>();
  for (const i of shared.clients.keys()) {
    if (o.dropAfterR1?.has(i)) continue;
    const outcome = maskRound(shared, i, o.input(i), o.params, o.nMax);
    if (outcome.status === 'masked') uploads.set(i, outcome.lanes);
  }
  const u3 = [...uploads.keys()];
  const moduli = maskingModuli(o.params, o.nMax);
  const { plan, sums } = await unmaskRound(shared, {
    graph: o,
    u3,
    answers: (i) => !o.dropAfterR2?.has(i),
    moduli,
    maskedSums: sumMasked(uploads.values(), moduli),
    ...(o.r3Request ? { r3Request: o.r3Request } : {}),
  });

  const expected = MASKED_KINDS.map((kind) => {
    const sum = new SecureSum(
      kind,
      o.params[kind],
      o.input(0)[kind].map((v) => v.length),
    );
    for (const i of u3) sum.add(o.input(i)[kind]);
    return sum.result();
  });
  return {
    u3,
    plan,
    uploads,
    sums,
    expected: { bitwidth: expected[0]!, max_input: expected[1]!, modulus: expected[2]! },
  };
}
