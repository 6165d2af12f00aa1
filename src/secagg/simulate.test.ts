import seedrandom from 'seedrandom';
import { appErrorOfAsync } from '../app-error.jest';
import { MASKED_KINDS, flatByKind, fromLanes, maskingModuli, type PerKind } from './masks';
import { complete, ring, seededRandom, simulateRound, type RoundOptions } from './round-harness.jest';

const PARAMS = { bitwidth: [8, 8], max_input: [1000], modulus: [97] };

/**
 * Client i's values, drawn from a seeded generator: element 0 of every V1 and V2 tensor is at its maximum
 * for every client (so that a modulus one bit too small would wrap the sum), V3 takes any int32.
 */
function inputs(seed: string): (i: number) => PerKind<number[]> {
  return (i) => {
    const rng = seedrandom(`${seed}/${i}`);
    const upTo = (max: number, size: number): number[] =>
      Array.from({ length: size }, (_, k) => (k === 0 ? max : Math.floor(rng() * (max + 1))));
    return {
      bitwidth: [upTo(255, 7), upTo(255, 3)],
      max_input: [upTo(1000, 5)],
      modulus: [Array.from({ length: 6 }, () => Math.floor(rng() * 2 ** 32) - 2 ** 31)],
    };
  };
}

const indexes = (n: number, keep: (i: number) => boolean): Set<number> =>
  new Set(Array.from({ length: n }, (_, i) => i).filter(keep));

describe('SecAgg+ in one process', () => {
  it('releases the survivors exact sums: n = 50, ring of degree 21, threshold 11, 30% + 10% dropouts', async () => {
    const n = 50;
    // Spread evenly, every window of 21 keeps at least 11 clients that answer R3.
    const dropAfterR1 = indexes(n, (i) => [0, 3, 6].includes(i % 10));
    const dropAfterR2 = indexes(n, (i) => i % 10 === 8);
    const result = await simulateRound({
      n,
      neighbourhood: ring(n, 21),
      degree: 21,
      threshold: 11,
      params: PARAMS,
      nMax: n,
      input: inputs('ring'),
      dropAfterR1,
      dropAfterR2,
    });
    expect([dropAfterR1.size, dropAfterR2.size, result.u3.length]).toEqual([15, 5, 35]);
    // Every dropout's mask key and every survivor's self-mask seed were rebuilt.
    expect(result.plan.needs.filter((need) => need.kind === 's').map((need) => need.of)).toEqual([
      ...dropAfterR1,
    ]);
    expect(result.plan.needs.filter((need) => need.kind === 'b')).toHaveLength(35);
    // The maximum inputs sum past 2^13 and 2^15, where too small a modulus would have wrapped them.
    expect(result.expected.bitwidth[0]![0]).toBe(35 * 255);
    expect(result.expected.max_input[0]![0]).toBe(35 * 1000);
    for (const kind of MASKED_KINDS) {
      expect(result.sums[kind].map((s) => [...s])).toEqual(result.expected[kind].map((s) => [...s]));
    }
  });

  it('releases the survivors exact sums on a complete graph of 10 with 3 + 1 dropouts', async () => {
    const n = 10;
    const options: RoundOptions = {
      n,
      neighbourhood: complete(n),
      degree: n,
      threshold: 6,
      params: PARAMS,
      nMax: n,
      input: inputs('complete'),
      dropAfterR1: new Set([1, 4, 7]),
      dropAfterR2: new Set([9]),
    };
    const result = await simulateRound(options);
    expect(result.u3).toEqual([0, 2, 3, 5, 6, 8, 9]);
    for (const kind of MASKED_KINDS) {
      expect(result.sums[kind].map((s) => [...s])).toEqual(result.expected[kind].map((s) => [...s]));
    }
    // The uploads were masked: no client's upload shows its values.
    const moduli = flatByKind(maskingModuli(PARAMS, n));
    for (const [i, upload] of result.uploads) {
      const plain = flatByKind(options.input(i)).map((v, t) =>
        v.map((x) => ((x % moduli[t]!) + moduli[t]!) % moduli[t]!),
      );
      const masked = flatByKind(upload).map((lanes, t) => [...fromLanes(lanes, moduli[t]!)]);
      expect(masked).not.toEqual(plain);
    }
  });

  it('aborts with SECAGG_BELOW_THRESHOLD when too many clients drop before R2', async () => {
    const error = await appErrorOfAsync(
      simulateRound({
        n: 10,
        neighbourhood: complete(10),
        degree: 10,
        threshold: 6,
        params: PARAMS,
        nMax: 10,
        input: inputs('few'),
        dropAfterR1: new Set([0, 1, 2, 3, 4]),
      }),
    );
    expect(error.code).toBe('SECAGG_BELOW_THRESHOLD');
    expect(error.details[0]!.message).toContain('5 (5)');
  });

  it('aborts with SECAGG_BELOW_THRESHOLD when too few clients answer R3', async () => {
    const error = await appErrorOfAsync(
      simulateRound({
        n: 10,
        neighbourhood: complete(10),
        degree: 10,
        threshold: 6,
        params: PARAMS,
        nMax: 10,
        input: inputs('late'),
        dropAfterR1: new Set([0, 1]),
        dropAfterR2: new Set([2, 3, 4]),
      }),
    );
    expect(error.code).toBe('SECAGG_BELOW_THRESHOLD');
    expect(error.message).toContain('too few R3 shares');
  });

  it('a client asked for both kinds of share of one neighbour refuses', async () => {
    const error = await appErrorOfAsync(
      simulateRound({
        n: 6,
        neighbourhood: complete(6),
        degree: 6,
        threshold: 3,
        params: PARAMS,
        nMax: 6,
        input: inputs('both'),
        // A dishonest server tells client 0 that client 1 both survived and dropped.
        r3Request: (i, honest) => (i === 0 ? { ...honest, dropped: [...honest.dropped, 1] } : honest),
      }),
    );
    expect(error.code).toBe('SECAGG_UNMASK_REFUSED');
    expect(error.message).toContain('1 is named twice');
  });
});

