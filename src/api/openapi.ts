import type { Express } from 'express';
import { Router } from 'express';
import openApiDocument from '../../schemas/openapi.json';

/** The OpenAPI 3.1 document of the API (schemas/openapi.json), served as is. */
export { openApiDocument };

/** `GET /v1/openapi.json`. */
export function openapiRoutes(): Router {
  const router = Router();
  const body = JSON.stringify(openApiDocument);
  router.get('/v1/openapi.json', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').type('application/json').send(body);
  });
  return router;
}

/** One route of an express app, its path in OpenAPI form (`/v1/plans/{id}`). */
export interface RouteEntry {
  readonly method: string;
  readonly path: string;
}

interface Layer {
  readonly route?: { readonly path: unknown; readonly methods: Record<string, boolean> };
  readonly handle?: { readonly stack?: readonly Layer[] };
}

/**
 * Every route of an app built by `createApp`, for checking the OpenAPI document against the code. The
 * routers of this API declare full paths and are mounted at the root, so a route's own path is its whole
 * path (a router mounted under a prefix would not be listed correctly).
 */
export function listRoutes(app: Express): RouteEntry[] {
  const out: RouteEntry[] = [];
  const visit = (stack: readonly Layer[]): void => {
    for (const layer of stack) {
      if (layer.route && typeof layer.route.path === 'string') {
        const path = layer.route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on && method !== '_all') out.push({ method, path });
        }
      } else if (layer.handle?.stack) {
        visit(layer.handle.stack);
      }
    }
  };
  visit((app as unknown as { router: { stack: readonly Layer[] } }).router.stack);
  return out;
}
