/**
 * Routes served on Node's own request and response objects, ahead of express.
 *
 * Express gives every request and response a new prototype when it enters the app
 * (`Object.setPrototypeOf(res, app.response)`). V8 then runs Node's `writeHead` and `end` on those
 * objects several times slower: measured at 50-90 us per response instead of 30-40 us on a 2-core VM
 * (bench/sessions.ts). That cost matters where one event answers a cohort's long polls together,
 * a thousand responses in one burst. Such routes are written against `IncomingMessage` and
 * `ServerResponse`, and each is served twice:
 * - in front of the app, on untouched objects (`withRawRoutes`, the server's listener);
 * - as an ordinary express route (`mountRawRoutes`), so that an app built alone is complete and its
 *   route list, checked against the OpenAPI document, still names them.
 *
 * In front of the app a route gets what the app's middleware gives every request: a log line, metrics,
 * CORS on client paths, and errors as `{error: {code, message, details}}`.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';
import { AppError } from '../errors';
import { pathOf } from './middleware/request-log';

/** One route served on Node's own objects. */
export interface RawRoute {
  /** Default `GET`. */
  readonly method?: 'GET' | 'POST';
  /** The express pattern (`/v1/sessions/:session/requests`): its route in logs, metrics and OpenAPI. */
  readonly route: string;
  /** Serves the request; a rejection is answered as the app's error handler would answer it. */
  handle(req: IncomingMessage, res: ServerResponse, params: Record<string, string>): Promise<void>;
}

/** What the app's middleware does for every request, in a form that runs on Node's own objects. */
export interface RawHooks {
  /** Log line and metrics once the response finishes, under the route's pattern. */
  observe(req: IncomingMessage, res: ServerResponse, route: string): void;
  /** CORS for client paths (a `cors`-style handler); calls `next` unless it answered a preflight. */
  cors(req: IncomingMessage, res: ServerResponse, next: () => void): void;
  /** Answers an error: the app's error handler on Node's objects. */
  fail(err: unknown, req: IncomingMessage, res: ServerResponse): void;
}

/** A route's express pattern as a matcher of paths: named segments, case-insensitive, optional `/`. */
function matcher(route: string): (path: string) => Record<string, string> | undefined {
  const names: string[] = [];
  const source = route
    .split('/')
    .map((part) => {
      if (!part.startsWith(':')) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(part.slice(1));
      return '([^/]+)';
    })
    .join('/');
  // As express routes match by default: any case, and a trailing slash allowed.
  const pattern = new RegExp(`^${source}/?$`, 'i');
  return (path) => {
    const m = pattern.exec(path);
    if (!m) return undefined;
    const params: Record<string, string> = {};
    names.forEach((name, i) => {
      try {
        params[name] = decodeURIComponent(m[i + 1]!);
      } catch {
        throw new AppError('REQUEST_INVALID', `the path's ${name} is not valid percent-encoding`);
      }
    });
    return params;
  };
}

/** Registers each route on the app as well, so that an app built alone serves it too. */
export function mountRawRoutes(app: Express, routes: readonly RawRoute[]): void {
  for (const r of routes) {
    const serve = (req: Request, res: Response, next: NextFunction): void => {
      r.handle(req, res, req.params as Record<string, string>).catch(next);
    };
    if (r.method === 'POST') app.post(r.route, serve);
    else app.get(r.route, serve);
  }
}

/** The server's listener: the raw routes on Node's own objects, everything else through the app. */
export function withRawRoutes(app: Express, routes: readonly RawRoute[], hooks: RawHooks): RequestListener {
  const table = routes.map((r) => ({ route: r, method: r.method ?? 'GET', match: matcher(r.route) }));
  return (req, res) => {
    if (req.method === 'GET' || req.method === 'POST') {
      const path = pathOf(req);
      for (const { route, method, match } of table) {
        if (method !== req.method) continue;
        let params: Record<string, string> | undefined;
        let refused: unknown;
        try {
          params = match(path);
        } catch (e) {
          refused = e;
        }
        if (!params && refused === undefined) continue;
        hooks.observe(req, res, route.route);
        // CORS first, as the app's middleware comes before its routes: a page can read the refusal too.
        return void hooks.cors(req, res, () => {
          if (!params) return hooks.fail(refused, req, res);
          route.handle(req, res, params).catch((e: unknown) => hooks.fail(e, req, res));
        });
      }
    }
    app(req, res);
  };
}

/**
 * A JSON answer that must not be cached, written with one call on Node's own response: express's `res.json`
 * (its header helpers, charset and content-type lookups, and a body copied into a Buffer, so two chunks to
 * write) cost as much CPU as the socket write itself (bench/sessions.ts); headers and body as one string
 * are one write.
 */
export function sendJsonText(res: ServerResponse, text: string): void {
  res.writeHead(200, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}
