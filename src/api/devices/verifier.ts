/**
 * Device verifiers: how a check-in or an upload proves which device sends it (README, "Device credentials").
 * One task per device per round attempt and every minimum count devices, so whatever a verifier returns is
 * what one "client" means. The verifier is chosen by `DEVICE_AUTH` (`createDeviceVerifier`).
 */
import { AppError } from '../../errors';

/** The verifiers `DEVICE_AUTH` chooses from. */
export type DeviceAuthMode = 'anonymous' | 'signed';

/** Why a device credential was refused; the `message` of the error's detail, for clients to branch on. */
export type DeviceCredentialFailure =
  | 'missing'
  | 'malformed'
  | 'algorithm not allowed'
  | 'unknown key'
  | 'bad signature'
  | 'expired'
  | 'not yet valid'
  | 'lifetime too long'
  | 'wrong issuer'
  | 'wrong audience';

/** What {@link DeviceVerifier.admit} decides. */
export type Admission =
  { readonly allowed: true } | { readonly allowed: false; readonly retryAfterS: number };

/** Turns a request's device credential into a device id. */
export interface DeviceVerifier {
  readonly mode: DeviceAuthMode;
  /** Admission before any other work of a check-in, by the client's address (anonymous mode's rate limit). */
  admit(source: string): Promise<Admission>;
  /**
   * The device id a credential proves (anonymous: the id itself; signed: the JWT's `sub`); throws AppError
   * DEVICE_CREDENTIAL_INVALID (401) whose detail names a {@link DeviceCredentialFailure} at `where` (the
   * header or body field that carried the credential).
   */
  verify(credential: string | undefined, where: string): Promise<string>;
}

/** The 401 of a refused credential; `where` is the header or body field that carried it. */
export function credentialInvalid(reason: DeviceCredentialFailure, message: string, where: string): AppError {
  return new AppError('DEVICE_CREDENTIAL_INVALID', message, [{ path: where, message: reason }]);
}

/** Longest device id or credential accepted, in characters (a JWT of a few claims is far shorter). */
export const MAX_CREDENTIAL_LENGTH = 4096;
