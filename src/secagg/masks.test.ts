import * as nodeCrypto from 'node:crypto';
import { appErrorOf } from '../app-error.jest';
import { SECURE_KINDS } from '../rounds/form-steps';
import {
  MASKED_KINDS,
  addMod,
  expandMasks,
  flatByKind,
  fromLanes,
  maskingModuli,
  splitByKind,
  subMod,
  toLanes,
} from './masks';

describe('maskingModuli', () => {
  it.each([
    // [bitwidth, max_input, modulus, nMax] -> [V1 M, V2 M, V3 M], worked out by hand
    [8, 1000, 97, 50, [2 ** 14, 2 ** 16, 97]], // ceil(log2 50) = 6; 50 * 1000 + 1 = 50001 <= 65536
    [8, 1000, 97, 1, [2 ** 8, 2 ** 10, 97]], // nMax 1 gives 2^b; 1001 <= 1024
    [8, 1, 2 ** 31 - 1, 64, [2 ** 14, 2 ** 7, 2 ** 31 - 1]], // log2 64 = 6 exactly; 65 <= 128
    [8, 1024, 1, 65, [2 ** 15, 2 ** 17, 1]], // ceil(log2 65) = 7; 66561 <= 131072
    [31, 0, 16, 2 ** 21, [2 ** 52, 1, 16]], // the largest V1 that fits; max_input 0 sums to 0
  ])('bitwidth %i, max_input %i, modulus %i, nMax %i -> %j', (b, m, q, nMax, expected) => {
    const moduli = maskingModuli({ bitwidth: [b], max_input: [m], modulus: [q] }, nMax);
    expect(flatByKind(moduli)).toEqual(expected);
  });

  it('refuses a modulus above 2^52 with a plan error naming the tensor', () => {
    const error = appErrorOf(() =>
      maskingModuli({ bitwidth: [8, 31], max_input: [], modulus: [] }, 2 ** 21 + 1),
    );
    expect(error.code).toBe('PLAN_LIMIT_EXCEEDED');
    expect(error.details[0]!.path).toBe('secure_sum_bitwidth/1');
    expect(error.message).toContain('lower the bitwidth or the selection target');
    const v2 = appErrorOf(() =>
      maskingModuli({ bitwidth: [], max_input: [2 ** 31 - 1], modulus: [] }, 2 ** 22),
    );
    expect([v2.code, v2.details[0]!.path]).toEqual(['PLAN_LIMIT_EXCEEDED', 'secure_sum_max_input/0']);
  });

  it('keeps the V1, V2, V3 order of the rounds (SECURE_KINDS)', () => {
    expect(MASKED_KINDS).toEqual(SECURE_KINDS);
    const like = { bitwidth: [0, 0], max_input: [0], modulus: [0, 0, 0] };
    expect(splitByKind(flatByKind({ bitwidth: [1, 2], max_input: [3], modulus: [4, 5, 6] }), like)).toEqual({
      bitwidth: [1, 2],
      max_input: [3],
      modulus: [4, 5, 6],
    });
  });
});

/** The spec's sampling read off Node's own ChaCha20 (OpenSSL's IV: 4-byte little-endian counter, nonce). */
function referenceMasks(seed: Uint8Array, moduli: number[], sizes: number[]): number[][] {
  const words = sizes.reduce((a, b) => a + b, 0) * 4;
  const cipher = nodeCrypto.createCipheriv('chacha20', seed, Buffer.alloc(16));
  const stream = cipher.update(Buffer.alloc(words * 4));
  let at = 0;
  const next = (): bigint => BigInt(stream.readUInt32LE(at++ * 4));
  return moduli.map((m, t) =>
    Array.from({ length: sizes[t]! }, () => {
      const M = BigInt(m);
      if ((M & (M - 1n)) === 0n && M <= 2n ** 32n) return Number(next() % M);
      if ((M & (M - 1n)) === 0n) {
        const lo = next();
        return Number((next() % (M >> 32n)) * 2n ** 32n + lo);
      }
      const limit = 2n ** 32n - (2n ** 32n % M);
      for (;;) {
        const u = next();
        if (u < limit) return Number(u % M);
      }
    }),
  );
}

