/**
 * Runs a Lua script by its SHA1 and loads it on the first `NOSCRIPT`, like ioredis' `defineCommand` but with
 * typed arguments and no methods patched onto the connection.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-client';

/** One argument of a script: binary values travel as Buffers, untouched by any text encoding. */
export type ScriptArg = string | number | Buffer;

/** A Lua script with its SHA1, run with EVALSHA so that only the digest crosses the wire after first use. */
export class LuaScript {
  readonly sha: string;

  constructor(
    /** Names the script in error messages. */
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script; `keys` are KEYS[1..], `args` ARGV[1..]. */
  async run(redis: RedisClient, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    try {
      try {
        return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
      } catch (err) {
        // A restarted or failed-over Redis forgets loaded scripts: EVAL sends the source once and caches it.
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
          return await redis.eval(this.source, keys.length, ...keys, ...args);
        }
        throw err;
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`Lua script ${this.name} failed: ${message}`, { cause: err });
    }
  }
}
