/**
 * The connections of a Redis handle against a redis-server of the test's own: a command fails within
 * REDIS_COMMAND_TIMEOUT_MS while Redis does not answer (instead of waiting for it), connection errors are
 * logged once per kind a while rather than dropped, and the connection recovers by itself.
 */
import pino from 'pino';
import { Writable } from 'node:stream';
import { connectRedis, type RedisHandle } from '../src/runtime/redis';
import { TestRedisServer } from './support/redis-server';

let server: TestRedisServer;
let handle: RedisHandle | undefined;
const lines: {
  msg: string;
  level: number;
  suppressed?: number;
  connection?: string;
  err?: { code?: string; message?: string };
}[] = [];
const log = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  }),
);

beforeAll(async () => {
  server = await TestRedisServer.start();
});
afterAll(async () => {
  await handle?.close();
  await server?.remove();
});

test('a command fails within the timeout while Redis does not answer; errors are logged, rate-limited; it recovers', async () => {
  handle = await connectRedis({ redisUrl: server.url, redisCommandTimeoutMs: 500 }, log);
  const client = handle.client({ name: 'roundhouse:test' });
  await client.set('roundhouse-test', 'x');

  // A process that blocks its own event loop longer than the timeout does not fail a command that Redis
  // answered in time: its reply waits in the socket while the timer expires.
  const answered = client.get('roundhouse-test');
  const until = Date.now() + 1500;
  while (Date.now() < until) {
    // busy: the event loop is blocked
  }
  expect(await answered).toBe('x');

  server.freeze();
  const t0 = Date.now();
  await expect(client.get('roundhouse-test')).rejects.toThrow('Command timed out');
  // A generous bound: without the timeout the command waits for as long as Redis is frozen.
  expect(Date.now() - t0).toBeLessThan(4000);
  server.thaw();

  // Down for a while: ioredis retries every 50..2000 ms and reports each failure.
  await server.stop();
  const down = Date.now();
  await expect(client.get('roundhouse-test')).rejects.toThrow(/max retries|Connection is closed/);
  expect(Date.now() - down).toBeLessThan(4000);
  await new Promise((r) => setTimeout(r, 2500));
  const errors = lines.filter(
    (l) => l.msg === 'Redis connection error; retrying' && l.connection === 'roundhouse:test',
  );
  // Every retry fails, but each kind of failure is logged once in the window: a stop that resets the open
  // socket (ECONNRESET) before the reconnects are refused (ECONNREFUSED) gives two kinds, not two lines of one.
  const kinds = errors.map((l) => l.err?.code ?? l.err?.message);
  expect(errors.length).toBeGreaterThanOrEqual(1);
  expect(new Set(kinds).size).toBe(kinds.length);

  await server.restart();
  const deadline = Date.now() + 20_000;
  while (!lines.some((l) => l.msg === 'Redis connection ready again' && l.connection === 'roundhouse:test')) {
    if (Date.now() > deadline) throw new Error('no recovery logged in 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(await client.get('roundhouse-test')).toBe('x');
}, 60_000);