describe('expandMasks', () => {
  it('reads the ChaCha20 keystream of the seed (RFC 8439 A.1 #1: all-zero key and nonce)', () => {
    const [words] = expandMasks(new Uint8Array(32), [2 ** 32], [2]);
    expect([...words!]).toEqual([0xade0b876, 0x903df1a0]);
  });

  it('samples each tensor as the spec says, one stream over all tensors in order', () => {
    const seed = nodeCrypto.randomBytes(32);
    // Sizes cross the 4096-word refills; 3 * 2^30 rejects a quarter of its words, 2^31 - 1 almost none.
    const moduli = [2 ** 8, 2 ** 32, 2 ** 40, 2 ** 52, 97, 3 * 2 ** 30, 2 ** 31 - 1, 1, 2 ** 33];
    const sizes = [3000, 1000, 2000, 500, 1000, 3000, 100, 5, 700];
    const masks = expandMasks(new Uint8Array(seed), moduli, sizes);
    expect(masks.map((m) => [...m])).toEqual(referenceMasks(new Uint8Array(seed), moduli, sizes));
  });

  it('is uniform (chi-square at 1% on 100,000 draws) for M = 2^20 and M = 97', () => {
    const seed = new TextEncoder().encode('a fixed 32-byte repeatable seed!');
    const [a, b] = expandMasks(seed, [2 ** 20, 97], [100_000, 100_000]);
    const chi = (values: Float64Array, m: number, buckets: number): number => {
      const counts = new Array<number>(buckets).fill(0);
      for (const y of values) counts[Math.floor((y * buckets) / m)]! += 1;
      const e = values.length / buckets;
      return counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
    };
    expect(chi(a!, 2 ** 20, 128)).toBeLessThan(166.99); // chi-square 1% critical value, 127 df
    expect(chi(b!, 97, 97)).toBeLessThan(131.14); // 96 df
  });

  it.each([[0], [2 ** 53], [3 * 2 ** 32], [2.5]])('refuses modulus %d', (m) => {
    expect(() => expandMasks(new Uint8Array(32), [m], [1])).toThrow('not a masking modulus');
  });
});

describe('residue arithmetic', () => {
  it('adds and subtracts modulo m without leaving [0, m), exactly up to 2^52', () => {
    const m = 2 ** 52;
    const v = Float64Array.of(m - 1, 0, 5, m - 2);
    addMod(v, [m - 1, m - 1, 7, 1], m);
    expect([...v]).toEqual([m - 2, m - 1, 12, m - 1]);
    subMod(v, [m - 1, m - 1, 13, 0], m);
    expect([...v]).toEqual([m - 1, 0, m - 1, m - 1]);
    const q = Float64Array.of(96, 0);
    addMod(q, [1, 96], 97);
    expect([...q]).toEqual([0, 96]);
  });

  it('encodes residues as int32 [2, n] lanes: row 0 floor(y / 2^31), row 1 y mod 2^31', () => {
    const values = [0, 2 ** 31 - 1, 2 ** 31, 2 ** 52 - 1];
    const lanes = toLanes(values);
    expect([...lanes]).toEqual([0, 0, 1, 2 ** 21 - 1, 0, 2 ** 31 - 1, 0, 2 ** 31 - 1]);
    expect([...fromLanes(lanes, 2 ** 52)]).toEqual(values);
  });

  it.each([
    ['an odd length', [0, 0, 0]],
    ['a low lane of 2^31 or more', [0, 2 ** 31]],
    ['a negative lane', [-1, 5]],
    ['a value at the modulus', [0, 1000]],
  ])('refuses lanes with %s (SECURE_SUM_OUT_OF_RANGE)', (_, lanes) => {
    expect(appErrorOf(() => fromLanes(lanes, 1000)).code).toBe('SECURE_SUM_OUT_OF_RANGE');
  });
});
