import type { Command } from 'commander';
import { OperatorApi } from '../client/operator';
import { isRoundhouseError } from '../client/errors';
import type { OperatorCliConfig } from './cli-config';

/**
 * The SDK's operator client for a CLI command: it needs a token, and every failure becomes an Error whose
 * message a person can act on (the server's code and every detail, or why the server could not be reached).
 */
export function operatorApi(cli: OperatorCliConfig): {
  call<T>(what: string, f: (api: OperatorApi) => Promise<T>): Promise<T>;
} {
  const { serverUrl, token } = cli;
  if (!token) {
    throw new Error(
      'no operator token: pass --token or set OPERATOR_TOKEN (a server started without one logs the token it generated)',
    );
  }
  const api = new OperatorApi(serverUrl, token);
  return {
    async call(what, f) {
      try {
        return await f(api);
      } catch (e) {
        throw explain(e, what);
      }
    },
  };
}

/** A person-readable Error for a failed operator call. */
export function explain(e: unknown, what: string): Error {
  if (!isRoundhouseError(e)) return e instanceof Error ? e : new Error(String(e));
  if (e.code === 'NETWORK') {
    return new Error(
      `${e.message}; is it running (\`roundhouse start\`)? --server or ROUNDHOUSE_URL choose another`,
    );
  }
  const hint =
    e.status === 401 && e.code === 'UNAUTHORIZED'
      ? ' (check --token or OPERATOR_TOKEN against the server)'
      : '';
  return new Error(
    `${what} failed: ${e.status} ${e.code}: ${e.message}${hint}` +
      e.details.map((d) => `\n  ${d.path || '/'}: ${d.message}`).join(''),
  );
}

/** Adds the `--server` and `--token` options every operator command takes. */
export function withServerOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'server URL (default: ROUNDHOUSE_URL, else http://127.0.0.1:8080)')
    .option('--token <token>', 'operator token (default: OPERATOR_TOKEN)');
}
