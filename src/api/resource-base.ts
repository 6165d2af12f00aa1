import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Config } from '../config';
import { AppError } from '../errors';

/**
 * One DNS-style label: letters, digits, hyphens and (for container names such as `roundhouse_api_1`)
 * underscores, not starting or ending with a hyphen.
 */
const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';

/**
 * A plain `host[:port]`: a name of dot-separated labels (which covers dotted IPv4) or a bracketed IPv6
 * literal without a zone, then an optional port. Nothing that could carry a path, query, fragment, user
 * info or a second authority (`/`, `?`, `#`, `@`, `%`, spaces, a second `:`) gets through.
 */
const PLAIN_HOST = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9A-Fa-f:.]{2,45}\\])(?::([0-9]{1,5}))?$`);

/** Longest Host header taken: a 253-character name, a colon and a port, with room for an IPv6 literal. */
const MAX_HOST_LENGTH = 260;

/**
 * The normalised `host[:port]` of a Host header value (lower case, a default port left out, IPv4 and IPv6
 * in canonical form), or undefined when it is not a plain host[:port]. A check-in's answer carries URLs on
 * this host, so a header that would put anything else into them is refused rather than repaired.
 */
export function plainHost(value: string, protocol: 'http' | 'https'): string | undefined {
  if (value.length > MAX_HOST_LENGTH) return undefined;
  const match = PLAIN_HOST.exec(value);
  if (!match) return undefined;
  const port = match[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return undefined;
  let url: URL;
  try {
    url = new URL(`${protocol}://${value}/`);
  } catch {
    return undefined; // e.g. an IPv6 literal that is not one, or a dotted name the URL parser rejects
  }
  // The pattern already keeps these out; the parser's own view is checked as well, so that the two could
  // only disagree by refusing a host.
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return undefined;
  return url.host;
}

/**
 * The base of the resource URLs in a check-in's answer: `PUBLIC_URL` when it is set; else the scheme and
 * Host header of the request itself, so that a client that reached the server at `127.0.0.1`, a LAN address
 * or a name gets URLs on that same address. The scheme is the connection's, as express's `req.protocol`
 * reads it with `trust proxy` off (this server speaks plain HTTP, so it is `http`): behind a proxy that
 * terminates TLS or rewrites the host or path, set `PUBLIC_URL`. A request without a Host header (HTTP/1.0) gets `publicUrl`'s default.
 *
 * @throws AppError REQUEST_INVALID when the Host header is not a plain host[:port].
 */
export function resourceBase(req: IncomingMessage, config: Config): string {
  if (!config.publicUrlFromHost) return config.publicUrl;
  const header = req.headers.host;
  if (header === undefined || header === '') return config.publicUrl;
  const protocol = (req.socket as Partial<TLSSocket> | null)?.encrypted ? 'https' : 'http';
  const host = plainHost(header, protocol);
  if (host === undefined) {
    throw new AppError('REQUEST_INVALID', 'the Host header is not a plain host[:port]', [
      {
        path: 'Host',
        message:
          'resource URLs are built from the Host header when PUBLIC_URL is unset: it must be a DNS name, ' +
          'an IPv4 address or a bracketed IPv6 address, with an optional port',
      },
    ]);
  }
  return `${protocol}://${host}`;
}
