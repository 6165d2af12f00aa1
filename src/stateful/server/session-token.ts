/**
 * Session tokens (docs/stateful.md, "The session protocol"): the signed permission to act as one session of
 * one program. JWTs with HS256 over `TOKEN_SECRET`, like task tokens, so that any API replica serves any
 * session. A session token is no task token (it lacks the task claims, and a task token lacks `session`):
 * each contribution still needs the single-use task token its `contribute` request carries.
 */
import { createHmac } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { tokenInvalid, tokenKey } from '../../rounds/tokens';

export interface SessionClaims {
  readonly program: string;
  readonly session: string;
  /**
   * The device's binding to the program, `sessionBinding(secret, program, device id)`: the server keeps no
   * device id in a session, only this, and checks a device credential against it.
   */
  readonly device: string;
}

/** How long a session token is good for; the session's own state (live or ended) is checked on every use. */
const SESSION_TOKEN_S = 7 * 24 * 3600;

export async function signSessionToken(
  secret: string,
  claims: SessionClaims,
  now = Date.now(),
): Promise<string> {
  return new SignJWT({
    program: claims.program,
    session: claims.session,
    device: claims.device,
    typ: 'session',
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(now / 1000) + SESSION_TOKEN_S)
    .sign(tokenKey(secret));
}

/** Verifies a session token; throws TOKEN_INVALID (401) naming why. */
export async function verifySessionToken(
  secret: string,
  token: string | undefined,
  now = Date.now(),
): Promise<SessionClaims> {
  if (!token) throw tokenInvalid('missing', 'a session token is required (Authorization: Bearer <token>)');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, tokenKey(secret), {
      algorithms: ['HS256'],
      currentDate: new Date(now),
      requiredClaims: ['exp'],
    }));
  } catch (e) {
    if (e instanceof errors.JWTExpired) throw tokenInvalid('expired', 'the session token has expired');
    if (e instanceof errors.JWSSignatureVerificationFailed) {
      throw tokenInvalid('bad signature', 'the session token was not signed by this server');
    }
    if (e instanceof errors.JOSEError) throw tokenInvalid('malformed', 'the session token is malformed');
    throw e;
  }
  const { program, session, device, typ } = payload;
  if (
    typ !== 'session' ||
    typeof program !== 'string' ||
    typeof session !== 'string' ||
    typeof device !== 'string'
  ) {
    throw tokenInvalid('malformed', 'the token is not a session token');
  }
  return { program, session, device };
}

/**
 * HMAC(TOKEN_SECRET, program, device id): what a session stores and its token carries in place of the device
 * id, as a round stores HMAC(round key, device id). One device has one binding per program.
 */
export function sessionBinding(secret: string, program: string, device: string): string {
  return createHmac('sha256', secret).update(`session-device\n${program}\n${device}`).digest('base64url');
}
