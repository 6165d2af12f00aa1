import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';
import { pathOf } from './request-log';

/** The endpoints clients call; a page on another origin may call these, never the operator endpoints. */
const CLIENT_PATHS = [
  /^\/v1\/populations\/[^/]+\/checkin$/,
  /^\/v1\/plans\/[^/]+\/client-plan$/,
  /^\/v1\/plans\/[^/]+\/rounds\/[^/]+\/broadcast$/,
  /^\/v1\/tasks\/[^/]+\/result$/,
  // A device's session of a stateful program (docs/stateful.md), which a page runs like a round.
  /^\/v1\/programs\/[^/]+\/(?:client-program|values\/[^/]+)$/,
  /^\/v1\/sessions\/[^/]+(?:\/requests|\/answers)?$/,
  /^\/sdk\//,
];

/** Options of {@link clientCors}. */
export interface ClientCorsOptions {
  /** Origins allowed to call the client endpoints: `['*']` for any, `[]` for none (same origin only). */
  readonly origins: readonly string[];
}

/** A connect-style handler on Node's own objects, which express mounts as middleware too. */
export type CorsHandler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/**
 * CORS for the client endpoints only, so that a web app on its own origin can embed the SDK. Task and
 * session tokens travel in the Authorization header, never in cookies, so allowing any origin exposes
 * nothing a page could not already send; operator endpoints stay same-origin. Answers preflight requests
 * itself.
 */
export function clientCors(options: ClientCorsOptions): CorsHandler {
  if (options.origins.length === 0) return (_req, _res, next) => next();
  const handler = cors({
    origin: options.origins.includes('*') ? '*' : [...options.origins],
    // DELETE: a device leaves its session.
    methods: ['GET', 'POST', 'DELETE'],
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
  return (req, res, next) => {
    const path = pathOf(req);
    if (CLIENT_PATHS.some((p) => p.test(path))) handler(req, res, next);
    else next();
  };
}
