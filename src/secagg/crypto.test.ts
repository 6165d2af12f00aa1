import * as nodeCrypto from 'node:crypto';
import { appErrorOf, appErrorOfAsync } from '../app-error.jest';
import {
  SEALED_SHARE_BYTES,
  combineShares,
  newKeyPair,
  newSession,
  openShare,
  pairwiseSeed,
  publicKeyOf,
  sealShare,
  shareKey,
  splitSecret,
} from './crypto';

// An independent reading of the spec with Node's OpenSSL: X25519, HKDF-SHA256, AES-256-GCM.
const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
function nodeX25519(secretKey: Uint8Array, publicKey: Uint8Array): Buffer {
  const x = b64url(publicKey);
  const privateKey = nodeCrypto.createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: b64url(secretKey), x },
    format: 'jwk',
  });
  const peer = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
  return nodeCrypto.diffieHellman({ privateKey, publicKey: peer });
}
function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
function nodeHkdf(ikm: Buffer, session: Uint8Array, label: string, lo: number, hi: number): Uint8Array {
  const info = Buffer.concat([Buffer.from(label, 'utf8'), u32be(lo), u32be(hi)]);
  return new Uint8Array(nodeCrypto.hkdfSync('sha256', ikm, session, info, 32));
}

describe('key agreement', () => {
  const session = newSession();
  const a = newKeyPair();
  const b = newKeyPair();

  it('derives public keys as X25519 does', () => {
    const privateKey = nodeCrypto.createPrivateKey({
      key: { kty: 'OKP', crv: 'X25519', d: b64url(a.secretKey), x: b64url(a.publicKey) },
      format: 'jwk',
    });
    const x = nodeCrypto.createPublicKey(privateKey).export({ format: 'jwk' }).x;
    expect(x).toBe(b64url(a.publicKey));
    expect(publicKeyOf(a.secretKey)).toEqual(a.publicKey);
  });

  it('derives s_ij and k_ij by HKDF-SHA256 over X25519 as the spec says, symmetric in i and j', () => {
    const shared = nodeX25519(b.secretKey, a.publicKey);
    const seed = pairwiseSeed(session, a.secretKey, b.publicKey, 7, 3);
    expect(seed).toEqual(nodeHkdf(shared, session, 'roundhouse/secagg/v1/mask', 3, 7));
    expect(pairwiseSeed(session, b.secretKey, a.publicKey, 3, 7)).toEqual(seed);
    const key = shareKey(session, a.secretKey, b.publicKey, 3, 7);
    expect(key).toEqual(nodeHkdf(shared, session, 'roundhouse/secagg/v1/share', 3, 7));
    expect(shareKey(session, b.secretKey, a.publicKey, 7, 3)).toEqual(key);
    expect(key).not.toEqual(seed);
  });

  it('binds seeds to the session and the pair', () => {
    const seed = pairwiseSeed(session, a.secretKey, b.publicKey, 1, 2);
    expect(pairwiseSeed(newSession(), a.secretKey, b.publicKey, 1, 2)).not.toEqual(seed);
    expect(pairwiseSeed(session, a.secretKey, b.publicKey, 1, 3)).not.toEqual(seed);
  });

  it('refuses a low-order public key with SECAGG_BAD_MESSAGE', () => {
    const error = appErrorOf(() => pairwiseSeed(session, a.secretKey, new Uint8Array(32), 1, 2));
    expect(error.code).toBe('SECAGG_BAD_MESSAGE');
  });
});

