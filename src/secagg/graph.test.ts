import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2';
import { utf8ToBytes } from '@noble/hashes/utils';
import { AppError } from '../errors';
import { GRAPH_SEED_BYTES, hararyGraph, ringOrder, SecretSharingGraph } from './graph';

// Fixed seeds keep the statistical tests deterministic: each passes or fails once for all runs, never by chance.
const seedOf = (label: string): Uint8Array => sha256(utf8ToBytes(label));

const everyNeighbourhood = (g: SecretSharingGraph): (readonly number[])[] =>
  Array.from({ length: g.n }, (_, i) => g.neighbourhood(i));

/** Pearson's chi-square statistic of observed counts against a uniform expectation. */
function chiSquare(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
}

describe('hararyGraph', () => {
  const shapes: [number, number][] = [
    [2, 1],
    [5, 3],
    [10, 5],
    [10, 9],
    [11, 9],
    [50, 21],
    [101, 7],
  ];

  it.each(shapes)(
    'n=%d degree=%d: neighbourhoods are sorted, hold i and exactly degree nodes',
    (n, degree) => {
      const g = hararyGraph(n, degree, randomBytes(GRAPH_SEED_BYTES));
      expect({ n: g.n, degree: g.degree }).toEqual({ n, degree });
      for (let i = 0; i < n; i++) {
        const members = g.neighbourhood(i);
        expect(members).toHaveLength(degree);
        expect(new Set(members).size).toBe(degree);
        expect(members).toContain(i);
        expect(members).toEqual([...members].sort((a, b) => a - b));
        expect(members.every((j) => Number.isInteger(j) && j >= 0 && j < n)).toBe(true);
      }
    },
  );

  it.each(shapes)('n=%d degree=%d: j is in N(i) iff i is in N(j), as areNeighbours says', (n, degree) => {
    const g = hararyGraph(n, degree, randomBytes(GRAPH_SEED_BYTES));
    const hoods = everyNeighbourhood(g).map((members) => new Set(members));
    const disagreements: number[][] = [];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const inI = hoods[i]!.has(j);
        if (hoods[j]!.has(i) !== inI || g.areNeighbours(i, j) !== inI) disagreements.push([i, j]);
      }
    }
    expect(disagreements).toEqual([]);
  });

  it('is a ring with each node linked to its degree / 2 nearest on both sides', () => {
    // Degree 3: the links other than self edges form one cycle through all n nodes.
    const n = 40;
    const g = hararyGraph(n, 3, seedOf('ring'));
    const seen = [0];
    let [previous, current] = [0, g.neighbourhood(0).find((j) => j !== 0)!];
    while (current !== 0) {
      seen.push(current);
      const onward = g.neighbourhood(current).filter((j) => j !== current && j !== previous);
      expect(onward).toHaveLength(1);
      [previous, current] = [current, onward[0]!];
    }
    expect(new Set(seen).size).toBe(n);
    // Degree 7 on the same seed: the nodes within 3 places along that cycle.
    const wide = hararyGraph(n, 7, seedOf('ring'));
    for (let p = 0; p < n; p++) {
      const around = [-3, -2, -1, 0, 1, 2, 3].map((d) => seen[(p + d + n) % n]!);
      expect(wide.neighbourhood(seen[p]!)).toEqual(around.sort((a, b) => a - b));
    }
  });

  it('builds the same graph from the same seed, and another from another seed', () => {
    const seed = randomBytes(GRAPH_SEED_BYTES);
    const first = everyNeighbourhood(hararyGraph(200, 11, seed));
    expect(everyNeighbourhood(hararyGraph(200, 11, Uint8Array.from(seed)))).toEqual(first);
    const flipped = Uint8Array.from(seed);
    flipped[31]! ^= 1;
    expect(everyNeighbourhood(hararyGraph(200, 11, flipped))).not.toEqual(first);
    expect(ringOrder(200, seed)).toEqual(ringOrder(200, seed));
    expect(ringOrder(200, seed)).not.toEqual(ringOrder(200, flipped));
  });

  it('follows the documented derivation: HKDF-SHA256 key, ChaCha20 words, Fisher-Yates with rejection', () => {
    // Rebuilt with node's own HKDF and ChaCha20 (IV = u32le counter || 12-byte nonce), not noble's.
    const n = 300;
    const seed = seedOf('derivation');
    const info = Buffer.concat([Buffer.from('roundhouse/secagg/v1/graph'), Buffer.from([0, 0, 1, 44])]);
    const key = Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), info, 32));
    const stream = createCipheriv('chacha20', key, Buffer.alloc(16)).update(Buffer.alloc(4 * 4 * n));
    let read = 0;
    const order = Array.from({ length: n }, (_, p) => p);
    for (let p = n - 1; p > 0; p--) {
      const bound = p + 1;
      let u = stream.readUInt32LE(4 * read++);
      while (u >= 2 ** 32 - (2 ** 32 % bound)) u = stream.readUInt32LE(4 * read++);
      [order[p], order[u % bound]] = [order[u % bound]!, order[p]!];
    }
    expect([...ringOrder(n, seed)]).toEqual(order);
  });

  it('orders the ring by a permutation of 0..n-1', () => {
    const order = ringOrder(1000, seedOf('permutation'));
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  // 99th percentiles of the chi-square distribution (7 and 23 degrees of freedom), from the standard tables.
  const CHI2_99 = { 7: 18.475, 23: 41.638 };

  it('places node 0 uniformly on the ring (chi-square over 4000 seeds, 1%)', () => {
    const n = 8;
    const counts = new Array<number>(n).fill(0);
    for (let k = 0; k < 4000; k++) counts[ringOrder(n, seedOf(`place ${k}`)).indexOf(0)]! += 1;
    expect(chiSquare(counts)).toBeLessThan(CHI2_99[7]);
  });

  it('draws all 24 orders of 4 nodes uniformly (chi-square over 4800 seeds, 1%)', () => {
    const counts = new Map<string, number>();
    for (let k = 0; k < 4800; k++) {
      const key = ringOrder(4, seedOf(`order ${k}`)).join();
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    expect(chiSquare([...counts.values()])).toBeLessThan(CHI2_99[23]);
  });

  it.each([
    [5, 5],
    [6, 6],
    [6, 7],
    [1, 1],
  ])('n=%d degree=%d: the complete graph, degree n', (n, degree) => {
    const g = hararyGraph(n, degree, seedOf('complete'));
    const all = Array.from({ length: n }, (_, j) => j);
    expect({ n: g.n, degree: g.degree }).toEqual({ n, degree: n });
    for (let i = 0; i < n; i++) {
      expect(g.neighbourhood(i)).toEqual(all);
      for (let j = 0; j < n; j++) expect(g.areNeighbours(i, j)).toBe(true);
    }
  });

  it.each([
    [0, 1, 32, 'n must be an integer in [1, 1000000], got 0'],
    [2.5, 1, 32, 'got 2.5'],
    [1_000_001, 1, 32, 'got 1000001'],
    [10, 4, 32, 'degree must be an odd integer in [1, n = 10], or >= n for the complete graph, got 4'],
    [10, 0, 32, 'got 0'],
    [10, 3.5, 32, 'got 3.5'],
    [10, 3, 16, 'seed must be a Uint8Array of 32 bytes, got 16 bytes'],
  ])('n=%p degree=%p seed of %p bytes throws a BAD_REQUEST', (n, degree, seedBytes, message) => {
    const build = (): SecretSharingGraph => hararyGraph(n, degree, new Uint8Array(seedBytes));
    expect(build).toThrow(AppError);
    expect(build).toThrow(message);
  });

  it('refuses a seed that is not bytes, and nodes outside the graph', () => {
    expect(() => hararyGraph(10, 3, 'x'.repeat(32) as unknown as Uint8Array)).toThrow('got string');
    const g = hararyGraph(10, 3, seedOf('nodes'));
    expect(() => g.neighbourhood(10)).toThrow('node must be an integer in [0, 9], got 10');
    expect(() => g.neighbourhood(-1)).toThrow('got -1');
    expect(() => g.areNeighbours(0, 1.5)).toThrow('got 1.5');
    expect(() => hararyGraph(3, 3, seedOf('nodes')).areNeighbours(3, 0)).toThrow('in [0, 2], got 3');
  });
});
