/**
 * Masking arithmetic of SecAgg+ (SECAGG.md, "Masking moduli" and "PRG"): the modulus of each masked tensor,
 * the ChaCha20 expansion of a 32-byte seed into masks, residue vectors added and subtracted in place, and
 * the int32 [2, n] lanes that carry residues in uploads and partials. Residues live in Float64Array: every
 * modulus is at most 2^52, so the sum of two residues (< 2^53) is exact before it is reduced.
 */
import { chacha20 } from '@noble/ciphers/chacha';
import { AppError } from '../errors';
import { SECURE_SUM_SLOTS, checkSecureSumParams, type SecureSumKind } from '../aggregation/secure-sum';

/** The secure-sum kinds in V1, V2, V3 order: the order of masked tensors and of the PRG stream over them. */
export const MASKED_KINDS = ['bitwidth', 'max_input', 'modulus'] as const satisfies readonly SecureSumKind[];

/** One entry per tensor for each secure-sum kind (the shape of a round's secure-sum parameters). */
export type PerKind<T> = { readonly [K in SecureSumKind]: readonly T[] };

/** The largest masking modulus: sums of two residues must stay exact in float64. */
export const MAX_MODULUS = 2 ** 52;
const TWO_32 = 2 ** 32;
const HALF = 2 ** 31;

/**
 * The masking modulus M of every tensor: 2^(bitwidth + ceil(log2 nMax)) for V1, the smallest power of two
 * above nMax * max_input for V2, the modulus itself for V3. `nMax` is the attempt's selection target, the
 * largest possible cohort, so that no exact sum of V1 or V2 can wrap. Throws PLAN_LIMIT_EXCEEDED naming the
 * tensor when an M would pass 2^52.
 */
export function maskingModuli(params: PerKind<number>, nMax: number): PerKind<number> {
  if (!Number.isSafeInteger(nMax) || nMax < 1) throw new Error(`the selection target ${nMax} is not a count`);
  MASKED_KINDS.forEach((kind) => checkSecureSumParams(kind, params[kind]));
  const clientBits = ceilLog2(nMax);
  const moduli = {
    bitwidth: params.bitwidth.map((b) => 2 ** (b + clientBits)),
    max_input: params.max_input.map((m) => 2 ** ceilLog2(nMax * m + 1)),
    modulus: [...params.modulus],
  };
  MASKED_KINDS.forEach((kind) =>
    moduli[kind].forEach((m, i) => {
      if (m <= MAX_MODULUS) return;
      const what = kind === 'bitwidth' ? 'the bitwidth' : 'max_input';
      throw new AppError(
        'PLAN_LIMIT_EXCEEDED',
        `a secure sum needs a masking modulus above 2^52 (lower ${what} or the selection target)`,
        [
          {
            path: `${SECURE_SUM_SLOTS[kind]}/${i}`,
            message: `${what} ${params[kind][i]} with a selection target of ${nMax} needs a modulus of 2^${Math.log2(m)}`,
          },
        ],
      );
    }),
  );
  return moduli;
}

/** The smallest e with 2^e >= n (n >= 1), exactly (Math.log2 may round near powers of two). */
function ceilLog2(n: number): number {
  let e = 0;
  while (2 ** e < n) e++;
  return e;
}

/** A per-kind list flattened in V1, V2, V3 order, the order of the PRG stream. */
export function flatByKind<T>(perKind: PerKind<T>): T[] {
  return MASKED_KINDS.flatMap((kind) => [...perKind[kind]]);
}

/** The inverse of `flatByKind`: cuts a flat V1, V2, V3 list into kinds with the counts of `like`. */
export function splitByKind<T>(flat: readonly T[], like: PerKind<unknown>): PerKind<T> {
  const [a, b] = [like.bitwidth.length, like.bitwidth.length + like.max_input.length];
  if (flat.length !== b + like.modulus.length)
    throw new Error(`${flat.length} tensors for ${b + like.modulus.length}`);
  return { bitwidth: flat.slice(0, a), max_input: flat.slice(a, b), modulus: flat.slice(b) };
}

// 16 KiB of keystream per refill (256 ChaCha20 blocks): few calls into noble, little memory.
const REFILL_WORDS = 4096;
const BLOCK_WORDS = 16;
const ZEROS = new Uint8Array(REFILL_WORDS * 4);
const ZERO_NONCE = new Uint8Array(12);

/** The ChaCha20 keystream of a seed (zero nonce, counter from 0) as u32 words, read in order. */
class WordStream {
  private readonly bytes = new Uint8Array(REFILL_WORDS * 4);
  // noble ciphers runs on little-endian platforms only, so this view reads the spec's little-endian words.
  private readonly words = new Uint32Array(this.bytes.buffer);
  private at = REFILL_WORDS;
  private block = 0;

  constructor(private readonly key: Uint8Array) {}

