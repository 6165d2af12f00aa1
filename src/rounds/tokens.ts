/**
 * Task tokens: the signed permission to upload one result for one task (docs/server.md, "Protocol").
 * JWTs with HS256 over `TOKEN_SECRET`, so that any API replica can verify a token another one issued.
 * Single use is not a token property: the upload script records the upload's hash on the task atomically.
 */
import { errors, jwtVerify, SignJWT } from 'jose';
import { AppError } from '../errors';

/**
 * The claims of a task token; `exp` is the round's reporting deadline in unix seconds as it was at the
 * assignment (a resume moves the round's deadline later: see {@link verifyTaskToken}).
 */
export interface TaskClaims {
  readonly plan: string;
  readonly round: number;
  readonly attempt: number;
  readonly task: string;
  /**
   * The device binding: HMAC(round key, device id) of the device the task was assigned to, never the raw id.
   * The upload presents the device again and the server recomputes it (docs/server.md, "Devices").
   */
  readonly device: string;
  readonly exp: number;
}

/** Why a token was refused; shown to the client in the error's details. */
export type TokenFailure = 'missing' | 'malformed' | 'bad signature' | 'expired';

const ALG = 'HS256';
const encoder = new TextEncoder();

/** The HS256 key of `TOKEN_SECRET` (task and session tokens share it). */
export function tokenKey(secret: string): Uint8Array {
  if (secret.length === 0) throw new Error('the task token secret is empty');
  return encoder.encode(secret);
}

/** TOKEN_INVALID naming why, in the details. */
export function tokenInvalid(reason: TokenFailure, message: string): AppError {
  return new AppError('TOKEN_INVALID', message, [{ path: 'authorization', message: reason }]);
}

/** Signs a task token. `claims.exp` is unix seconds (the reporting deadline). */
export async function signTaskToken(secret: string, claims: TaskClaims): Promise<string> {
  return new SignJWT({
    plan: claims.plan,
    round: claims.round,
    attempt: claims.attempt,
    task: claims.task,
    device: claims.device,
  })
    .setProtectedHeader({ alg: ALG, typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(claims.exp)
    .sign(tokenKey(secret));
}

/**
 * Verifies a task token and returns its claims; throws AppError TOKEN_INVALID (401) whose details name the
 * reason: missing, malformed (not a JWT, another algorithm, claims of the wrong type), bad signature,
 * expired. `now` (ms) is for tests. A token past its `exp` is still valid while `validUntil` (asked only
 * then, with the verified claims) answers a later time: the round's current reporting deadline, which a
 * pause moves later, so that a client assigned before a long pause may still upload after the resume.
 */
export async function verifyTaskToken(
  secret: string,
  token: string | undefined,
  now: number = Date.now(),
  validUntil?: (claims: TaskClaims) => Promise<number | undefined>,
): Promise<TaskClaims> {
  if (!token) throw tokenInvalid('missing', 'a task token is required (Authorization: Bearer <token>)');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, tokenKey(secret), {
      algorithms: [ALG],
      currentDate: new Date(now),
      requiredClaims: ['exp'],
    }));
  } catch (e) {
    if (e instanceof errors.JWTExpired) {
      // Thrown only after the signature was verified, so its payload is the server's own.
      const claims = validUntil && taskClaims(e.payload);
      const until = claims && (await validUntil(claims));
      if (claims && until !== undefined && now < until) return claims;
      throw tokenInvalid('expired', 'the task token has expired');
    }
    if (e instanceof errors.JWSSignatureVerificationFailed) {
      throw tokenInvalid('bad signature', 'the task token was not signed by this server');
    }
    if (e instanceof errors.JOSEError) throw tokenInvalid('malformed', 'the task token is malformed');
    throw e;
  }
  const claims = taskClaims(payload);
  if (!claims) throw tokenInvalid('malformed', 'the task token lacks the task claims');
  return claims;
}

/** The task claims of a verified payload, undefined when any is missing or of the wrong type. */
function taskClaims(payload: Record<string, unknown>): TaskClaims | undefined {
  const { plan, round, attempt, task, device, exp } = payload;
  if (
    typeof plan !== 'string' ||
    typeof task !== 'string' ||
    typeof device !== 'string' ||
    !isPositiveInt(round) ||
    !isPositiveInt(attempt) ||
    typeof exp !== 'number'
  ) {
    return undefined;
  }
  return { plan, round, attempt, task, device, exp };
}

function isPositiveInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
