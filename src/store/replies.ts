/**
 * Conversions between ioredis replies and the store's types: script answers, MULTI results, bytes.
 */
import type { ChainableCommander } from 'ioredis';
import { AppError } from '../errors';
import { isPhase } from './parse';
import { roundTag, type AcceptResult, type RoundRef, type TransitionResult } from './types';

type AcceptCode = Extract<AcceptResult, { ok: false }>['code'];
const ACCEPT_CODES: ReadonlySet<string> = new Set<AcceptCode>([
  'UPLOAD_LATE',
  'UPLOAD_DUPLICATE',
  'TOKEN_REUSED',
  'BUSY',
  'TASK_UNKNOWN',
  'SECAGG_TOO_EARLY',
  'SECAGG_NOT_IN_COHORT',
]);

/** Whether the accept-upload script answered one of `AcceptResult`'s refusal codes. */
export function isAcceptCode(s: string | undefined): s is AcceptCode {
  return s !== undefined && ACCEPT_CODES.has(s);
}

/** A script's array answer as strings (Redis integers and strings alike). */
export function tuple(res: unknown): string[] {
  if (!Array.isArray(res)) throw new Error(`a store script answered ${String(res)}, not an array`);
  return res.map((v: unknown) => String(v));
}

/** A transition script's `{changed, phase}`; a missing attempt is ROUND_NOT_FOUND. */
export function transition(ref: RoundRef, res: unknown): TransitionResult {
  const [changed, phase] = tuple(res);
  if (phase === '')
    throw new AppError('ROUND_NOT_FOUND', `Round ${roundTag(ref)} of plan ${ref.plan} does not exist`);
  if (!isPhase(phase)) throw new Error(`a transition script answered the unknown phase ${String(phase)}`);
  return { changed: changed === '1', phase };
}

/** Runs a MULTI or pipeline and returns its results, throwing the first command error. */
export async function exec(batch: ChainableCommander): Promise<unknown[]> {
  const results = await batch.exec();
  if (!results) throw new Error('Redis transaction aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** A view of the bytes as a Buffer, without copying, for ioredis arguments. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A plain Uint8Array copy of a Buffer reply. A copy, not a view: the parser's Buffers may be slices of a
 * socket chunk holding other replies (other clients' uploads), which `.buffer` would expose, and a fresh
 * array starts at offset 0, so typed-array views of it are aligned.
 */
export function toBytes(buf: Buffer | null): Uint8Array | undefined {
  return buf ? new Uint8Array(buf) : undefined;
}
