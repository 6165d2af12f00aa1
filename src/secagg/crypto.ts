/**
 * SecAgg+ primitives as SECAGG.md fixes them: X25519 key pairs, HKDF-SHA256 seeds and share keys bound to
 * the session and to the pair of indexes, AES-256-GCM share envelopes, and Shamir sharing over GF(256).
 * Only audited pure-JS libraries (noble, shamir-secret-sharing) and Uint8Array: the same code runs in Node
 * and in browsers, on plain-http origins too (no WebCrypto subtle).
 */
import { gcm } from '@noble/ciphers/aes';
import { x25519 } from '@noble/curves/ed25519';
import { hkdf } from '@noble/hashes/hkdf';
import { sha256 } from '@noble/hashes/sha2';
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils';
import { combine, split } from 'shamir-secret-sharing';
import { AppError } from '../errors';

/** Bytes of an X25519 key, a seed, a session id. */
export const KEY_BYTES = 32;
/** Bytes of one Shamir share of a 32-byte secret: the 32 y bytes, then the x coordinate. */
export const SHARE_BYTES = KEY_BYTES + 1;
/** The most shares a secret can be split into (x coordinates are the non-zero bytes). */
export const MAX_SHARES = 255;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const PLAINTEXT_BYTES = 8 + 2 * SHARE_BYTES;
/** Bytes of one sealed share envelope: nonce, then GCM's ciphertext and tag. */
export const SEALED_SHARE_BYTES = NONCE_BYTES + PLAINTEXT_BYTES + TAG_BYTES;

const MASK_INFO = 'roundhouse/secagg/v1/mask';
const SHARE_INFO = 'roundhouse/secagg/v1/share';
const utf8 = new TextEncoder();

/** A source of cryptographically random bytes; tests inject a seeded one to make statistics reproducible. */
export type RandomBytes = (length: number) => Uint8Array;

/** The default random source: noble's, over `crypto.getRandomValues`. */
export const secureRandomBytes: RandomBytes = (length) => nobleRandomBytes(length);

/** An X25519 key pair. */
export interface KeyPair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A fresh X25519 key pair (any 32 random bytes are a valid X25519 secret key). */
export function newKeyPair(random: RandomBytes = secureRandomBytes): KeyPair {
  const secretKey = random(KEY_BYTES);
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/** The X25519 public key of a secret key; the server checks a reconstructed s_sk against the advertised key. */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secretKey);
}

/** A fresh session id for one round attempt. */
export function newSession(random: RandomBytes = secureRandomBytes): Uint8Array {
  return random(KEY_BYTES);
}

/** The SecAgg+ pairwise mask seed s_ij; symmetric: i's (s_sk_i, s_pk_j) and j's (s_sk_j, s_pk_i) agree. */
export function pairwiseSeed(
  session: Uint8Array,
  secretKey: Uint8Array,
  peerPublicKey: Uint8Array,
  i: number,
  j: number,
): Uint8Array {
  return derive(MASK_INFO, session, secretKey, peerPublicKey, i, j);
}

/** The AES-256-GCM key k_ij for shares between i and j (both directions; nonces are random). */
export function shareKey(
  session: Uint8Array,
  secretKey: Uint8Array,
  peerPublicKey: Uint8Array,
  i: number,
  j: number,
): Uint8Array {
  return derive(SHARE_INFO, session, secretKey, peerPublicKey, i, j);
}

function derive(
  label: string,
  session: Uint8Array,
  secretKey: Uint8Array,
  peerPublicKey: Uint8Array,
  i: number,
  j: number,
): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(secretKey, peerPublicKey);
  } catch (e) {
    // noble refuses a low-order public key (the shared secret would be all zeros, known to everyone).
    throw new AppError('SECAGG_BAD_MESSAGE', `the public key of ${j} is not a usable X25519 key`, [], {
      cause: e,
    });
  }
  const info = concat(utf8.encode(label), u32be(Math.min(i, j)), u32be(Math.max(i, j)));
  return hkdf(sha256, shared, session, info, KEY_BYTES);
}

/** The two shares one client sends another: of its mask secret key s_sk and of its self-mask seed b. */
export interface SharePair {
  readonly s: Uint8Array;
  readonly b: Uint8Array;
}

/** Encrypts the shares `from` sends `to`; the envelope is bound to the session and both indexes. */
export function sealShare(
  key: Uint8Array,
  session: Uint8Array,
  from: number,
  to: number,
  shares: SharePair,
  random: RandomBytes = secureRandomBytes,
): Uint8Array {
  if (shares.s.length !== SHARE_BYTES || shares.b.length !== SHARE_BYTES) {
    throw new Error(`shares must have ${SHARE_BYTES} bytes, got ${shares.s.length} and ${shares.b.length}`);
  }
  const nonce = random(NONCE_BYTES);
  const plaintext = concat(u32be(from), u32be(to), shares.s, shares.b);
  return concat(nonce, gcm(key, nonce, shareAad(session, from, to)).encrypt(plaintext));
}

