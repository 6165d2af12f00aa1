/**
 * The server side of SecAgg+ as pure functions over what a Redis-backed server holds (SECAGG.md, "Messages"
 * and "Server unmasking"): the checks of what clients send, the unmasking plan (whose shares R3 needs, from
 * whom), and the unmasking of the summed masked vectors. No I/O: the caller reads and writes the state.
 */
import { x25519 } from '@noble/curves/ed25519';
import { equalBytes } from '@noble/ciphers/utils';
import { AppError } from '../errors';
import {
  KEY_BYTES,
  SEALED_SHARE_BYTES,
  SHARE_BYTES,
  combineShares,
  pairwiseSeed,
  publicKeyOf,
} from './crypto';
import { addMod, expandMasks, flatByKind, splitByKind, subMod, type PerKind } from './masks';
import {
  badMessage,
  checkArray,
  checkIndex,
  fromBase64Url,
  maskSign,
  type Neighbourhood,
  type R0Advertise,
  type R1Shares,
  type R3Survivors,
  type R3Unmask,
  type ShareKind,
} from './protocol';

/** The decoded public keys of one client. */
export interface PublicKeys {
  readonly c: Uint8Array;
  readonly s: Uint8Array;
}

// Any scalar works: X25519 clamps it to a multiple of 8, which sends every low-order point to zero.
const PROBE = new Uint8Array(KEY_BYTES).fill(1);

/**
 * Checks an R0 advertisement and decodes its keys. Refuses (SECAGG_BAD_MESSAGE) a key of low order, whose
 * shared secret with anyone is zero: it would make every neighbour's R1 fail.
 */
export function checkAdvertise(message: R0Advertise): PublicKeys {
  const keys = (message as { keys?: unknown }).keys as R0Advertise['keys'] | undefined;
  if (typeof keys !== 'object' || keys === null) throw badMessage('/keys', 'missing');
  const decode = (name: 'c' | 's'): Uint8Array => {
    const key = fromBase64Url(keys[name], KEY_BYTES, `/keys/${name}`);
    try {
      x25519.getSharedSecret(PROBE, key);
    } catch {
      throw badMessage(`/keys/${name}`, 'not a usable X25519 public key (low order)');
    }
    return key;
  };
  return { c: decode('c'), s: decode('s') };
}

/** Checks client `from`'s R1 shares: exactly one well-formed envelope per member of N(from), itself included. */
export function checkShares(from: number, message: R1Shares, neighbourhood: Neighbourhood): void {
  const members = new Set(neighbourhood(from));
  const seen = new Set<number>();
  checkArray(message.shares, '/shares').forEach((_, m) => {
    const { to, ct } = message.shares[m]!;
    checkIndex(to, `/shares/${m}/to`);
    if (!members.has(to)) throw badMessage(`/shares/${m}/to`, `${to} is not a neighbour of ${from}`);
    if (seen.has(to)) throw badMessage(`/shares/${m}/to`, `a second envelope for ${to}`);
    seen.add(to);
    fromBase64Url(ct, SEALED_SHARE_BYTES, `/shares/${m}/ct`);
  });
  if (seen.size !== members.size) {
    throw badMessage('/shares', `${seen.size} envelopes for a neighbourhood of ${members.size}`);
  }
}

/** The shares R3 needs of one client j, and the clients asked for them (the U3 members of N(j)). */
export interface UnmaskNeed {
  readonly of: number;
  readonly kind: ShareKind;
  readonly holders: readonly number[];
}

/** What R3 must gather: one need per j whose mask must come off the sum, sorted by j. */
export interface UnmaskingPlan {
  readonly threshold: number;
  readonly needs: readonly UnmaskNeed[];
}

/** The round as the server knows it when R2 closes. */
export interface RoundSets {
  readonly threshold: number;
  readonly neighbourhood: Neighbourhood;
  /** The clients that sent shares in R1. */
  readonly u2: readonly number[];
  /** The clients whose masked input was accepted in R2 (a subset of U2). */
  readonly u3: readonly number[];
}

/**
 * Decides, for each j whose masks are in the sum, which share R3 needs and from whom: b_j for j in U3, s_sk_j
 * for j in U2 \ U3 with a neighbour in U3 (whose input holds a mask shared with j). Throws
 * SECAGG_BELOW_THRESHOLD, naming the clients, when some j has fewer than `threshold` holders: the round
 * cannot be unmasked and must abort before asking anyone for a share.
 */
export function unmaskingPlan(round: RoundSets): UnmaskingPlan {
  const u2 = new Set(round.u2);
  const u3 = new Set(round.u3);
  if (u2.size !== round.u2.length || u3.size !== round.u3.length)
    throw new Error('U2 or U3 repeats a client');
  for (const j of u3) if (!u2.has(j)) throw new Error(`${j} is in U3 but not in U2`);
  const needs: UnmaskNeed[] = [];
  const short: string[] = [];
  for (const j of [...u2].sort((a, b) => a - b)) {
    const holders = round.neighbourhood(j).filter((i) => u3.has(i));
    if (!u3.has(j) && holders.length === 0) continue;
    if (holders.length < round.threshold) short.push(`${j} (${holders.length})`);
    needs.push({ of: j, kind: u3.has(j) ? 'b' : 's', holders });
  }
  if (short.length > 0) {
    throw new AppError(
      'SECAGG_BELOW_THRESHOLD',
      `too few clients left to unmask ${short.length} client(s), threshold ${round.threshold}; the round aborts`,
      [{ path: 'holders', message: short.join(', ') }],
    );
  }
  return { threshold: round.threshold, needs };
}

