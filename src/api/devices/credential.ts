/**
 * Where a request carries its device credential (docs/server.md, "Devices"). At check-in: in signed mode the
 * device JWT as `Authorization: Bearer <jwt>`, in anonymous mode the device id as the body's `device_id`
 * (`client_id`, its older name, is read too); either mode also reads `X-Device-Credential`. At upload
 * `Authorization` holds the task token, so the device credential travels in `X-Device-Credential`.
 */
import type { IncomingMessage } from 'node:http';
import { bearerToken } from '../../rounds/tokens';
import type { DeviceAuthMode } from './verifier';

/** The header of the device credential (a device JWT, or the device id in anonymous mode). */
export const DEVICE_HEADER = 'x-device-credential';

/** A credential and where it was found (the `path` of an error detail about it). */
export interface FoundCredential {
  readonly credential: string | undefined;
  readonly where: string;
}

/** The check-in's device credential, from its headers and its (validated) body. */
export function checkinCredential(
  req: IncomingMessage,
  body: unknown,
  mode: DeviceAuthMode,
): FoundCredential {
  const header = headerOf(req, DEVICE_HEADER);
  if (mode === 'signed') {
    const bearer = bearerToken(headerOf(req, 'authorization'));
    return bearer !== undefined
      ? { credential: bearer, where: 'authorization' }
      : { credential: header, where: DEVICE_HEADER };
  }
  const fields = (body ?? {}) as { device_id?: string; client_id?: string };
  if (fields.device_id !== undefined) return { credential: fields.device_id, where: '/device_id' };
  if (fields.client_id !== undefined) return { credential: fields.client_id, where: '/client_id' };
  return { credential: header, where: DEVICE_HEADER };
}

/** The upload's (or a long poll's) device credential; on Node's own request too (src/api/raw-routes.ts). */
export function uploadCredential(req: IncomingMessage): FoundCredential {
  return { credential: headerOf(req, DEVICE_HEADER), where: DEVICE_HEADER };
}

/** A single-valued header, as express's `req.get` reads it. */
function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}