  next(): number {
    if (this.at === REFILL_WORDS) {
      chacha20(this.key, ZERO_NONCE, ZEROS, this.bytes, this.block);
      this.block += REFILL_WORDS / BLOCK_WORDS;
      this.at = 0;
    }
    return this.words[this.at++]!;
  }
}

/**
 * Expands a 32-byte seed into one mask per tensor, uniform in [0, moduli[t]), reading one ChaCha20 stream
 * over all tensors in order (a client and the server must consume it alike): M = 2^e with e <= 32 takes one
 * word's low e bits; e in (32, 52] takes two words, the first the low 32 bits; any other M < 2^32 takes
 * words by rejection (u < 2^32 - 2^32 mod M) and reduces them mod M.
 */
export function expandMasks(
  seed: Uint8Array,
  moduli: readonly number[],
  sizes: readonly number[],
): Float64Array[] {
  if (seed.length !== 32) throw new Error(`a mask seed has 32 bytes, not ${seed.length}`);
  if (moduli.length !== sizes.length) throw new Error(`${moduli.length} moduli for ${sizes.length} tensors`);
  const stream = new WordStream(seed);
  return moduli.map((m, t) => {
    const out = new Float64Array(sizes[t]!);
    const e = Math.round(Math.log2(m));
    if (!Number.isSafeInteger(m) || m < 1 || m > MAX_MODULUS || (2 ** e !== m && m >= TWO_32)) {
      throw new Error(`tensor ${t}: ${m} is not a masking modulus`);
    }
    if (2 ** e !== m) {
      const limit = TWO_32 - (TWO_32 % m);
      for (let k = 0; k < out.length; k++) {
        let u = stream.next();
        while (u >= limit) u = stream.next();
        out[k] = u % m;
      }
    } else if (e <= 32) {
      // `&` works on int32: `>>> 0` turns the result back into an unsigned word (it matters for e = 32).
      const low = m - 1;
      for (let k = 0; k < out.length; k++) out[k] = (stream.next() & low) >>> 0;
    } else {
      const high = 2 ** (e - 32) - 1;
      for (let k = 0; k < out.length; k++) {
        const lo = stream.next();
        out[k] = (stream.next() & high) * TWO_32 + lo;
      }
    }
    return out;
  });
}

/** target = (target + values) mod m, element-wise; both hold residues in [0, m). */
export function addMod(target: Float64Array, values: ArrayLike<number>, m: number): void {
  if (values.length !== target.length)
    throw new Error(`adding ${values.length} elements to ${target.length}`);
  for (let k = 0; k < target.length; k++) {
    const s = target[k]! + values[k]!;
    target[k] = s >= m ? s - m : s;
  }
}

/** target = (target - values) mod m, element-wise; both hold residues in [0, m). */
export function subMod(target: Float64Array, values: ArrayLike<number>, m: number): void {
  if (values.length !== target.length)
    throw new Error(`subtracting ${values.length} elements from ${target.length}`);
  for (let k = 0; k < target.length; k++) {
    const d = target[k]! - values[k]!;
    target[k] = d < 0 ? d + m : d;
  }
}

/** Residues as int32 [2, n] lanes, row-major: row 0 floor(y / 2^31), row 1 y mod 2^31. */
export function toLanes(values: ArrayLike<number>): Int32Array {
  const n = values.length;
  const out = new Int32Array(2 * n);
  for (let k = 0; k < n; k++) {
    const y = values[k]!;
    if (!Number.isInteger(y) || y < 0 || y >= MAX_MODULUS)
      throw new Error(`element ${k} is ${y}, not a residue`);
    const hi = Math.floor(y / HALF);
    out[k] = hi;
    out[n + k] = y - hi * HALF;
  }
  return out;
}

/**
 * Reads int32 [2, n] lanes back into residues mod m. Lanes come from clients, so anything but a canonical
 * encoding of a residue in [0, m) throws SECURE_SUM_OUT_OF_RANGE naming `label` and the element.
 */
export function fromLanes(lanes: ArrayLike<number>, m: number, label = 'masked tensor'): Float64Array {
  if (lanes.length % 2 !== 0) {
    throw new AppError('SECURE_SUM_OUT_OF_RANGE', `${label} has ${lanes.length} lane values, not [2, n]`);
  }
  const n = lanes.length / 2;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const hi = lanes[k]!;
    const lo = lanes[n + k]!;
    const y = hi * HALF + lo;
    if (!Number.isInteger(hi) || !Number.isInteger(lo) || hi < 0 || lo < 0 || lo >= HALF || y >= m) {
      throw new AppError(
        'SECURE_SUM_OUT_OF_RANGE',
        `${label}, element ${k}: lanes (${hi}, ${lo}) are not a residue below the masking modulus ${m}`,
      );
    }
    out[k] = y;
  }
  return out;
}
