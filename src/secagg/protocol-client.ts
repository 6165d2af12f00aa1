/**
 * The client side of SecAgg+ for one task, kept in memory from R0 to R3 (SECAGG.md, "Messages"). Pure: it
 * turns server messages into client messages and does no I/O. Each step answers a repeated identical
 * request with its first answer (an HTTP retry must not split secrets twice), and refuses any other.
 */
import { SecureSum } from '../aggregation/secure-sum';
import { equalBytes } from '@noble/ciphers/utils';
import { AppError } from '../errors';
import {
  KEY_BYTES,
  SEALED_SHARE_BYTES,
  checkSharing,
  newKeyPair,
  openShare,
  pairwiseSeed,
  sealShare,
  secureRandomBytes,
  shareKey,
  splitSecret,
  type KeyPair,
  type RandomBytes,
  type SharePair,
} from './crypto';
import {
  MASKED_KINDS,
  addMod,
  expandMasks,
  flatByKind,
  maskingModuli,
  splitByKind,
  subMod,
  toLanes,
  type PerKind,
} from './masks';
import {
  badMessage,
  checkArray,
  checkIndex,
  fromBase64Url,
  maskSign,
  toBase64Url,
  type R0Advertise,
  type R1Neighbours,
  type R1Shares,
  type R2Inbox,
  type R3Survivors,
  type R3Unmask,
} from './protocol';

/** What R2 gives: the masked tensors as int32 [2, n] lanes per kind, or the client drops out. */
export type MaskOutcome =
  | { readonly status: 'masked'; readonly lanes: PerKind<Int32Array> }
  | { readonly status: 'aborted'; readonly error: AppError };

/** What the client learnt in R1. */
interface Round {
  readonly session: Uint8Array;
  readonly index: number;
  readonly threshold: number;
  /** Public keys of the neighbourhood, itself included. */
  readonly keys: ReadonlyMap<number, { readonly c: Uint8Array; readonly s: Uint8Array }>;
  /** The self-mask seed b. */
  readonly seed: Uint8Array;
}

type Step = 'new' | 'shared' | 'masked' | 'unmasked' | 'aborted';

/** One client's SecAgg+ state for one task: call advertise, shareKeys, maskInput, unmask in this order. */
export class SecAggClientRound {
  private readonly c: KeyPair;
  private readonly s: KeyPair;
  private step: Step = 'new';
  private round: Round | undefined;
  /** The shares of each inbox sender's secrets that this client holds, by sender. */
  private held = new Map<number, SharePair>();
  /** The request that produced the current step, and its answer, for retries. */
  private last: { readonly request: string; readonly answer: unknown } | undefined;

  constructor(private readonly random: RandomBytes = secureRandomBytes) {
    this.c = newKeyPair(random);
    this.s = newKeyPair(random);
  }

  /** R0: the public keys to advertise. */
  advertise(): R0Advertise {
    return { keys: { c: toBase64Url(this.c.publicKey), s: toBase64Url(this.s.publicKey) } };
  }

  /** R1: checks the neighbourhood the server sent, and seals shares of s_sk and of a fresh b for each member. */
  async shareKeys(message: R1Neighbours): Promise<R1Shares> {
    const again = this.repeat<R1Shares>('shared', message);
    if (again) return again;
    this.expect('new', 'R1 neighbours');
    const round = this.readNeighbours(message);
    const members = [...round.keys.keys()];
    const [sShares, bShares] = await Promise.all([
      splitSecret(this.s.secretKey, members.length, round.threshold),
      splitSecret(round.seed, members.length, round.threshold),
    ]);
    const shares = members.map((to, m) => {
      const key = shareKey(round.session, this.c.secretKey, round.keys.get(to)!.c, round.index, to);
      const pair = { s: sShares[m]!, b: bShares[m]! };
      return { to, ct: toBase64Url(sealShare(key, round.session, round.index, to, pair, this.random)) };
    });
    this.round = round;
    return this.advance('shared', message, { shares });
  }

