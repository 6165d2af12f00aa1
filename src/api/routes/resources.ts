import { createHash } from 'node:crypto';
import compression from 'compression';
import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors';
import { isPlanId } from '../../store/ids';
import { parseRoundTag } from '../../store/types';
import type { RouteDeps } from '../deps';

/** The caching headers of resources that never change once published. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Client resources: the client plan and a round attempt's broadcast. Both are immutable once published, so
 * they carry a strong ETag, answer `If-None-Match` with 304, may be cached by anyone for a year, and are
 * gzipped when the client accepts it (`Vary: Accept-Encoding`). No operator token: clients fetch them.
 *
 * The same strong ETag is sent for the gzip and the identity representation, as express's static serving
 * does; caches keep them apart by `Vary`, and no range requests are served, where the difference matters.
 */
export function resourceRoutes(deps: RouteDeps): Router {
  const { store, plans } = deps;
  const router = Router();
  // Tensor bundles are not "compressible" by mime-db; compress every resource the client accepts gzip for.
  const gzip = compression({ filter: () => true });

  router.get('/v1/plans/:id/client-plan', gzip, async (req, res) => {
    const id = req.params.id as string;
    const loaded = isPlanId(id) ? await plans.get(id) : undefined;
    // The cache outlives a plan deleted by another process (an operator's DELETE through another API
    // replica, a retention sweep): the store says whether it still exists.
    if (!loaded || !(await store.getPlan(id))) {
      if (loaded) plans.forget(id);
      throw new AppError('PLAN_NOT_FOUND', `no plan ${id}`);
    }
    const etag = strongEtag(loaded.clientPlan.etag);
    if (sendNotModified(req, res, etag)) return;
    res.status(200).type('application/json').send(loaded.clientPlan.json);
  });

  router.get('/v1/plans/:id/rounds/:round/broadcast', gzip, async (req, res) => {
    const id = req.params.id as string;
    const tag = req.params.round as string;
    const ref = parseRoundTag(tag);
    if (!isPlanId(id) || !ref) throw new AppError('ROUND_NOT_FOUND', `no round ${tag} of plan ${id}`);
    const bytes = await store.getBroadcast({ plan: id, ...ref });
    if (!bytes) throw new AppError('ROUND_NOT_FOUND', `no broadcast for round ${tag} of plan ${id}`);
    const etag = `"${createHash('sha256').update(bytes).digest('base64url')}"`;
    if (sendNotModified(req, res, etag)) return;
    res
      .status(200)
      .type('application/octet-stream')
      .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  return router;
}

/** Quotes an entity tag unless it is already quoted (a strong tag is `"..."`). */
function strongEtag(tag: string): string {
  return /^"[^"]*"$/.test(tag) ? tag : `"${tag.replace(/"/g, '')}"`;
}

/**
 * Sets the caching headers and answers 304 when `If-None-Match` names the tag (weak comparison, as RFC 9110
 * prescribes for If-None-Match; `*` matches any). Returns whether it answered.
 */
function sendNotModified(req: Request, res: Response, etag: string): boolean {
  res.set('ETag', etag).set('Cache-Control', IMMUTABLE);
  const header = req.get('if-none-match');
  if (!header) return false;
  const opaque = (t: string): string => t.trim().replace(/^W\//, '');
  const match = header.trim() === '*' || header.split(',').some((t) => opaque(t) === opaque(etag));
  if (match) res.status(304).end();
  return match;
}