/**
 * Decrypts the shares `from` sent `to`; throws SECAGG_BAD_SHARE for an envelope that was altered, sealed
 * under another key or session, or addressed to another pair.
 */
export function openShare(
  key: Uint8Array,
  session: Uint8Array,
  from: number,
  to: number,
  sealed: Uint8Array,
): SharePair {
  const bad = (why: string, cause?: unknown): AppError =>
    new AppError('SECAGG_BAD_SHARE', `the share envelope from ${from} to ${to} ${why}`, [], { cause });
  if (sealed.length !== SEALED_SHARE_BYTES)
    throw bad(`has ${sealed.length} bytes, not ${SEALED_SHARE_BYTES}`);
  let plaintext: Uint8Array;
  try {
    plaintext = gcm(key, sealed.subarray(0, NONCE_BYTES), shareAad(session, from, to)).decrypt(
      sealed.subarray(NONCE_BYTES),
    );
  } catch (e) {
    throw bad('fails authentication (altered, or not sealed for this session and pair)', e);
  }
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  // The AAD already binds the pair; the copy inside the plaintext is the spec's, checked for completeness.
  if (view.getUint32(0) !== from || view.getUint32(4) !== to) throw bad('names another pair inside');
  return {
    s: plaintext.slice(8, 8 + SHARE_BYTES),
    b: plaintext.slice(8 + SHARE_BYTES, 8 + 2 * SHARE_BYTES),
  };
}

function shareAad(session: Uint8Array, from: number, to: number): Uint8Array {
  return concat(utf8.encode(SHARE_INFO), session, u32be(from), u32be(to));
}

/** Checks Shamir parameters: 1 <= threshold <= shares <= 255. */
export function checkSharing(shares: number, threshold: number): void {
  if (!Number.isInteger(shares) || shares < 1 || shares > MAX_SHARES) {
    throw new AppError(
      'SECAGG_BAD_MESSAGE',
      `a secret can be split into 1 to ${MAX_SHARES} shares (GF(256) has ${MAX_SHARES} non-zero x coordinates), not ${shares}`,
    );
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > shares) {
    throw new AppError('SECAGG_BAD_MESSAGE', `threshold ${threshold} is not in [1, ${shares}]`);
  }
}

/** Splits a 32-byte secret into `shares` Shamir shares of 33 bytes, any `threshold` of which rebuild it. */
export async function splitSecret(
  secret: Uint8Array,
  shares: number,
  threshold: number,
): Promise<Uint8Array[]> {
  checkSharing(shares, threshold);
  if (secret.length !== KEY_BYTES) throw new Error(`secrets have ${KEY_BYTES} bytes, got ${secret.length}`);
  // The library wants a threshold of at least 2; a threshold of 1 is a constant polynomial: every share is
  // the secret itself, under its own x coordinate (so the library can still combine several of them).
  if (threshold === 1) return Array.from({ length: shares }, (_, m) => concat(secret, Uint8Array.of(m + 1)));
  // The library checks `constructor === Uint8Array`: a Buffer or a subclass would be refused, a copy is not.
  return split(new Uint8Array(secret), shares, threshold);
}

/**
 * Rebuilds a secret from the first `threshold` of `shares`. Throws SECAGG_BELOW_THRESHOLD when there are
 * fewer (fewer shares give a wrong secret, never an error), SECAGG_BAD_SHARE for malformed or repeated ones.
 */
export async function combineShares(shares: readonly Uint8Array[], threshold: number): Promise<Uint8Array> {
  if (shares.length < threshold) {
    throw new AppError('SECAGG_BELOW_THRESHOLD', `${shares.length} shares, the threshold is ${threshold}`);
  }
  const used = shares.slice(0, threshold);
  const xs = new Set<number>();
  for (const share of used) {
    if (share.length !== SHARE_BYTES || share[KEY_BYTES] === 0 || xs.has(share[KEY_BYTES]!)) {
      throw new AppError('SECAGG_BAD_SHARE', `a share is malformed or repeats an x coordinate`);
    }
    xs.add(share[KEY_BYTES]!);
  }
  if (threshold === 1) return used[0]!.slice(0, KEY_BYTES);
  return combine(used.map((s) => new Uint8Array(s)));
}

/** Big-endian u32, as the spec writes indexes into keys, AADs and plaintexts. */
function u32be(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`index ${n} is not a u32`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