describe('share envelopes', () => {
  const session = newSession();
  const a = newKeyPair();
  const b = newKeyPair();
  const key = shareKey(session, a.secretKey, b.publicKey, 4, 9);
  const shares = { s: nodeCrypto.randomBytes(33), b: nodeCrypto.randomBytes(33) };
  const sealed = sealShare(key, session, 4, 9, { s: new Uint8Array(shares.s), b: new Uint8Array(shares.b) });

  it('are nonce || AES-256-GCM(from || to || s share || b share) with the spec AAD', () => {
    expect(sealed).toHaveLength(SEALED_SHARE_BYTES);
    const decipher = nodeCrypto.createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.concat([Buffer.from('roundhouse/secagg/v1/share'), session, u32be(4), u32be(9)]));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plain = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
    expect(plain).toEqual(Buffer.concat([u32be(4), u32be(9), shares.s, shares.b]));
  });

  it('open to the shares sealed, and fresh nonces make two sealings differ', () => {
    const opened = openShare(key, session, 4, 9, sealed);
    expect([Buffer.from(opened.s), Buffer.from(opened.b)]).toEqual([shares.s, shares.b]);
    const again = sealShare(key, session, 4, 9, opened);
    expect(again).not.toEqual(sealed);
    expect(openShare(key, session, 4, 9, again)).toEqual(opened);
  });

  it.each([
    ['a flipped nonce bit', () => openShare(key, session, 4, 9, flip(sealed, 0))],
    ['a flipped ciphertext bit', () => openShare(key, session, 4, 9, flip(sealed, 40))],
    ['a flipped tag bit', () => openShare(key, session, 4, 9, flip(sealed, SEALED_SHARE_BYTES - 1))],
    ['a truncated envelope', () => openShare(key, session, 4, 9, sealed.subarray(1))],
    ['another session', () => openShare(key, newSession(), 4, 9, sealed)],
    ['the reverse direction', () => openShare(key, session, 9, 4, sealed)],
    ['another receiver', () => openShare(key, session, 4, 8, sealed)],
    [
      'another key',
      () => openShare(shareKey(session, a.secretKey, a.publicKey, 4, 9), session, 4, 9, sealed),
    ],
  ])('refuse %s with SECAGG_BAD_SHARE', (_, open) => {
    expect(appErrorOf(open).code).toBe('SECAGG_BAD_SHARE');
  });
});

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at]! ^= 1;
  return out;
}

describe('Shamir sharing', () => {
  const secret = newSession();

  it.each([
    [1, 1],
    [5, 1],
    [2, 2],
    [5, 3],
    [21, 11],
    [255, 128],
  ])('splits into %i shares of 33 bytes, any %i of which rebuild the secret', async (k, t) => {
    const shares = await splitSecret(secret, k, t);
    expect(shares).toHaveLength(k);
    expect(shares.every((s) => s.length === 33)).toBe(true);
    expect(new Set(shares.map((s) => s[32])).size).toBe(k);
    expect(await combineShares(shares, t)).toEqual(secret);
    expect(await combineShares(shares.slice(k - t), t)).toEqual(secret);
    expect(await combineShares([...shares].reverse(), t)).toEqual(secret);
  });

  it('needs the threshold: fewer shares are refused, and t - 1 shares say nothing of the secret', async () => {
    const shares = await splitSecret(secret, 5, 3);
    const error = await appErrorOfAsync(combineShares(shares.slice(0, 2), 3));
    expect(error.code).toBe('SECAGG_BELOW_THRESHOLD');
    expect(await combineShares(shares.slice(0, 2), 2)).not.toEqual(secret);
  });

  it('refuses repeated or malformed shares with SECAGG_BAD_SHARE', async () => {
    const shares = await splitSecret(secret, 5, 3);
    for (const bad of [
      [shares[0]!, shares[0]!, shares[1]!],
      [shares[0]!, shares[1]!, shares[2]!.subarray(1)],
    ]) {
      expect((await appErrorOfAsync(combineShares(bad, 3))).code).toBe('SECAGG_BAD_SHARE');
    }
  });

  it.each([
    [256, 2],
    [0, 0],
    [5, 0],
    [5, 6],
    [5, 2.5],
  ])('refuses %i shares with threshold %d', async (k, t) => {
    expect((await appErrorOfAsync(splitSecret(secret, k, t))).code).toBe('SECAGG_BAD_MESSAGE');
  });
});
