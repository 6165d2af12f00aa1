import { chacha20 } from '@noble/ciphers/chacha';
import { hkdf } from '@noble/hashes/hkdf';
import { sha256 } from '@noble/hashes/sha2';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils';
import { AppError } from '../errors';
import { MAX_COHORT } from './params';

/**
 * The SecAgg+ secret-sharing graph, after FCP's SecretSharingHararyGraph (fcp/secagg/server): the n nodes sit on a
 * ring, each linked to the degree / 2 nearest on either side and to itself (degree odd), and the ring order is a
 * uniformly random permutation of the node ids, so that the server cannot place colluding clients next to a
 * victim. The permutation is a pure function of (n, seed): every process that knows the round's 32-byte graph seed
 * builds the same graph, holding only the permutation and its inverse (O(n) memory).
 */
export interface SecretSharingGraph {
  readonly n: number;
  readonly degree: number;
  /** The neighbourhood of i: every node holding a share of i's secrets, i itself included, sorted ascending. */
  neighbourhood(i: number): readonly number[];
  areNeighbours(i: number, j: number): boolean;
}

/** Bytes in a graph seed. */
export const GRAPH_SEED_BYTES = 32;

// Binds the permutation to its use and to n, so that a seed reused elsewhere (or for another n) yields an
// unrelated stream.
const GRAPH_INFO = utf8ToBytes('roundhouse/secagg/v1/graph');
const MAX_BLOCK_WORDS = 1024;
const TWO_32 = 2 ** 32;

function fail(message: string): never {
  throw new AppError('BAD_REQUEST', message);
}

function checkArguments(n: number, degree: number, seed: Uint8Array): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_COHORT) {
    fail(`secagg graph: n must be an integer in [1, ${MAX_COHORT}], got ${n}`);
  }
  if (!Number.isInteger(degree) || degree < 1 || (degree < n && degree % 2 === 0)) {
    fail(
      `secagg graph: degree must be an odd integer in [1, n = ${n}], or >= n for the complete graph, got ${degree}`,
    );
  }
  if (!(seed instanceof Uint8Array) || seed.length !== GRAPH_SEED_BYTES) {
    const got = seed instanceof Uint8Array ? `${seed.length} bytes` : typeof seed;
    fail(`secagg graph: seed must be a Uint8Array of ${GRAPH_SEED_BYTES} bytes, got ${got}`);
  }
}

/**
 * Uniform 32-bit words: the ChaCha20 keystream of `key` (12-byte zero nonce, block counter from 0), read as
 * little-endian words in order, made a block at a time.
 */
function words(key: Uint8Array, wanted: number): () => number {
  const blockWords = Math.min(MAX_BLOCK_WORDS, Math.ceil(wanted / 16) * 16);
  const zeros = new Uint8Array(blockWords * 4);
  const block = new Uint8Array(zeros.length);
  const view = new DataView(block.buffer);
  const nonce = new Uint8Array(12);
  let counter = 0;
  let next = blockWords;
  return () => {
    if (next === blockWords) {
      chacha20(key, nonce, zeros, block, counter);
      counter += block.length / 64;
      next = 0;
    }
    return view.getUint32(4 * next++, true);
  };
}

/** A uniform integer in [0, bound), bound <= 2^32: words at or above the largest multiple of bound are redrawn,
 * so that `u % bound` carries no modulo bias. */
function uniformBelow(bound: number, next: () => number): number {
  const limit = TWO_32 - (TWO_32 % bound);
  for (;;) {
    const u = next();
    if (u < limit) return u % bound;
  }
}

/**
 * The graph's ring order: entry p is the node id at ring place p. A Fisher-Yates shuffle of 0..n-1 driven by a
 * ChaCha20 stream keyed by HKDF-SHA256(ikm = seed, info = "roundhouse/secagg/v1/graph" || u32be(n)).
 */
export function ringOrder(n: number, seed: Uint8Array): Uint32Array {
  checkArguments(n, 1, seed);
  const info = new Uint8Array(4);
  new DataView(info.buffer).setUint32(0, n);
  const next = words(hkdf(sha256, seed, undefined, concatBytes(GRAPH_INFO, info), 32), n);
  const order = new Uint32Array(n);
  for (let p = 0; p < n; p++) order[p] = p;
  for (let p = n - 1; p > 0; p--) {
    const q = uniformBelow(p + 1, next);
    const held = order[p]!;
    order[p] = order[q]!;
    order[q] = held;
  }
  return order;
}

function checkNode(graph: SecretSharingGraph, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= graph.n) {
    fail(`secagg graph: node must be an integer in [0, ${graph.n - 1}], got ${i}`);
  }
}

class HararyGraph implements SecretSharingGraph {
  private readonly half: number;
  /** The ring place of each node id: the inverse of `order`. */
  private readonly place: Uint32Array;

  constructor(
    readonly n: number,
    readonly degree: number,
    private readonly order: Uint32Array,
  ) {
    this.half = (degree - 1) / 2;
    this.place = new Uint32Array(n);
    for (let p = 0; p < n; p++) this.place[order[p]!] = p;
  }

  neighbourhood(i: number): readonly number[] {
    checkNode(this, i);
    const { n, half, order } = this;
    const at = this.place[i]!;
    const members: number[] = [];
    for (let d = -half; d <= half; d++) members.push(order[(at + d + n) % n]!);
    return members.sort((a, b) => a - b);
  }

  areNeighbours(i: number, j: number): boolean {
    checkNode(this, i);
    checkNode(this, j);
    const apart = Math.abs(this.place[i]! - this.place[j]!);
    return Math.min(apart, this.n - apart) <= this.half;
  }
}

class CompleteGraph implements SecretSharingGraph {
  readonly degree: number;

  constructor(readonly n: number) {
    this.degree = n;
  }

  neighbourhood(i: number): readonly number[] {
    checkNode(this, i);
    return Array.from({ length: this.n }, (_, j) => j);
  }

  areNeighbours(i: number, j: number): boolean {
    checkNode(this, i);
    checkNode(this, j);
    return true;
  }
}

/**
 * The secret-sharing graph for n nodes of the given degree (odd, the node itself included) under a 32-byte seed;
 * the complete graph (degree n, as FCP's SecretSharingCompleteGraph) when degree >= n.
 */
export function hararyGraph(n: number, degree: number, seed: Uint8Array): SecretSharingGraph {
  checkArguments(n, degree, seed);
  if (degree >= n) return new CompleteGraph(n);
  return new HararyGraph(n, degree, ringOrder(n, seed));
}
