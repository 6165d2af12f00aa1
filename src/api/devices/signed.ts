/**
 * `DEVICE_AUTH=signed`: a device proves itself with a short-lived JWT that the operator's own app backend
 * issues after whatever attestation it trusts (Play Integrity, App Attest, a login), asserting the device id
 * in `sub`. Only asymmetric algorithms (ES256, EdDSA) are accepted, so the server holds public keys only and
 * `alg: none` or HS256 tokens are refused whatever their content.
 */
import * as fs from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose';
import type { DeviceConfig } from '../../config';
import { AppError } from '../../errors';
import {
  credentialInvalid,
  MAX_CREDENTIAL_LENGTH,
  type Admission,
  type DeviceCredentialFailure,
  type DeviceVerifier,
} from './verifier';

/** The algorithms a device credential may use. */
export const DEVICE_JWT_ALGORITHMS = ['ES256', 'EdDSA'] as const;

/** Clock skew allowed between the issuer and this server, in seconds. */
export const DEVICE_JWT_CLOCK_SKEW_S = 30;

/** Longest `sub` accepted as a device id. */
const MAX_SUB_LENGTH = 256;

type KeySource = Parameters<typeof jwtVerify>[1];

/** Options of {@link SignedVerifier}. */
export interface SignedOptions {
  /** The issuer's public keys: a JWKS (file contents) or a URL serving one. */
  readonly jwks: JSONWebKeySet | URL;
  readonly issuer?: string;
  readonly audience?: string;
  /** Longest `exp - iat`, in seconds. */
  readonly maxLifetimeS: number;
  /** The clock in ms (tests). */
  readonly now?: () => number;
}

/** The signed verifier; see the module comment. */
export class SignedVerifier implements DeviceVerifier {
  readonly mode = 'signed';
  private readonly keys: KeySource;
  private readonly now: () => number;

  constructor(private readonly options: SignedOptions) {
    this.keys =
      options.jwks instanceof URL ? createRemoteJWKSet(options.jwks) : createLocalJWKSet(options.jwks);
    this.now = options.now ?? Date.now;
  }

  /** Reads `DEVICE_JWKS_FILE` (now, so that a bad file stops the start) or uses `DEVICE_JWKS_URL`. */
  static fromConfig(config: DeviceConfig): SignedVerifier {
    let jwks: JSONWebKeySet | URL;
    if (config.jwksUrl) {
      jwks = new URL(config.jwksUrl);
    } else {
      const file = config.jwksFile ?? '';
      let parsed: unknown;
      try {
        parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        throw new Error(`DEVICE_JWKS_FILE ${file}: ${e instanceof Error ? e.message : String(e)}`);
      }
      const keys = (parsed as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(keys) || keys.length === 0) {
        throw new Error(`DEVICE_JWKS_FILE ${file}: not a JWKS ({"keys": [...]} with at least one key)`);
      }
      jwks = parsed as JSONWebKeySet;
    }
    return new SignedVerifier({
      jwks,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      maxLifetimeS: config.jwtMaxLifetimeS,
    });
  }

  admit(): Promise<Admission> {
    // A signed credential is the admission: the issuer rate-limits what it signs.
    return Promise.resolve({ allowed: true });
  }

  async verify(credential: string | undefined, where: string): Promise<string> {
    const fail = (reason: DeviceCredentialFailure, message: string): AppError =>
      credentialInvalid(reason, message, where);
    if (!credential) throw fail('missing', 'a device credential is required (a JWT from the app backend)');
    if (credential.length > MAX_CREDENTIAL_LENGTH)
      throw fail('malformed', 'the device credential is too long');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(credential, this.keys, {
        algorithms: [...DEVICE_JWT_ALGORITHMS],
        issuer: this.options.issuer,
        audience: this.options.audience,
        requiredClaims: ['sub', 'exp', 'iat'],
        clockTolerance: DEVICE_JWT_CLOCK_SKEW_S,
        currentDate: new Date(this.now()),
      }));
    } catch (e) {
      throw this.refusal(e, fail);
    }
    const { sub, exp, iat } = payload as Required<Pick<JWTPayload, 'sub' | 'exp' | 'iat'>>;
    // jose checks that "sub" is present, not that it is a string; the device HMAC needs one.
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUB_LENGTH) {
      throw fail('malformed', `the device credential's "sub" must be 1 to ${MAX_SUB_LENGTH} characters`);
    }
    if (iat > this.now() / 1000 + DEVICE_JWT_CLOCK_SKEW_S) {
      throw fail('not yet valid', 'the device credential was issued in the future');
    }
    if (exp - iat > this.options.maxLifetimeS) {
      throw fail(
        'lifetime too long',
        `the device credential lives ${exp - iat} s; at most ${this.options.maxLifetimeS} s are accepted`,
      );
    }
    return sub;
  }

  /** Maps a jose failure to a 401 with its reason; a JWKS that cannot be fetched is a 503. */
  private refusal(e: unknown, fail: (r: DeviceCredentialFailure, m: string) => AppError): AppError {
    if (e instanceof errors.JWTExpired) return fail('expired', 'the device credential has expired');
    if (e instanceof errors.JWTClaimValidationFailed) {
      if (e.reason !== 'check_failed') {
        return fail('malformed', `the device credential's "${e.claim}" claim is missing or invalid`);
      }
      if (e.claim === 'iss') return fail('wrong issuer', 'the device credential is from another issuer');
      if (e.claim === 'aud') return fail('wrong audience', 'the device credential is for another audience');
      if (e.claim === 'nbf' || e.claim === 'iat') {
        return fail('not yet valid', 'the device credential is not valid yet');
      }
      return fail('malformed', `the device credential's "${e.claim}" claim is missing or invalid`);
    }
    if (e instanceof errors.JOSEAlgNotAllowed) {
      return fail(
        'algorithm not allowed',
        `a device credential must be signed with ${DEVICE_JWT_ALGORITHMS.join(' or ')}`,
      );
    }
    if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) {
      return fail('unknown key', 'the device credential was not signed by a key of the configured JWKS');
    }
    if (e instanceof errors.JWSSignatureVerificationFailed) {
      return fail('bad signature', 'the device credential signature does not verify');
    }
    // A key set fetched from DEVICE_JWKS_URL can time out or fail to fetch (a TypeError from fetch): that is
    // the infrastructure's fault, not the client's, so it is a retryable 503.
    const remote = this.options.jwks instanceof URL;
    if (
      remote &&
      (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid || !(e instanceof errors.JOSEError))
    ) {
      return new AppError(
        'NOT_READY',
        'the device credential keys (DEVICE_JWKS_URL) are unavailable; retry shortly',
      );
    }
    if (!(e instanceof errors.JOSEError)) throw e;
    return fail('malformed', 'the device credential is not a valid JWT');
  }
}
