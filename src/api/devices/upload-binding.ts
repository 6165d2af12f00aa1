import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AppError } from '../../errors';
import type { TaskClaims } from '../../rounds/tokens';
import { deviceHmac } from '../../store/round-key';
import { uploadCredential } from './credential';
import type { DeviceVerifier } from './verifier';

/**
 * Checks that an upload comes from the device its task was assigned to: verifies the device credential the
 * upload presents (`X-Device-Credential`), recomputes HMAC(round key, device id) and compares it with the
 * token's `device` claim; 401 DEVICE_CREDENTIAL_INVALID or 403 DEVICE_MISMATCH. `roundKey` is the attempt's
 * key as the caller read it (once per upload; the accept step uses it too). Once the attempt left reporting
 * its round key is gone and nothing can be compared; the upload is then late whoever sends it, which the
 * accept step answers.
 */
export async function checkUploadDevice(
  devices: DeviceVerifier,
  req: Request,
  claims: TaskClaims,
  roundKey: string | undefined,
): Promise<void> {
  const { credential, where } = uploadCredential(req);
  const device = await devices.verify(credential, where);
  if (roundKey === undefined) return;
  const a = Buffer.from(deviceHmac(roundKey, device));
  const b = Buffer.from(claims.device);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new AppError('DEVICE_MISMATCH', 'the task was assigned to another device', [
      { path: where, message: 'this device credential is not the one the task token was issued to' },
    ]);
  }
}
