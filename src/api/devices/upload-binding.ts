import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AppError } from '../../errors';
import type { TaskClaims } from '../../rounds/tokens';
import type { RoundRef, RoundStore } from '../../store/types';
import { uploadCredential } from './credential';
import type { DeviceVerifier } from './verifier';

/**
 * Checks that an upload comes from the device its task was assigned to: verifies the device credential the
 * upload presents (`X-Device-Credential`), recomputes HMAC(round key, device id) and compares it with the
 * token's `device` claim; 401 DEVICE_CREDENTIAL_INVALID or 403 DEVICE_MISMATCH. Once the attempt left
 * reporting its round key is gone and nothing can be compared; the upload is then late whoever sends it,
 * which the accept step answers.
 */
export async function checkUploadDevice(
  deps: { readonly devices: DeviceVerifier; readonly store: Pick<RoundStore, 'deviceBinding'> },
  req: Request,
  ref: RoundRef,
  claims: TaskClaims,
): Promise<void> {
  const { credential, where } = uploadCredential(req);
  const device = await deps.devices.verify(credential, where);
  const binding = await deps.store.deviceBinding(ref, device);
  if (binding === undefined) return;
  const a = Buffer.from(binding);
  const b = Buffer.from(claims.device);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new AppError('DEVICE_MISMATCH', 'the task was assigned to another device', [
      { path: where, message: 'this device credential is not the one the task token was issued to' },
    ]);
  }
}
