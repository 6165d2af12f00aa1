import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import { checkEvictionPolicy, type Core } from '../src/runtime/core';
import { TestRedisServer } from './support/redis-server';

// A Redis that may evict keys could drop an accepted upload before a worker folds it: the server says so at
// start. Against a redis-server of the test's own (the policy is server-wide).
let server: TestRedisServer | undefined;
let client: Redis | undefined;
afterAll(async () => {
  await client?.quit();
  await server?.remove();
});

test('a Redis whose maxmemory-policy may evict keys is warned about at start; noeviction is not', async () => {
  server = await TestRedisServer.start();
  client = new Redis(server.url);
  const lines: { msg: string; maxmemory_policy?: string }[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    }),
  );
  const core = { connection: client } as unknown as Core;

  await client.config('SET', 'maxmemory-policy', 'noeviction');
  expect(await checkEvictionPolicy(core, log)).toBe('noeviction');
  expect(lines.filter((l) => l.msg.startsWith('Redis may evict keys'))).toEqual([]);

  await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
  expect(await checkEvictionPolicy(core, log)).toBe('allkeys-lru');
  expect(lines.filter((l) => l.msg.startsWith('Redis may evict keys'))).toMatchObject([
    { maxmemory_policy: 'allkeys-lru' },
  ]);
});
