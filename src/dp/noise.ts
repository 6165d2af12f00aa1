import { randomFillSync } from 'node:crypto';

const TWO_POW_53 = 2 ** 53;

/**
 * Fills `n` independent N(0, std^2) samples from the operating system's cryptographic generator (Box-Muller
 * on 53-bit uniforms). Noise that protects clients must not come from a generator whose state an observer
 * of earlier releases could reconstruct, as Math.random's can be.
 */
export function gaussianNoise(n: number, std: number): Float64Array {
  const out = new Float64Array(n);
  if (std === 0 || n === 0) return out;
  const words = new Uint32Array(4 * Math.ceil(n / 2));
  randomFillSync(words);
  for (let i = 0, w = 0; i < n; i += 2, w += 4) {
    // Uniform in (0, 1]: 53 random bits, never 0, so the log below is finite.
    const u1 = ((words[w]! >>> 5) * 67108864 + (words[w + 1]! >>> 6) + 1) / TWO_POW_53;
    const u2 = ((words[w + 2]! >>> 5) * 67108864 + (words[w + 3]! >>> 6)) / TWO_POW_53;
    const r = std * Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
