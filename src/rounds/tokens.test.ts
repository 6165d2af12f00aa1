import { SignJWT } from 'jose';
import { AppError } from '../errors';
import { bearerToken, signTaskToken, verifyTaskToken, type TaskClaims } from './tokens';

const SECRET = 'test-secret-of-enough-length-0123456789';
const NOW = Date.UTC(2030, 0, 1);
const claims: TaskClaims = {
  plan: 'pabcdefghijkl',
  round: 2,
  attempt: 1,
  task: 'AAAAAAAAAAAAAAAAAAAAAA',
  device: 'hmac-of-device-c1',
  exp: NOW / 1000 + 300,
};

async function failure(p: Promise<unknown>): Promise<{ code: string; status: number; reason: string }> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof AppError)) throw e;
    return { code: e.code, status: e.status, reason: e.details[0]?.message ?? '' };
  }
  throw new Error('expected a failure');
}

describe('task tokens', () => {
  it('round-trips the claims', async () => {
    const token = await signTaskToken(SECRET, claims);
    await expect(verifyTaskToken(SECRET, token, NOW)).resolves.toEqual(claims);
  });

  it('is a HS256 JWT whose exp is the deadline', async () => {
    const token = await signTaskToken(SECRET, claims);
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header.alg).toBe('HS256');
    expect(payload).toMatchObject({ ...claims });
  });

  it.each([
    ['missing', undefined],
    ['missing', ''],
    ['malformed', 'not-a-jwt'],
    ['malformed', 'a.b.c'],
  ])('refuses a %s token (%p)', async (reason, token) => {
    await expect(failure(verifyTaskToken(SECRET, token, NOW))).resolves.toEqual({
      code: 'TOKEN_INVALID',
      status: 401,
      reason,
    });
  });

  it('refuses a token signed with another secret', async () => {
    const token = await signTaskToken('another-secret-0123456789', claims);
    expect((await failure(verifyTaskToken(SECRET, token, NOW))).reason).toBe('bad signature');
  });

  it('refuses a token whose payload was altered', async () => {
    const [h, , s] = (await signTaskToken(SECRET, claims)).split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims, task: 'B'.repeat(22) })).toString('base64url');
    expect((await failure(verifyTaskToken(SECRET, `${h}.${forged}.${s}`, NOW))).reason).toBe('bad signature');
  });

  it('refuses an expired token', async () => {
    const token = await signTaskToken(SECRET, claims);
    const r = await failure(verifyTaskToken(SECRET, token, (claims.exp + 1) * 1000));
    expect(r).toEqual({ code: 'TOKEN_INVALID', status: 401, reason: 'expired' });
  });

  it('refuses another algorithm and tokens without the task claims', async () => {
    const key = new TextEncoder().encode(SECRET);
    const hs512 = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS512' }).sign(key);
    expect((await failure(verifyTaskToken(SECRET, hs512, NOW))).reason).toBe('malformed');
    const bare = await new SignJWT({ plan: 'p' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(claims.exp)
      .sign(key);
    expect((await failure(verifyTaskToken(SECRET, bare, NOW))).reason).toBe('malformed');
    const noExp = await new SignJWT({ ...claims, exp: undefined })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(key);
    expect((await failure(verifyTaskToken(SECRET, noExp, NOW))).reason).toBe('malformed');
  });

  it('reads bearer tokens', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer  x')).toBe('x');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
