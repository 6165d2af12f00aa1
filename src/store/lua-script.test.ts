import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { LuaScript } from './lua-script';

const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const prefix = `rh-test-${process.pid}-${Date.now()}-lua`;
afterAll(async () => {
  await redis.del(`${prefix}:k`);
  await redis.quit();
});

describe('LuaScript', () => {
  it('loads an unknown script on NOSCRIPT, then runs it by digest, passing bytes unchanged', async () => {
    // A fresh source, so that Redis cannot have cached it: the first run takes the EVAL path.
    const script = new LuaScript(
      'echo',
      `-- ${randomBytes(8).toString('hex')}\nredis.call('SET', KEYS[1], ARGV[1]); return {ARGV[2], 7}`,
    );
    expect(await redis.script('EXISTS', script.sha)).toEqual([0]);
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(await script.run(redis, [`${prefix}:k`], [bytes, 'x'])).toEqual(['x', 7]);
    expect(await redis.script('EXISTS', script.sha)).toEqual([1]);
    expect(await script.run(redis, [`${prefix}:k`], [bytes, 'y'])).toEqual(['y', 7]);
    expect(await redis.getBuffer(`${prefix}:k`)).toEqual(bytes);
  });

  it('names the script in errors', async () => {
    const script = new LuaScript('broken', `return redis.call('NOSUCHCOMMAND')`);
    await expect(script.run(redis, [], [])).rejects.toThrow(/Lua script broken failed/);
  });
});
