import { Router, type Request, type RequestHandler, type Response } from 'express';
import { readTypedBundle, type BundleTensor } from '../../codec';
import { SecureSum, type SecureSumKind } from '../../aggregation/secure-sum';
import { boundUpload } from '../../aggregation/update-bounds';
import { dpOf } from '../../plan/dp-check';
import type { TffType } from '../../compute/types';
import { AppError } from '../../errors';
import { faultPoint } from '../../faults';
import type { LoadedPlan } from '../../rounds/contracts';
import { SECURE_KINDS, uploadParts, type MaskingModuli } from '../../rounds/form-steps';
import { fromLanes } from '../../secagg/masks';
import { secAggSetting } from '../../secagg/setup';
import { maskedUploadType } from '../../secagg/upload-type';
import { bearerToken, verifyTaskToken, type TaskClaims } from '../../rounds/tokens';
import type { RoundRef } from '../../store/types';
import type { RouteDeps } from '../deps';
import { checkUploadDevice } from '../devices/upload-binding';
import { loggableError } from '../loggable-error';
import { rawBody } from '../middleware/raw-body';
import { BUSY_RETRY_AFTER_S, UploadAdmission } from '../upload-admission';

/** Codes of an upload refused for its content; each is counted in the round's `rejected`. */
const CONTENT_FAILURES = new Set([
  'BUNDLE_MALFORMED',
  'BUNDLE_TYPE_MISMATCH',
  'BUNDLE_NOT_FINITE',
  'SECURE_SUM_OUT_OF_RANGE',
  'UPLOAD_TOO_LARGE',
  'UPDATE_OUT_OF_BOUNDS',
]);

/**
 * `POST /v1/tasks/{task}/result`: one client's result for one task. The checks run cheapest first and
 * nothing is read or stored before the token is verified: content type (415), token (401), token's task
 * against the path (403), the device (`X-Device-Credential`, 401) against the token's device binding (403),
 * admission before the body is read (503 BUSY: the round's pending uploads, the process's in-flight upload
 * bytes; see UploadAdmission), body within MAX_UPLOAD_BYTES after decompression (413), the bundle against work's
 * result type with finite floats (400), secure-sum values in range (400), then the atomic accept in the store
 * (late, duplicate, reused token, unknown task, queue full). Only an accepted upload is queued for
 * aggregation, so nothing about a bad upload can reach an accumulator.
 */
