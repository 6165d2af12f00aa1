/**
 * Test support: graphs built inside the tests (a ring and a complete graph; the real Harary graph lives in
 * graph.ts), a seeded random source, and one in-process SecAgg+ round played by SecAggClientRound objects
 * and the server functions, with the messages passing as JSON as they would over HTTP.
 */
import { chacha20 } from '@noble/ciphers/chacha';
import { sha256 } from '@noble/hashes/sha2';
import { SecureSum } from '../aggregation/secure-sum';
import { newSession, type RandomBytes } from './crypto';
import {
  MASKED_KINDS,
  addMod,
  flatByKind,
  fromLanes,
  maskingModuli,
  splitByKind,
  type PerKind,
} from './masks';
import {
  toBase64Url,
  type Neighbourhood,
  type R0Advertise,
  type R1Neighbours,
  type R3Survivors,
} from './protocol';
import { SecAggClientRound, type MaskOutcome } from './protocol-client';
import {
  checkAdvertise,
  checkShares,
  checkUnmask,
  survivorsMessage,
  unmaskSums,
  unmaskingPlan,
  type PublicKeys,
  type UnmaskingPlan,
} from './protocol-server';

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
export interface RoundOptions {
  readonly n: number;
  readonly neighbourhood: Neighbourhood;
  readonly degree: number;
  readonly threshold: number;
  readonly params: PerKind<number>;
  readonly nMax: number;
  /** Client i's secure-sum values. */
  readonly input: (i: number) => PerKind<number[]>;
  /** Clients that send their shares in R1, then vanish (U2 \ U3). */
  readonly dropAfterR1?: ReadonlySet<number>;
  /** Clients that upload their masked input in R2, then do not answer R3 (U3 \ U4). */
  readonly dropAfterR2?: ReadonlySet<number>;
  readonly random?: (i: number) => RandomBytes;
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

const json = <T>(message: T): T => JSON.parse(JSON.stringify(message)) as T;

/** The state after R1: the clients, their advertised keys, and the envelopes routed to each client. */
export interface SharedRound {
  readonly session: Uint8Array;
  readonly clients: readonly SecAggClientRound[];
  readonly adverts: readonly R0Advertise[];
  readonly keys: readonly PublicKeys[];
  /** R1 messages as each client received them. */
  readonly r1: readonly R1Neighbours[];
  /** The envelopes addressed to each client, as the R2 inbox carries them. */
  readonly mailboxes: readonly { from: number; ct: string }[][];
}

/** Plays R0 and R1 for every client. */
export async function shareRound(
  o: Pick<RoundOptions, 'n' | 'neighbourhood' | 'degree' | 'threshold' | 'random'>,
): Promise<SharedRound> {
  const session = newSession();
  const ids = Array.from({ length: o.n }, (_, i) => i);
  const clients = ids.map((i) => new SecAggClientRound(o.random?.(i)));
  const adverts = clients.map((c) => json(c.advertise()));
  const keys = adverts.map(checkAdvertise);
  const mailboxes = ids.map((): { from: number; ct: string }[] => []);
  const r1 = ids.map((i) => ({
    session: toBase64Url(session),
    index: i,
    n: o.n,
    degree: o.degree,
    threshold: o.threshold,
    neighbours: o.neighbourhood(i).map((j) => ({ index: j, ...adverts[j]!.keys })),
  }));
  for (const i of ids) {
    const shares = json(await clients[i]!.shareKeys(json(r1[i]!)));
    checkShares(i, shares, o.neighbourhood);
    for (const { to, ct } of shares.shares) mailboxes[to]!.push({ from: i, ct });
  }
  return { session, clients, adverts, keys, r1, mailboxes };
}

/** Plays one round, R0 to unmasking; throws what the protocol throws (SECAGG_BELOW_THRESHOLD, refusals). */
export async function simulateRound(o: RoundOptions): Promise<RoundResult> {
  const { session, clients, keys, mailboxes } = await shareRound(o);
  const ids = clients.map((_, i) => i);

  const moduli = maskingModuli(o.params, o.nMax);
  const flatModuli = flatByKind(moduli);
  const uploads = new Map<number, PerKind<Int32Array>>();
  for (const i of ids.filter((i) => !o.dropAfterR1?.has(i))) {
    const outcome: MaskOutcome = clients[i]!.maskInput(
      json({ shares: mailboxes[i]! }),
      o.input(i),
      o.params,
      o.nMax,
    );
    if (outcome.status === 'masked') uploads.set(i, outcome.lanes);
  }
  const u3 = [...uploads.keys()];
  // What the aggregation workers do: add the masked uploads modulo each tensor's modulus.
  const maskedSums = splitByKind(
    flatModuli.map((m, t) => {
      const sum = new Float64Array(flatByKind(uploads.get(u3[0]!)!)[t]!.length / 2);
      for (const upload of uploads.values()) addMod(sum, fromLanes(flatByKind(upload)[t]!, m), m);
      return sum;
    }),
    moduli,
  );

  const plan = unmaskingPlan({ threshold: o.threshold, neighbourhood: o.neighbourhood, u2: ids, u3 });
  const shares = new Map<number, Uint8Array[]>();
  for (const i of u3.filter((i) => !o.dropAfterR2?.has(i))) {
    const honest = survivorsMessage(plan, i);
    const answer = json(clients[i]!.unmask(json(o.r3Request?.(i, honest) ?? honest)));
    for (const { of, share } of checkUnmask(plan, i, answer))
      shares.set(of, [...(shares.get(of) ?? []), share]);
  }
  const sums = await unmaskSums({
    plan,
    session,
    maskKeys: keys.map((k) => k.s),
    shares,
    moduli,
    maskedSums,
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
