/** Seeded randomness for data handling, so that splits, partitions and shuffles repeat exactly for a seed. */
import seedrandom from 'seedrandom';
import { fisherYates } from '../compute/shuffle';

/** A seed for the data helpers; numbers and strings are both accepted and turned into seedrandom's string. */
export type Seed = string | number;

/** A uniformly random permutation of 0..n-1 (Fisher-Yates) that depends only on `n` and `seed`. */
export function seededPermutation(n: number, seed: Seed): Int32Array {
  return fisherYates(n, seedrandom(String(seed)));
}

/** A generator of uniform numbers in [0, 1) that depends only on `seed`: seeded example data. */
export function seededUniform(seed: Seed): () => number {
  return seedrandom(String(seed));
}
