import { loadConfig, type Config } from '../config';

type Env = Readonly<Record<string, string | undefined>>;

/** The default server of the operator commands when neither `--server` nor `ROUNDHOUSE_URL` is given. */
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8080';

/**
 * What the operator commands (`submit`, `status`, `pause`, `resume`, `cancel`, `delete`) need: where the
 * server is and the operator token. Flags win over the environment (`ROUNDHOUSE_URL`, `OPERATOR_TOKEN`);
 * like `loadConfig`, this is the only place the CLI reads those variables.
 */
export interface OperatorCliConfig {
  /** Base URL of the API, without a trailing slash. */
  readonly serverUrl: string;
  /** Bearer token of the operator endpoints; undefined when neither `--token` nor `OPERATOR_TOKEN` is set. */
  readonly token: string | undefined;
}

/** Parses the operator commands' settings from their flags and the environment. */
export function loadOperatorConfig(
  flags: { readonly server?: string; readonly token?: string },
  env: Env = process.env,
): OperatorCliConfig {
  const raw = flags.server || env.ROUNDHOUSE_URL || DEFAULT_SERVER_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${flags.server ? '--server' : 'ROUNDHOUSE_URL'} is not a URL: "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`${flags.server ? '--server' : 'ROUNDHOUSE_URL'} must be an http(s) URL, got "${raw}"`);
  return Object.freeze({
    serverUrl: url.toString().replace(/\/+$/, ''),
    token: flags.token || env.OPERATOR_TOKEN || undefined,
  });
}

/** The server's configuration plus which secrets were generated because the environment did not set them. */
export interface ServerCliConfig {
  readonly config: Config;
  /** Which secrets `loadConfig` made up: the operator token is then logged at start, the token secret noted. */
  readonly generated: { readonly operatorToken: boolean; readonly tokenSecret: boolean };
}

/**
 * Loads the server configuration for `roundhouse start` and `roundhouse worker`. A `--port` flag acts as if
 * `PORT` were set, so that the default `PUBLIC_URL` follows it.
 */
export function loadServerConfig(flags: { readonly port?: number }, env: Env = process.env): ServerCliConfig {
  const merged: Env = flags.port === undefined ? env : { ...env, PORT: String(flags.port) };
  return {
    config: loadConfig(merged),
    generated: { operatorToken: !env.OPERATOR_TOKEN, tokenSecret: !env.TOKEN_SECRET },
  };
}