/**
 * The R3 request for client i: the neighbours whose shares the plan asks of it, by kind. For a symmetric
 * graph (Harary graphs are) these are SECAGG.md's N(i) ∩ U3 and N(i) ∩ (U2 \ U3), for i in U3.
 */
export function survivorsMessage(plan: UnmaskingPlan, i: number): R3Survivors {
  const asked = plan.needs.filter((need) => need.holders.includes(i));
  return {
    survivors: asked.filter((need) => need.kind === 'b').map((need) => need.of),
    dropped: asked.filter((need) => need.kind === 's').map((need) => need.of),
  };
}

/**
 * Checks client `from`'s R3 answer against the plan: exactly the shares its request named, each of the
 * kind the plan needs. Returns the shares to store by target (SECAGG_BAD_MESSAGE for anything else).
 */
export function checkUnmask(
  plan: UnmaskingPlan,
  from: number,
  message: R3Unmask,
): { of: number; share: Uint8Array }[] {
  const asked = new Map(
    plan.needs.filter((need) => need.holders.includes(from)).map((need) => [need.of, need]),
  );
  const out = checkArray(message.shares, '/shares').map((_, m) => {
    const { of, kind, share } = message.shares[m]!;
    const need = asked.get(of);
    if (!need)
      throw badMessage(`/shares/${m}/of`, `${from} was not asked for a share of ${of}, or gave it twice`);
    if (kind !== need.kind)
      throw badMessage(`/shares/${m}/kind`, `the share of ${of} must be of kind ${need.kind}`);
    asked.delete(of);
    return { of, share: fromBase64Url(share, SHARE_BYTES, `/shares/${m}/share`) };
  });
  if (asked.size > 0) throw badMessage('/shares', `no share of ${[...asked.keys()].join(', ')}`);
  return out;
}

/** What unmasking needs besides the plan. */
export interface UnmaskInput {
  readonly plan: UnmaskingPlan;
  readonly session: Uint8Array;
  /** The `s` public key of every cohort member, by index. */
  readonly maskKeys: readonly Uint8Array[];
  /** The R3 shares received, by the client they rebuild a secret of. */
  readonly shares: ReadonlyMap<number, readonly Uint8Array[]>;
  /** The masking modulus of each tensor (`maskingModuli`). */
  readonly moduli: PerKind<number>;
  /** The sum over U3 of the masked tensors, as residues mod their modulus; not modified. */
  readonly maskedSums: PerKind<ArrayLike<number>>;
}

/**
 * Removes every mask from the sum of the U3 uploads and returns the exact sums (mod the modulus for V3):
 * rebuilds b_j of each survivor and subtracts its mask; rebuilds s_sk_j of each dropout (checked against
 * its advertised key) and takes off the pairwise mask it shares with each U3 neighbour. Throws
 * SECAGG_BELOW_THRESHOLD, naming the clients, before any work when some j has fewer than `threshold`
 * shares, and SECAGG_BAD_SHARE when shares rebuild a key other than the advertised one.
 */
export async function unmaskSums(input: UnmaskInput): Promise<PerKind<Float64Array>> {
  const { plan, session } = input;
  const short = plan.needs.filter((need) => (input.shares.get(need.of)?.length ?? 0) < plan.threshold);
  if (short.length > 0) {
    throw new AppError(
      'SECAGG_BELOW_THRESHOLD',
      `too few R3 shares to unmask ${short.length} client(s), threshold ${plan.threshold}; the round aborts`,
      [
        {
          path: 'shares',
          message: short.map((n) => `${n.of} (${input.shares.get(n.of)?.length ?? 0})`).join(', '),
        },
      ],
    );
  }
  const moduli = flatByKind(input.moduli);
  const sums = flatByKind(input.maskedSums).map((s) => Float64Array.from(s));
  if (sums.length !== moduli.length) throw new Error(`${sums.length} sums for ${moduli.length} moduli`);
  const sizes = sums.map((s) => s.length);
  const apply = (seed: Uint8Array, remove: 1 | -1): void =>
    expandMasks(seed, moduli, sizes).forEach((mask, t) =>
      (remove > 0 ? subMod : addMod)(sums[t]!, mask, moduli[t]!),
    );
  for (const need of plan.needs) {
    const secret = await combineShares(input.shares.get(need.of)!, plan.threshold);
    if (need.kind === 'b') {
      apply(secret, 1);
      continue;
    }
    const advertised = input.maskKeys[need.of];
    if (!advertised || !equalBytes(publicKeyOf(secret), advertised)) {
      throw new AppError(
        'SECAGG_BAD_SHARE',
        `the shares of ${need.of}'s mask key do not rebuild its advertised key`,
      );
    }
    // Each holder i added maskSign(i, j) * mask(s_ij); taking it off is applying the same sign as a removal.
    for (const i of need.holders) {
      if (!input.maskKeys[i]) throw new Error(`no mask key of ${i}, a neighbour of ${need.of} in U3`);
      apply(pairwiseSeed(session, secret, input.maskKeys[i]!, i, need.of), maskSign(i, need.of));
    }
  }
  return splitByKind(sums, input.moduli);
}
