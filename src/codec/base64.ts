/**
 * Standard base64 (RFC 4648, with padding) for bundles that must travel inside JSON, using only atob/btoa so
 * the same code runs in browsers and Node 20.
 */
import { AppError } from '../errors';

// String.fromCharCode(...chunk) spreads its argument onto the stack; 32 KiB per call stays far below any
// engine's argument limit while keeping the number of calls small for multi-megabyte bundles.
const CHUNK = 0x8000;

/** Encodes bytes as standard base64. */
export function bytesToBase64(bytes: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    parts.push(String.fromCharCode(...bytes.subarray(i, i + CHUNK)));
  }
  return btoa(parts.join(''));
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes standard base64; throws BUNDLE_MALFORMED (path "base64") for anything else, whitespace included. */
export function base64ToBytes(text: string): Uint8Array {
  // atob alone would accept whitespace and missing padding; uploads should be canonical.
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new AppError('BUNDLE_MALFORMED', 'invalid base64', [
      { path: 'base64', message: 'not standard padded base64 (A-Z, a-z, 0-9, +, /, length a multiple of 4)' },
    ]);
  }
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
