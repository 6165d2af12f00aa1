/**
 * The IR's one source of client-side randomness: the seeded permutation `fold` uses to reshuffle a client's
 * examples between epochs (docs/ir.md, "fold"). Spelled out exactly (mulberry32, then Fisher-Yates from the
 * end), because every client implementation must draw the same permutation for the same seed: a Python or
 * Kotlin client reproduces it with 32-bit integer arithmetic and one division by 2^32.
 */

/** mulberry32: a small seeded generator of uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The permutation of 0..n-1 that `fold` applies to a client's examples before epoch `epoch` (1, 2, ...;
 * epoch 0 keeps the order the client gave): mulberry32 seeded with `(seed + epoch * 0x9e3779b9) mod 2^32`,
 * then for i from n-1 down to 1, j = floor(r * (i + 1)) with r the next draw, swap positions i and j.
 */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  const next = mulberry32((seed + Math.imul(epoch, 0x9e3779b9)) >>> 0);
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}
