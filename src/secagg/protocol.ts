/**
 * The SecAgg+ messages as they travel over HTTP (JSON; bytes in unpadded base64url, indexes as numbers),
 * exactly as SECAGG.md defines them, and the small rules both sides share. The client side is in
 * protocol-client.ts, the server side in protocol-server.ts.
 */
import { base64ToBytes, bytesToBase64 } from '../codec/base64';
import { AppError } from '../errors';

/** The neighbourhood N(i) of a node: the nodes holding shares of i's secrets, i included, sorted. */
export type Neighbourhood = (i: number) => readonly number[];

/** Which secret a share in R3 rebuilds: `b` the self-mask seed of a survivor, `s` the mask key of a dropout. */
export type ShareKind = 'b' | 's';

/** R0, client -> server: the client's two X25519 public keys (`c` for share envelopes, `s` for masks). */
export interface R0Advertise {
  readonly keys: { readonly c: string; readonly s: string };
}

/** R1, server -> client: the session and the keys of the client's neighbourhood (itself included, sorted). */
export interface R1Neighbours {
  readonly session: string;
  readonly index: number;
  readonly n: number;
  readonly degree: number;
  readonly threshold: number;
  readonly neighbours: readonly { readonly index: number; readonly c: string; readonly s: string }[];
}

/** R1, client -> server: one sealed share envelope per neighbourhood member, itself included. */
export interface R1Shares {
  readonly shares: readonly { readonly to: number; readonly ct: string }[];
}

/** R2, server -> client: the envelopes addressed to the client by the U2 members of its neighbourhood. */
export interface R2Inbox {
  readonly shares: readonly { readonly from: number; readonly ct: string }[];
}

/** R3, server -> client: the client's neighbours in U2, split by whether their masked input arrived (U3). */
export interface R3Survivors {
  readonly survivors: readonly number[];
  readonly dropped: readonly number[];
}

/** R3, client -> server: per neighbour named in R3Survivors, the one share that neighbour's status calls for. */
export interface R3Unmask {
  readonly shares: readonly { readonly of: number; readonly kind: ShareKind; readonly share: string }[];
}

/**
 * What `GET /v1/tasks/{task}/secagg` answers: the task's next step of the exchange, with what the step needs.
 * `upload` carries the parameters the client derives the masking moduli from (masks.ts, `maskingModuli`).
 */
export type SecAggStep =
  | { readonly step: 'advertise' }
  | { readonly step: 'wait'; readonly retry_after_ms: number }
  | ({ readonly step: 'share' } & R1Neighbours)
  | ({
      readonly step: 'upload';
      readonly secure_params: { readonly [K in 'bitwidth' | 'max_input' | 'modulus']: readonly number[] };
      readonly n_max: number;
    } & R2Inbox)
  | ({ readonly step: 'unmask' } & R3Survivors)
  | { readonly step: 'done' }
  | { readonly step: 'dropped'; readonly reason: string };

/** The sign with which i adds the pairwise mask it shares with j: +1 when i < j, -1 when i > j. */
export function maskSign(i: number, j: number): 1 | -1 {
  return i < j ? 1 : -1;
}

/** A SECAGG_BAD_MESSAGE error about the message part at `path`. */
export function badMessage(path: string, message: string): AppError {
  return new AppError('SECAGG_BAD_MESSAGE', 'a SecAgg+ message breaks the protocol', [{ path, message }]);
}

/** Checks that `value` is an integer index in [0, n) (n undefined: any non-negative u32). */
export function checkIndex(value: unknown, path: string, n = 2 ** 32): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= n) {
    throw badMessage(path, `${JSON.stringify(value)} is not an index in [0, ${n})`);
  }
  return value;
}

/** Checks that `value` is an array, and returns it. */
export function checkArray(value: unknown, path: string): readonly unknown[] {
  if (!Array.isArray(value)) throw badMessage(path, 'not an array');
  return value;
}

/** Bytes as unpadded base64url (RFC 4648 section 5). */
export function toBase64Url(bytes: Uint8Array): string {
  return bytesToBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes the unpadded base64url of exactly `length` bytes; anything else (padding, whitespace, another
 * length, non-canonical trailing bits) throws SECAGG_BAD_MESSAGE at `path`.
 */
export function fromBase64Url(text: unknown, length: number, path: string): Uint8Array {
  if (typeof text !== 'string' || !BASE64URL.test(text) || text.length % 4 === 1) {
    throw badMessage(path, 'not unpadded base64url');
  }
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const bytes = base64ToBytes(padded);
  if (bytes.length !== length) throw badMessage(path, `${bytes.length} bytes, expected ${length}`);
  if (toBase64Url(bytes) !== text) throw badMessage(path, 'not canonical base64url');
  return bytes;
}
