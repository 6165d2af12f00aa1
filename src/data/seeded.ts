/** Seeded randomness for data handling, so that splits, partitions and shuffles repeat exactly for a seed. */
import seedrandom from 'seedrandom';

/** A seed for the data helpers; numbers and strings are both accepted and turned into seedrandom's string. */
export type Seed = string | number;

/** A uniformly random permutation of 0..n-1 (Fisher-Yates) that depends only on `n` and `seed`. */
export function seededPermutation(n: number, seed: Seed): Int32Array {
  const rng = seedrandom(String(seed));
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}
