import type { Request, Response } from 'express';
import { AppError } from '../errors';
import { roundTag, type RoundRef, type RoundStore } from '../store/types';

/** Seconds a client is asked to wait when an upload is refused 503 BUSY. */
export const BUSY_RETRY_AFTER_S = 2;

/** Options of {@link UploadAdmission}. */
export interface UploadAdmissionOptions {
  readonly store: Pick<RoundStore, 'pendingUploads'>;
  /** MAX_PENDING_UPLOADS: uploads of one attempt that may wait for aggregation. */
  readonly maxPending: number;
  /** MAX_INFLIGHT_UPLOAD_BYTES: upload bytes this process holds at once. */
  readonly maxInflightBytes: number;
}

/**
 * Decides whether an upload is read at all, before its body is (docs/server.md, "Backpressure"): a body of
 * up to MAX_UPLOAD_BYTES is buffered, inflated, validated and hashed, so the cheap refusals come first.
 * - The round: when its uploads waiting for aggregation reach MAX_PENDING_UPLOADS (one small Redis read),
 *   the upload would be refused BUSY after all that work; it is refused now.
 * - The process: the bytes of the uploads it is reading or holding, counted from each Content-Length at
 *   admission, as a chunked body arrives, and by the inflated size once read, stay within
 *   MAX_INFLIGHT_UPLOAD_BYTES; an upload that would pass it is refused, a chunked one as soon as it does.
 *   An upload is always admitted when no other holds bytes, so that one larger than the cap can pass.
 * A refusal is 503 BUSY with Retry-After and `Connection: close`: the unread body is not drained, the
 * connection ends once the answer is sent. A request's bytes are held until its response closes.
 */
export class UploadAdmission {
  private used = 0;
  private readonly held = new WeakMap<Request, Hold>();

  constructor(private readonly options: UploadAdmissionOptions) {}

  /** The upload bytes held now, by every request of this process. */
  get inFlight(): number {
    return this.used;
  }

  /**
   * Starts reading the attempt's count of uploads waiting for aggregation, for {@link admit}: a caller
   * that has other reads to make first starts this one with them. A failed read is thrown by `admit` only.
   */
  pending(ref: RoundRef): PendingCount {
    const read = this.options.store.pendingUploads(ref);
    // Awaited by admit, or never when an earlier check refuses the upload: not an unhandled rejection then.
    read.catch(() => undefined);
    return { ref, read };
  }

  /**
   * Admits an upload of the attempt `ref` before its body is read; throws AppError BUSY otherwise. `pending`
   * is the count started by {@link pending} for the same attempt, else it is read now.
   */
  async admit(ref: RoundRef, req: Request, res: Response, pending?: PendingCount): Promise<void> {
    if (pending && roundTag(pending.ref) + pending.ref.plan !== roundTag(ref) + ref.plan) {
      throw new Error('the pending count was read for another attempt');
    }
    const count = await (pending ?? this.pending(ref)).read;
    if (count >= this.options.maxPending) {
      throw busy(res, 'too many uploads of this round wait for aggregation; retry shortly');
    }
    const hold: Hold = { bytes: 0, closed: false };
    this.held.set(req, hold);
    res.once('close', () => {
      this.used -= hold.bytes;
      hold.bytes = 0;
      // Released for good: a body inflated after its client went away must not hold bytes again, which
      // nothing would ever release.
      hold.closed = true;
    });
    const length = Number(req.get('content-length'));
    if (Number.isFinite(length) && length > 0 && !this.grow(hold, length)) {
      throw busy(res, 'the server is reading too many uploads at once; retry shortly');
    }
  }

  /**
   * The body reader's meter: `bytes` of the request's body arrived so far, as sent. Answers the error to
   * stop reading with when holding them would pass the cap.
   */
  meter(req: Request, res: Response, bytes: number): Error | undefined {
    const hold = this.held.get(req);
    if (!hold || this.grow(hold, bytes)) return undefined;
    return busy(res, 'the server is reading too many uploads at once; retry shortly');
  }

  /** The body was read and inflated to `bytes`: they are held until the response closes. */
  account(req: Request, bytes: number): void {
    const hold = this.held.get(req);
    if (hold) this.grow(hold, bytes, true);
  }

  private grow(hold: Hold, total: number, force = false): boolean {
    if (hold.closed) return true;
    const more = total - hold.bytes;
    if (more <= 0) return true;
    const others = this.used - hold.bytes;
    if (!force && others > 0 && this.used + more > this.options.maxInflightBytes) return false;
    this.used += more;
    hold.bytes = total;
    return true;
  }
}

/** An attempt's count of uploads waiting for aggregation, being read (see UploadAdmission.pending). */
export interface PendingCount {
  readonly ref: RoundRef;
  readonly read: Promise<number>;
}

/** The bytes one request holds, until its response closed. */
interface Hold {
  bytes: number;
  closed: boolean;
}

/**
 * A BUSY refusal of an upload whose body may be unread: Retry-After paces the client, and
 * `Connection: close` ends the connection after the answer instead of reading the rest of the body off.
 */
export function busy(res: Response, message: string): AppError {
  res.set('Retry-After', String(BUSY_RETRY_AFTER_S));
  res.set('Connection', 'close');
  return new AppError('BUSY', message);
}
