/**
 * Where a request carries its device credential (docs/server.md, "Devices"). At check-in: in signed mode the
 * device JWT as `Authorization: Bearer <jwt>`, in anonymous mode the device id as the body's `device_id`
 * (`client_id`, its older name, is read too); either mode also reads `X-Device-Credential`. At upload
 * `Authorization` holds the task token, so the device credential travels in `X-Device-Credential`.
 */
import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import { bearerToken } from '../../rounds/tokens';
import type { DeviceAuthMode } from './verifier';

/** The header of the device credential (a device JWT, or the device id in anonymous mode). */
export const DEVICE_HEADER = 'x-device-credential';

/** A credential and where it was found (the `path` of an error detail about it). */
export interface FoundCredential {
  readonly credential: string | undefined;
  readonly where: string;
}

/** The check-in's device credential. */
export function checkinCredential(req: Request, mode: DeviceAuthMode): FoundCredential {
  const header = req.get(DEVICE_HEADER);
  if (mode === 'signed') {
    const bearer = bearerToken(req.get('authorization'));
    return bearer !== undefined
      ? { credential: bearer, where: 'authorization' }
      : { credential: header, where: DEVICE_HEADER };
  }
  const body = (req.body ?? {}) as { device_id?: string; client_id?: string };
  if (body.device_id !== undefined) return { credential: body.device_id, where: '/device_id' };
  if (body.client_id !== undefined) return { credential: body.client_id, where: '/client_id' };
  return { credential: header, where: DEVICE_HEADER };
}

/** The upload's (or a long poll's) device credential; on Node's own request too (src/api/raw-routes.ts). */
export function uploadCredential(req: IncomingMessage): FoundCredential {
  const header = req.headers[DEVICE_HEADER];
  return { credential: typeof header === 'string' ? header : undefined, where: DEVICE_HEADER };
}
