/**
 * The upload of a bundle to the server's upload route (`POST /v1/tasks/{task}/result`): a round's result, and
 * a stateful session's contribution, which the server takes exactly as a round's upload. One function so
 * that both send the same headers and treat a lost answer the same way.
 */
import { isRoundhouseError } from './errors';
import type { Transport } from './transport';
import { gzipBytes } from './work';

/** Where and with what a bundle is uploaded. */
export interface UploadTarget {
  readonly upload_url: string;
  /** The task token: the upload's Bearer credential, single use. */
  readonly token: string;
  /** Unix ms after which the server refuses the upload: no try starts (or lasts) past it. */
  readonly deadline: number;
}

/** How a bundle is uploaded. */
export interface UploadOptions {
  /** Gzip the body (default true). */
  readonly gzip?: boolean;
  /** The device credential header's value (the device id, or a signed credential). */
  readonly credential?: () => Promise<string> | string;
  readonly signal?: AbortSignal;
}

/**
 * Uploads `bundle` to `target` and resolves with the bytes sent (after gzip). A try that timed out or lost
 * its answer is sent again with the same token: if the first one was accepted after all, the server answers
 * 409 UPLOAD_DUPLICATE, which is success. Throws what the transport throws otherwise: `DeadlineExceeded`
 * when no try could finish before the deadline, 409 UPLOAD_LATE when the server found it late.
 */
export async function uploadBundle(
  transport: Transport,
  bundle: Uint8Array,
  target: UploadTarget,
  options: UploadOptions = {},
): Promise<number> {
  const gzip = options.gzip ?? true;
  const body = gzip ? await gzipBytes(bundle) : bundle;
  const credential = options.credential ? await options.credential() : undefined;
  try {
    await transport.request(
      target.upload_url,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${target.token}`,
          ...(credential === undefined ? {} : { 'x-device-credential': credential }),
          'content-type': 'application/octet-stream',
          ...(gzip ? { 'content-encoding': 'gzip' } : {}),
        },
        body: body as BodyInit,
      },
      { signal: options.signal, until: target.deadline, bulkBody: true },
      (res) => res.arrayBuffer(),
    );
  } catch (e) {
    if (!isRoundhouseError(e, 'UPLOAD_DUPLICATE')) throw e;
  }
  return body.byteLength;
}
