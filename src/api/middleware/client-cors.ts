import cors from 'cors';
import type { RequestHandler } from 'express';

/** The endpoints clients call; a page on another origin may call these, never the operator endpoints. */
const CLIENT_PATHS = [
  /^\/v1\/populations\/[^/]+\/checkin$/,
  /^\/v1\/plans\/[^/]+\/client-plan$/,
  /^\/v1\/plans\/[^/]+\/rounds\/[^/]+\/broadcast$/,
  /^\/v1\/tasks\/[^/]+\/result$/,
  /^\/sdk\//,
];

/** Options of {@link clientCors}. */
export interface ClientCorsOptions {
  /** Origins allowed to call the client endpoints: `['*']` for any, `[]` for none (same origin only). */
  readonly origins: readonly string[];
}

/**
 * CORS for the client endpoints only, so that a web app on its own origin can embed the SDK. Task tokens
 * travel in the Authorization header, never in cookies, so allowing any origin exposes nothing a page could
 * not already send; operator endpoints stay same-origin. Answers preflight requests itself.
 */
export function clientCors(options: ClientCorsOptions): RequestHandler {
  if (options.origins.length === 0) return (_req, _res, next) => next();
  const handler = cors({
    origin: options.origins.includes('*') ? '*' : [...options.origins],
    methods: ['GET', 'POST'],
    allowedHeaders: [
      'authorization',
      'content-type',
      'content-encoding',
      'if-none-match',
      'x-device-credential',
    ],
    exposedHeaders: ['etag', 'retry-after'],
    maxAge: 600,
  });
  return (req, res, next) => (CLIENT_PATHS.some((p) => p.test(req.path)) ? handler(req, res, next) : next());
}
