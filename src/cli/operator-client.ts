import type { ErrorDetail } from '../errors';
import type { OperatorCliConfig } from './cli-config';

/** A failure answered by the server: its HTTP status and the `{error: {code, message, details}}` body. */
export class RemoteError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly remoteMessage: string,
    readonly details: readonly ErrorDetail[],
    what: string,
  ) {
    super(
      `${what} failed: ${status} ${code}: ${remoteMessage}` +
        details.map((d) => `\n  ${d.path || '/'}: ${d.message}`).join(''),
    );
    this.name = 'RemoteError';
  }
}

/**
 * The operator endpoints over fetch, for the CLI. Every failure becomes an Error whose message a person can
 * act on: the server's code and every detail, or why the server could not be reached.
 */
export class OperatorClient {
  constructor(private readonly cli: OperatorCliConfig) {}

  /** Sends one operator request and returns the parsed JSON answer. */
  async request<T>(method: 'GET' | 'POST', path: string, body?: string): Promise<T> {
    const { serverUrl, token } = this.cli;
    if (!token)
      throw new Error(
        'no operator token: pass --token or set OPERATOR_TOKEN (a server started without one logs the token it generated)',
      );
    const what = `${method} ${path}`;
    let res: Response;
    try {
      res = await fetch(`${serverUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body,
      });
    } catch (e) {
      throw new Error(
        `cannot reach the Roundhouse server at ${serverUrl} (${cause(e)}); is it running (\`roundhouse start\`)? ` +
          '--server or ROUNDHOUSE_URL choose another',
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) throw remoteError(res.status, json, text, what);
    if (json === undefined) throw new Error(`${what}: the server answered ${res.status} without a JSON body`);
    return json as T;
  }
}

function remoteError(status: number, json: unknown, text: string, what: string): Error {
  const error = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)
    ?.error;
  if (error && typeof error.code === 'string') {
    const details = Array.isArray(error.details)
      ? (error.details as unknown[]).map((d) => {
          const o = (d ?? {}) as { path?: unknown; message?: unknown };
          return { path: String(o.path ?? ''), message: String(o.message ?? JSON.stringify(d)) };
        })
      : [];
    const hint =
      status === 401 && error.code === 'UNAUTHORIZED'
        ? ' (check --token or OPERATOR_TOKEN against the server)'
        : '';
    return new RemoteError(status, error.code, `${String(error.message ?? '')}${hint}`, details, what);
  }
  const snippet = text.trim().slice(0, 200);
  return new Error(`${what} failed: HTTP ${status}${snippet ? `: ${snippet}` : ''}`);
}

/** fetch hides the socket error (ECONNREFUSED, ENOTFOUND) in `cause`. */
function cause(e: unknown): string {
  const c = (e as { cause?: unknown }).cause;
  if (c instanceof Error) return c.message;
  return e instanceof Error ? e.message : String(e);
}