/**
 * The 0.01% critical value of chi-square with df degrees of freedom (Wilson-Hilferty, close for df >= 10).
 * Not 1%: four tests at 1% fail about one run in 25 by chance alone whenever the masks change (another
 * seed, another session); a biased mask is off by far more than this margin.
 */
function chiSquareCritical(df: number): number {
  const z = 3.719; // the 99.99th percentile of the standard normal
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/** Pearson's chi-square of `values` in [0, m) against the uniform law, in `buckets` equal bins. */
function chiSquare(values: readonly number[], m: number, buckets: number): number {
  const counts = new Array<number>(buckets).fill(0);
  for (const y of values) counts[Math.floor((y * buckets) / m)]! += 1;
  const expected = values.length / buckets;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

describe('masked uploads of a constant input', () => {
  it('are indistinguishable from uniform (chi-square at 0.01%), for M = 2^18 and M = 97', async () => {
    const n = 1000;
    const size = 64;
    const params = { bitwidth: [8], max_input: [], modulus: [97] };
    // Seeded randomness and a fixed session make the test reproducible; a seeded run is as uniform as a fresh one.
    const result = await simulateRound({
      session: new Uint8Array(32).fill(7),
      n,
      neighbourhood: ring(n, 3),
      degree: 3,
      threshold: 2,
      params,
      nMax: n,
      input: () => ({
        bitwidth: [new Array(size).fill(255)],
        max_input: [],
        modulus: [new Array(size).fill(5)],
      }),
      random: (i) => seededRandom(`uniformity/${i}`),
    });
    const [m1, m3] = flatByKind(maskingModuli(params, n));
    expect([m1, m3]).toEqual([2 ** 18, 97]);
    const v1 = [...result.uploads.values()].map((u) => [...fromLanes(u.bitwidth[0]!, m1!)]);
    const v3 = [...result.uploads.values()].map((u) => [...fromLanes(u.modulus[0]!, m3!)]);
    expect(v1).toHaveLength(1000);
    // All elements of all uploads, and the first element across uploads (each upload masked afresh).
    expect(chiSquare(v1.flat(), m1!, 64)).toBeLessThan(chiSquareCritical(63));
    expect(chiSquare(v3.flat(), m3!, 97)).toBeLessThan(chiSquareCritical(96));
    expect(
      chiSquare(
        v1.map((v) => v[0]!),
        m1!,
        16,
      ),
    ).toBeLessThan(chiSquareCritical(15));
    expect(
      chiSquare(
        v3.map((v) => v[0]!),
        m3!,
        97,
      ),
    ).toBeLessThan(chiSquareCritical(96));
    // And the round still sums exactly.
    expect([...result.sums.bitwidth[0]!]).toEqual(new Array(size).fill(255 * n));
    expect([...result.sums.modulus[0]!]).toEqual(new Array(size).fill((5 * n) % 97));
  });
});