  private readNeighbours(message: R1Neighbours): Round {
    const n = checkIndex(message.n, '/n');
    if (n < 1) throw badMessage('/n', 'the cohort is empty');
    const index = checkIndex(message.index, '/index', n);
    const list = checkArray(message.neighbours, '/neighbours') as R1Neighbours['neighbours'];
    if (!Number.isInteger(message.degree) || list.length > message.degree) {
      throw badMessage('/neighbours', `${list.length} neighbours for a degree of ${message.degree}`);
    }
    checkSharing(list.length, message.threshold);
    const keys = new Map<number, { c: Uint8Array; s: Uint8Array }>();
    list.forEach((entry, m) => {
      const at = checkIndex(entry.index, `/neighbours/${m}/index`, n);
      if (m > 0 && at <= list[m - 1]!.index)
        throw badMessage(`/neighbours/${m}`, 'neighbours are not sorted');
      keys.set(at, {
        c: fromBase64Url(entry.c, KEY_BYTES, `/neighbours/${m}/c`),
        s: fromBase64Url(entry.s, KEY_BYTES, `/neighbours/${m}/s`),
      });
    });
    const self = keys.get(index);
    if (!self) throw badMessage('/neighbours', `the neighbourhood leaves out the client itself (${index})`);
    if (!equalBytes(self.c, this.c.publicKey) || !equalBytes(self.s, this.s.publicKey)) {
      throw badMessage('/neighbours', `the keys of ${index} are not the ones this client advertised`);
    }
    return {
      session: fromBase64Url(message.session, KEY_BYTES, '/session'),
      index,
      threshold: message.threshold,
      keys,
      seed: this.random(KEY_BYTES),
    };
  }

  /**
   * R2: opens the shares in the inbox and masks the secure-sum values (one array per tensor of each kind,
   * checked against TFF's ranges for `params`) with b and with one pairwise mask per other inbox sender.
   * `nMax` is the attempt's selection target, which fixes the moduli. An inbox below the threshold makes
   * the client drop out (status `aborted`); a tampered envelope throws SECAGG_BAD_SHARE.
   */
  maskInput(
    inbox: R2Inbox,
    values: PerKind<ArrayLike<number>>,
    params: PerKind<number>,
    nMax: number,
  ): MaskOutcome {
    const again = this.repeat<MaskOutcome>('masked', inbox) ?? this.repeat<MaskOutcome>('aborted', inbox);
    if (again) return again;
    this.expect('shared', 'R2 inbox');
    const round = this.round!;
    const senders = this.openInbox(round, inbox);
    if (senders.size < round.threshold) {
      const error = new AppError(
        'SECAGG_BELOW_THRESHOLD',
        `the inbox holds ${senders.size} shares, the threshold is ${round.threshold}: the client drops out`,
      );
      return this.advance('aborted', inbox, { status: 'aborted', error } as const);
    }
    const moduli = flatByKind(maskingModuli(params, nMax));
    const masked = flatByKind(checkedInput(values, params)).map((v, t) => reduce(v, moduli[t]!));
    const sizes = masked.map((v) => v.length);
    const apply = (seed: Uint8Array, sign: 1 | -1): void =>
      expandMasks(seed, moduli, sizes).forEach((mask, t) =>
        (sign > 0 ? addMod : subMod)(masked[t]!, mask, moduli[t]!),
      );
    apply(round.seed, 1);
    for (const j of senders.keys()) {
      if (j === round.index) continue;
      apply(
        pairwiseSeed(round.session, this.s.secretKey, round.keys.get(j)!.s, round.index, j),
        maskSign(round.index, j),
      );
    }
    this.held = senders;
    const lanes = splitByKind(masked.map(toLanes), params);
    return this.advance('masked', inbox, { status: 'masked', lanes } as const);
  }

  private openInbox(round: Round, inbox: R2Inbox): Map<number, SharePair> {
    const opened = new Map<number, SharePair>();
    checkArray(inbox.shares, '/shares').forEach((_, m) => {
      const { from, ct } = inbox.shares[m]!;
      const path = `/shares/${m}`;
      checkIndex(from, `${path}/from`);
      const keys = round.keys.get(from);
      if (!keys) throw badMessage(`${path}/from`, `${from} is not in the neighbourhood`);
      if (opened.has(from)) throw badMessage(`${path}/from`, `${from} appears twice`);
      const key = shareKey(round.session, this.c.secretKey, keys.c, round.index, from);
      const sealed = fromBase64Url(ct, SEALED_SHARE_BYTES, `${path}/ct`);
      opened.set(from, openShare(key, round.session, from, round.index, sealed));
    });
    // This client sent shares to itself in R1, so it is in U2: an inbox without them is not its own.
    if (!opened.has(round.index)) throw badMessage('/shares', `the inbox leaves out the client's own shares`);
    return opened;
  }

