/**
 * The per-attempt round key and the HMACs made with it (docs/server.md, "Devices"). A round attempt gets a
 * random key when it opens; the store keeps `HMAC(key, device id)` for each device holding a task and
 * `HMAC(key, upload)` for each upload, and deletes the key when the attempt leaves reporting. Fresh keys per
 * attempt make a device's HMACs of two attempts unlinkable; deleting the key makes the stored HMACs useless
 * for guessing a device id or a small upload value afterwards.
 */
import { createHmac, randomBytes } from 'node:crypto';

/** A fresh round key: 256 random bits, base64url. */
export function newRoundKey(): string {
  return randomBytes(32).toString('base64url');
}

// Domain labels keep a device HMAC and an upload HMAC apart even if an upload's bytes equal a device id.
const DEVICE_LABEL = 'roundhouse.device\0';
const UPLOAD_LABEL = 'roundhouse.upload\0';

/** HMAC-SHA256(round key, device id), base64url: the device's binding inside one round attempt. */
export function deviceHmac(roundKey: string, deviceId: string): string {
  return createHmac('sha256', roundKey).update(DEVICE_LABEL).update(deviceId, 'utf8').digest('base64url');
}

/** HMAC-SHA256(round key, upload bytes), base64url: single use and duplicate detection without a plain hash. */
export function uploadHmac(roundKey: string, bytes: Uint8Array): string {
  return createHmac('sha256', roundKey).update(UPLOAD_LABEL).update(bytes).digest('base64url');
}