export function uploadRoutes(deps: RouteDeps): Router {
  const { store, plans, jobs, config, metrics, log } = deps;
  const router = Router();
  const admission = new UploadAdmission({
    store,
    maxPending: config.maxPendingUploads,
    maxInflightBytes: config.maxInflightUploadBytes,
  });
  const readBody = rawBody({
    limit: config.maxUploadBytes,
    meter: (req, res, bytes) => admission.meter(req, res, bytes),
  });

  async function countRejected(ref: RoundRef): Promise<void> {
    try {
      await store.countRejected(ref);
    } catch (err) {
      log.warn({ err: loggableError(err), plan: ref.plan }, 'could not count a rejected upload');
    }
  }

  async function upload(req: Request, res: Response): Promise<void> {
    requireOctetStream(req);
    // A token past its exp still uploads while its round's current deadline (moved by a pause) is ahead.
    const claims = await verifyTaskToken(
      config.tokenSecret,
      bearerToken(req.get('authorization')),
      deps.now(),
      (c) => store.uploadDeadline({ plan: c.plan, round: c.round, attempt: c.attempt }, deps.now()),
    );
    const task = req.params.task as string;
    if (claims.task !== task) {
      throw new AppError('TOKEN_TASK_MISMATCH', 'the task token was issued for another task', [
        { path: 'task', message: 'the path names a task the token does not authorize' },
      ]);
    }
    const ref: RoundRef = { plan: claims.plan, round: claims.round, attempt: claims.attempt };
    // The admission's pending count is read alongside the round key (one round trip to Redis, not two);
    // it is looked at only once the device is checked, so that a bad device is still told 401/403, not BUSY.
    const pending = admission.pending(ref);
    // Read once: the device binding and the upload's single-use digest both use the attempt's key.
    const roundKey = await store.roundKey(ref);
    await checkUploadDevice(deps.devices, req, claims, roundKey);
    // Nothing of the body is read before the round and the process can take it (503 BUSY otherwise).
    await admission.admit(ref, req, res, pending);

    let bytes: Uint8Array;
    let stored: Uint8Array;
    try {
      await run(readBody, req, res);
      bytes = req.body as Buffer;
      admission.account(req, bytes.length);
      const loaded = await plans.get(ref.plan);
      if (!loaded) throw unknownTask(claims);
      // A round running SecAgg takes V1..V3 as masked residues (int32 lanes), checked below their moduli.
      const secagg = secAggSetting(loaded.checked.plan) ? await store.secagg.setup(ref) : undefined;
      const type = secagg ? maskedUploadType(loaded.uploadType) : loaded.uploadType;
      const { tensors, metadata } = readTypedBundle(bytes, type, { requireFinite: true });
      if (secagg) checkMaskedLanes(loaded.uploadType, secagg.moduli, tensors);
      else await checkSecureSums(loaded, ref, tensors);
      // The plan's update bounds (docs/update-bounds.md): clipped bytes are stored, the single-use digest
      // stays over the bytes as sent so that an honest retry is still UPLOAD_DUPLICATE.
      // A dp plan's record is clipped to the attempt's clip (src/dp/mechanism.ts).
      const dp = dpOf(loaded.checked);
      const dpClip = dp && !dp.secure ? await roundClip(ref) : undefined;
      stored = boundUpload(loaded.checked, tensors, metadata, dpClip) ?? bytes;
    } catch (err) {
      if (err instanceof AppError && CONTENT_FAILURES.has(err.code)) await countRejected(ref);
      throw err;
    }

    await faultPoint('upload-before-accept');
    const result = await store.acceptUpload(ref, task, bytes, deps.now(), config.maxPendingUploads, {
      stored,
      roundKey,
    });
    if (!result.ok) {
      switch (result.code) {
        case 'UPLOAD_LATE':
          throw new AppError('UPLOAD_LATE', `round ${ref.round}.${ref.attempt} no longer accepts uploads`);
        case 'UPLOAD_DUPLICATE':
          throw new AppError('UPLOAD_DUPLICATE', 'this upload was already accepted; nothing more to do');
        case 'TOKEN_REUSED':
          throw new AppError('TOKEN_REUSED', 'the task already uploaded a different result');
        case 'BUSY':
          res.set('Retry-After', String(BUSY_RETRY_AFTER_S));
          throw new AppError('BUSY', 'too many uploads of this round wait for aggregation; retry shortly');
        case 'TASK_UNKNOWN':
          throw unknownTask(claims);
        case 'SECAGG_TOO_EARLY':
          throw new AppError(
            'SECAGG_TOO_EARLY',
            'the key exchange is not over: upload when the secagg step says so',
          );
        case 'SECAGG_NOT_IN_COHORT':
          throw new AppError(
            'SECAGG_NOT_IN_COHORT',
            'the task sent no key shares in time, so its masks could not be removed from the sum',
          );
      }
    }

    await faultPoint('upload-after-accept');
    // The upload is stored; a failure to queue its jobs must not turn it into an error the client retries
    // (it would get UPLOAD_DUPLICATE). The round's reporting-deadline job still finalizes it, and finalize
    // re-enqueues accepted but unaccumulated uploads (store.pendingTasks).
    try {
      await jobs.accumulate(ref, task);
      if (result.closed) await jobs.finalize(ref);
    } catch (err) {
      log.error(
        { err: loggableError(err), plan: ref.plan, round: ref.round, attempt: ref.attempt },
        'could not queue aggregation',
      );
    }
    res.status(202).json({ accepted: true });
  }

  router.post('/v1/tasks/:task/result', async (req, res) => {
    let outcome = 'INTERNAL';
    try {
      await upload(req, res);
      outcome = 'accepted';
    } catch (err) {
      if (err instanceof AppError) outcome = err.code;
      throw err;
    } finally {
      metrics.uploads.inc({ outcome });
    }
  });

  /**
   * Checks the secure-sum parts of an upload (V1 bitwidth, V2 max_input) against the round's parameters
   * with the aggregator's own semantics; modular sums (V3) accept any value. The round is read only when
   * the plan has secure sums.
   */
  /** A dp plan's clip for the attempt; an attempt gone (deleted with its plan) is the token's mismatch. */
  async function roundClip(ref: RoundRef): Promise<number> {
    const clip = (await store.getRound(ref))?.dp?.clip;
    if (clip === undefined)
      throw new AppError('TOKEN_TASK_MISMATCH', `round ${ref.round}.${ref.attempt} does not exist`);
    return clip;
  }

  async function checkSecureSums(
    loaded: LoadedPlan,
    ref: RoundRef,
    tensors: readonly BundleTensor[],
  ): Promise<void> {
    const [v1, v2] = uploadParts(loaded.uploadType, tensors).V;
    if (v1.length === 0 && v2.length === 0) return;
    const round = await store.getRound(ref);
    if (!round) throw new AppError('TOKEN_TASK_MISMATCH', `round ${ref.round}.${ref.attempt} does not exist`);
    checkKind('bitwidth', round.secure_params.bitwidth, v1);
    checkKind('max_input', round.secure_params.max_input, v2);
  }

  return router;
}

/** Checks that every masked tensor of an upload holds canonical lanes of residues below its modulus. */
function checkMaskedLanes(
  uploadType: TffType,
  moduli: MaskingModuli,
  tensors: readonly BundleTensor[],
): void {
  uploadParts(uploadType, tensors).V.forEach((part, k) =>
    part.forEach((t, leaf) => fromLanes(t.data, moduli[SECURE_KINDS[k]!][leaf]!, `V${k + 1}/${leaf}`)),
  );
}

function checkKind(kind: SecureSumKind, params: readonly number[], tensors: readonly BundleTensor[]): void {
  if (tensors.length === 0) return;
  if (params.length !== tensors.length) {
    throw new Error(`round has ${params.length} ${kind} parameters for ${tensors.length} tensors`);
  }
  new SecureSum(
    kind,
    params,
    tensors.map((t) => t.data.length),
  ).check(tensors.map((t) => t.data));
}

function unknownTask(claims: TaskClaims): AppError {
  return new AppError('TOKEN_TASK_MISMATCH', `task is not part of round ${claims.round}.${claims.attempt}`, [
    { path: 'task', message: 'unknown task (its round or plan no longer holds it)' },
  ]);
}

function requireOctetStream(req: Request): void {
  const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/octet-stream') {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'an upload must be Content-Type: application/octet-stream', [
      { path: 'content-type', message: `got ${type || 'none'}` },
    ]);
  }
}

/** Runs a middleware as a step of a handler. */
function run(middleware: RequestHandler, req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      void middleware(req, res, (err?: unknown) => (err ? reject(err) : resolve()));
    } catch (err) {
      reject(err);
    }
  });
}