  /**
   * R3: the share of b_j for each survivor j and of s_sk_j for each dropout j. Refuses (SECAGG_UNMASK_REFUSED)
   * a request naming a j twice (both kinds would expose j's input), a j whose shares it does not hold, or
   * leaving out the client itself, and one with fewer survivors than the threshold (the server could not
   * unmask this client's own input, so it should not ask).
   */
  unmask(message: R3Survivors): R3Unmask {
    const again = this.repeat<R3Unmask>('unmasked', message);
    if (again) return again;
    this.expect('masked', 'R3 survivors');
    const round = this.round!;
    const refuse = (why: string): AppError =>
      new AppError('SECAGG_UNMASK_REFUSED', `the client refuses to unmask: ${why}`);
    const named = new Set<number>();
    const shares: { of: number; kind: 'b' | 's'; share: string }[] = [];
    for (const [list, kind] of [
      [message.survivors, 'b'],
      [message.dropped, 's'],
    ] as const) {
      checkArray(list, kind === 'b' ? '/survivors' : '/dropped').forEach((j) => {
        if (named.has(j as number)) throw refuse(`${j} is named twice`);
        const pair = this.held.get(j as number);
        if (!pair) throw refuse(`${j} sent it no shares`);
        named.add(j as number);
        shares.push({ of: j as number, kind, share: toBase64Url(pair[kind]) });
      });
    }
    if (!message.survivors.includes(round.index)) throw refuse(`the survivors leave out the client itself`);
    if (message.survivors.length < round.threshold) {
      throw refuse(`${message.survivors.length} survivors, fewer than the threshold ${round.threshold}`);
    }
    // The secrets are spent: the server may learn s_sk or b of this client from its neighbours now.
    this.s.secretKey.fill(0);
    this.c.secretKey.fill(0);
    round.seed.fill(0);
    this.held.clear();
    return this.advance('unmasked', message, { shares });
  }

  private expect(step: Step, what: string): void {
    if (this.step !== step)
      throw badMessage('/', `${what} arrived while the client is at step "${this.step}"`);
  }

  /** The cached answer when `request` repeats the one that led to `step`. */
  private repeat<T>(step: Step, request: unknown): T | undefined {
    if (this.step !== step || !this.last) return undefined;
    if (JSON.stringify(request) !== this.last.request) {
      throw badMessage('/', `a different request for step "${step}", which was already answered`);
    }
    return this.last.answer as T;
  }

  private advance<T>(step: Step, request: unknown, answer: T): T {
    this.step = step;
    this.last = { request: JSON.stringify(request), answer };
    return answer;
  }
}

/** The values as TFF accepts them: integers, within the bitwidth and max_input ranges (SecureSum's check). */
function checkedInput(
  values: PerKind<ArrayLike<number>>,
  params: PerKind<number>,
): PerKind<ArrayLike<number>> {
  MASKED_KINDS.forEach((kind) => {
    const tensors = values[kind];
    if (tensors.length !== params[kind].length) {
      throw new Error(`${tensors.length} ${kind} tensors for ${params[kind].length} parameters`);
    }
    new SecureSum(
      kind,
      params[kind],
      tensors.map((v) => v.length),
    ).check(tensors);
    tensors.forEach((v, t) => {
      for (let k = 0; k < v.length; k++) {
        if (!Number.isSafeInteger(v[k])) {
          throw new AppError(
            'SECURE_SUM_OUT_OF_RANGE',
            `${kind} tensor ${t}, element ${k} is ${v[k]}, not an integer`,
          );
        }
      }
    });
  });
  return values;
}

/** A copy of `values` as residues mod m (V1 and V2 values are already below m; V3 values may be anything). */
function reduce(values: ArrayLike<number>, m: number): Float64Array {
  const out = new Float64Array(values.length);
  for (let k = 0; k < out.length; k++) out[k] = ((values[k]! % m) + m) % m;
  return out;
}
