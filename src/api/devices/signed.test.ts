import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { loadConfig } from '../../config';
import { appErrorOfAsync } from '../../app-error.jest';
import { SignedVerifier } from './signed';

const NOW = Date.UTC(2031, 0, 1);
const T = NOW / 1000;

let key: KeyLike;
let verifier: SignedVerifier;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
  verifier = new SignedVerifier({ jwks: { keys: [jwk] }, maxLifetimeS: 600, now: () => NOW });
});

function jwt(claims: { sub?: string; iat?: number; exp?: number }): Promise<string> {
  const j = new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' });
  if (claims.sub !== undefined) j.setSubject(claims.sub);
  if (claims.iat !== undefined) j.setIssuedAt(claims.iat);
  if (claims.exp !== undefined) j.setExpirationTime(claims.exp);
  return j.sign(key);
}

async function reason(p: Promise<unknown>): Promise<[number, string, string]> {
  const e = await appErrorOfAsync(p);
  return [e.status, e.code, e.details[0]?.message ?? ''];
}

describe('the signed device verifier', () => {
  it('returns the sub of a valid credential', async () => {
    await expect(
      verifier.verify(await jwt({ sub: 'dev-1', iat: T, exp: T + 60 }), 'authorization'),
    ).resolves.toBe('dev-1');
  });

  it('refuses credentials without sub, iat or exp, issued in the future, or living too long', async () => {
    const bad = 'DEVICE_CREDENTIAL_INVALID';
    expect(await reason(verifier.verify(await jwt({ iat: T, exp: T + 60 }), 'a'))).toEqual([
      401,
      bad,
      'malformed',
    ]);
    expect(await reason(verifier.verify(await jwt({ sub: 'd', exp: T + 60 }), 'a'))).toEqual([
      401,
      bad,
      'malformed',
    ]);
    expect(await reason(verifier.verify(await jwt({ sub: 'd', iat: T }), 'a'))).toEqual([
      401,
      bad,
      'malformed',
    ]);
    expect(await reason(verifier.verify(await jwt({ sub: 'd', iat: T + 3600, exp: T + 3660 }), 'a'))).toEqual(
      [401, bad, 'not yet valid'],
    );
    expect(await reason(verifier.verify(await jwt({ sub: 'd', iat: T, exp: T + 601 }), 'a'))).toEqual([
      401,
      bad,
      'lifetime too long',
    ]);
    expect(
      await reason(verifier.verify(await jwt({ sub: 'x'.repeat(257), iat: T, exp: T + 60 }), 'a')),
    ).toEqual([401, bad, 'malformed']);
    // jose checks that "sub" is present, not its type: a number must not reach the device HMAC.
    const numeric = await new SignJWT({ sub: 42 } as unknown as Record<string, unknown>)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuedAt(T)
      .setExpirationTime(T + 60)
      .sign(key);
    expect(await reason(verifier.verify(numeric, 'a'))).toEqual([401, bad, 'malformed']);
    expect(await reason(verifier.verify('x'.repeat(5000), 'a'))).toEqual([401, bad, 'malformed']);
  });

  it('answers 503 when a remote key set cannot be fetched', async () => {
    const remote = new SignedVerifier({
      jwks: new URL('http://127.0.0.1:9/jwks.json'),
      maxLifetimeS: 600,
      now: () => NOW,
    });
    expect(await reason(remote.verify(await jwt({ sub: 'd', iat: T, exp: T + 60 }), 'a'))).toEqual([
      503,
      'NOT_READY',
      '',
    ]);
  });

  it('is configured from DEVICE_* variables, refusing incomplete or unreadable settings', () => {
    expect(() => loadConfig({ DEVICE_AUTH: 'maybe' })).toThrow(/DEVICE_AUTH/);
    expect(() => loadConfig({ DEVICE_AUTH: 'signed' })).toThrow(/DEVICE_JWKS_FILE/);
    expect(() =>
      loadConfig({ DEVICE_AUTH: 'signed', DEVICE_JWKS_FILE: 'a', DEVICE_JWKS_URL: 'https://x/jwks' }),
    ).toThrow(/exactly one/);
    expect(() => loadConfig({ DEVICE_AUTH: 'signed', DEVICE_JWKS_URL: 'file:///etc/jwks' })).toThrow(/https/);
    expect(() => loadConfig({ DEVICE_AUTH: 'signed', DEVICE_JWKS_URL: 'http://keys/jwks' })).toThrow(/https/);
    expect(() => loadConfig({ DEVICE_AUTH: 'signed', DEVICE_JWKS_URL: 'https://keys/jwks' })).toThrow(
      /DEVICE_JWT_AUDIENCE/,
    );
    expect(loadConfig({}).devices).toMatchObject({
      auth: 'anonymous',
      anonymousRateLimit: 600,
      jwtMaxLifetimeS: 3600,
    });

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-jwks-'));
    try {
      const file = path.join(dir, 'jwks.json');
      fs.writeFileSync(file, '{"keys": []}');
      const config = loadConfig({ DEVICE_AUTH: 'signed', DEVICE_JWKS_FILE: file, DEVICE_JWT_AUDIENCE: 'a' });
      expect(() => SignedVerifier.fromConfig(config.devices)).toThrow(/not a JWKS/);
      expect(() =>
        SignedVerifier.fromConfig({ ...config.devices, jwksFile: path.join(dir, 'none') }),
      ).toThrow(/DEVICE_JWKS_FILE/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
