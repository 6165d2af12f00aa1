/**
 * Runs a Lua script by its SHA1 and loads it on the first `NOSCRIPT`, like ioredis' `defineCommand` but with
 * typed arguments and no methods patched onto the connection.
 */
import { createHash } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
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

  /**
   * Runs the script inside a MULTI after the commands `before` queues (all in the script's slot), so that
   * they and the script are one atomic step; `keys` are KEYS[1..], `args` ARGV[1..]. A Redis that does not
   * know the script yet fails only the EVALSHA inside the transaction: the whole transaction is then sent
   * again with EVAL, `before` included (its commands must be safe to repeat).
   */
  async runAfter(
    redis: RedisClient,
    before: (tx: ChainableCommander) => ChainableCommander,
    keys: readonly string[],
    args: readonly ScriptArg[],
  ): Promise<unknown> {
    for (const withSource of [false, true]) {
      const tx = before(redis.multi());
      if (withSource) tx.eval(this.source, keys.length, ...keys, ...args);
      else tx.evalsha(this.sha, keys.length, ...keys, ...args);
      let results: [Error | null, unknown][] | null;
      try {
        results = await tx.exec();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new Error(`Lua script ${this.name} failed: ${message}`, { cause: err });
      }
      if (!results) throw new Error(`Lua script ${this.name}: its transaction was aborted`);
      const failed = results.find(([err]) => err);
      const [scriptErr, reply] = results.at(-1)!;
      if (scriptErr && !withSource && scriptErr.message.startsWith('NOSCRIPT')) continue;
      if (failed) {
        throw new Error(`Lua script ${this.name} failed: ${failed[0]!.message}`, { cause: failed[0] });
      }
      return reply;
    }
    throw new Error(`Lua script ${this.name}: not run`);
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
