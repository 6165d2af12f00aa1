/**
 * One SecAgg+ round played in one process: SecAggClientRound objects and the server's pure functions, with
 * every message passing through JSON as it would over HTTP (SECAGG.md, "Messages"). The local runner
 * (`run-local`) simulates a plan's rounds with it, and the protocol's tests drive it; the cohort is 0..n-1
 * and every member shares its keys (U1 = U2): dropouts come later, by who uploads and who answers R3.
 */
import { newSession, type RandomBytes } from './crypto';
import { addMod, flatByKind, fromLanes, splitByKind, type PerKind } from './masks';
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

/** The cohort and its secret-sharing graph. */
export interface CohortGraph {
  readonly n: number;
  readonly neighbourhood: Neighbourhood;
  readonly degree: number;
  readonly threshold: number;
}

/** What R0 and R1 need besides the graph. */
export interface ShareOptions extends CohortGraph {
  /** The attempt's session (default: fresh random bytes). */
  readonly session?: Uint8Array;
  /** Client i's source of random bytes (default: the platform's CSPRNG). */
  readonly random?: (i: number) => RandomBytes;
}

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

/** A message as the other side reads it after HTTP: plain JSON, nothing shared with the sender's objects. */
const json = <T>(message: T): T => JSON.parse(JSON.stringify(message)) as T;

/** Plays R0 and R1 for every client of the cohort. */
export async function shareRound(o: ShareOptions): Promise<SharedRound> {
  const session = o.session ?? newSession();
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

/**
 * R2 for client i: its inbox (every neighbour shared), and its secure-sum values masked for `params` and the
 * attempt's selection target `nMax`. Throws what the client throws for values out of range.
 */
export function maskRound(
  shared: SharedRound,
  i: number,
  values: PerKind<ArrayLike<number>>,
  params: PerKind<number>,
  nMax: number,
): MaskOutcome {
  return shared.clients[i]!.maskInput(json({ shares: shared.mailboxes[i]! }), values, params, nMax);
}

/**
 * What the aggregation workers do with masked uploads: adds them modulo each tensor's modulus. At least one
 * upload: the sizes come from it.
 */
export function sumMasked(
  uploads: Iterable<PerKind<Int32Array>>,
  moduli: PerKind<number>,
): PerKind<Float64Array> {
  const flatModuli = flatByKind(moduli);
  let sums: Float64Array[] | undefined;
  for (const upload of uploads) {
    const lanes = flatByKind(upload);
    sums ??= lanes.map((l) => new Float64Array(l.length / 2));
    flatModuli.forEach((m, t) => addMod(sums![t]!, fromLanes(lanes[t]!, m), m));
  }
  if (!sums) throw new Error('no masked upload to sum');
  return splitByKind(sums, moduli);
}

/** R3 and the unmasking, once R2 has closed. */
export interface UnmaskOptions {
  readonly graph: Pick<CohortGraph, 'neighbourhood' | 'threshold'>;
  /** The clients whose masked upload is in the sum (U3). */
  readonly u3: readonly number[];
  /** Whether a client of U3 answers R3 (U4); default all. */
  readonly answers?: (i: number) => boolean;
  readonly moduli: PerKind<number>;
  /** The sum of the U3 uploads (`sumMasked`). */
  readonly maskedSums: PerKind<ArrayLike<number>>;
  /** Replaces the R3 request the server sends client i (a dishonest server). */
  readonly r3Request?: (i: number, honest: R3Survivors) => R3Survivors;
}

/** What the unmasking released. */
export interface Unmasked {
  readonly plan: UnmaskingPlan;
  /** The exact sums (mod the modulus for V3). */
  readonly sums: PerKind<Float64Array>;
  /** The clients that answered R3 (U4). */
  readonly u4: readonly number[];
}

/**
 * Plans the unmasking over U2 (the cohort) and U3, collects the R3 shares of the clients that answer, and
 * takes the masks off the sum. Throws what the server's functions throw: SECAGG_BELOW_THRESHOLD when too few
 * clients are left to unmask, the clients' refusals of a dishonest request.
 */
export async function unmaskRound(shared: SharedRound, o: UnmaskOptions): Promise<Unmasked> {
  const plan = unmaskingPlan({
    threshold: o.graph.threshold,
    neighbourhood: o.graph.neighbourhood,
    u2: shared.clients.map((_, i) => i),
    u3: o.u3,
  });
  const shares = new Map<number, Uint8Array[]>();
  const u4 = o.u3.filter((i) => o.answers?.(i) ?? true);
  for (const i of u4) {
    const honest = survivorsMessage(plan, i);
    const answer = json(shared.clients[i]!.unmask(json(o.r3Request?.(i, honest) ?? honest)));
    for (const { of, share } of checkUnmask(plan, i, answer))
      shares.set(of, [...(shares.get(of) ?? []), share]);
  }
  const sums = await unmaskSums({
    plan,
    session: shared.session,
    maskKeys: shared.keys.map((k) => k.s),
    shares,
    moduli: o.moduli,
    maskedSums: o.maskedSums,
  });
  return { plan, sums, u4 };
}
