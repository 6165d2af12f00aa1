import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import Redis from 'ioredis';
import { loadConfig } from '../config';
import { ping } from './redis';
import { startServer, type RunningServer } from './server';

const localRedis = 'redis://127.0.0.1:6379';

/** A logger whose JSON lines the test can read. */
function memoryLogger(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = pino({ level: 'debug' }, stream);
  return {
    log,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function removeKeys(prefix: string): Promise<void> {
  const redis = new Redis(localRedis);
  try {
    for (const match of [`${prefix}:*`, `{${prefix}}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 500);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

const prefix = `rhtest-server-${randomBytes(4).toString('hex')}`;
let server: RunningServer | undefined;

// These tests need the machine's Redis, as the integration tests do: without one they fail, not skip.
beforeAll(async () => {
  await ping(localRedis, 10_000).catch((err: unknown) => {
    throw new Error(`no Redis answers at ${localRedis} (${String(err)}): start one (.ci/run does)`);
  });
});

afterEach(async () => {
  await server?.close();
  server = undefined;
});

afterAll(async () => {
  await removeKeys(prefix);
});

test('port 0 listens on a free port, logs a generated operator token, and closes in order', async () => {
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', REDIS_PREFIX: prefix, REDIS_URL: localRedis });
  const { log, lines } = memoryLogger();
  server = await startServer(config, { worker: true, log, generated: { operatorToken: true } });
  expect(server.port).toBeGreaterThan(0);
  expect(server.url).toBe(`http://127.0.0.1:${server.port}`);

  const listening = lines().find((l) => l.msg === 'API listening');
  expect(listening).toMatchObject({
    url: server.url,
    resource_urls: 'on the Host of each check-in (PUBLIC_URL is unset)',
    worker: true,
  });
  expect(lines().find((l) => l.operator_token !== undefined)?.operator_token).toBe(config.operatorToken);

  expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  const plans = await fetch(`${server.url}/v1/plans`, {
    headers: { authorization: `Bearer ${config.operatorToken}` },
  });
  expect(plans.status).toBe(200);

  await server.close();
  await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  const closed = lines()
    .filter((l) => l.msg === 'closed')
    .map((l) => l.what);
  expect(closed).toEqual(['http', 'program events', 'programs', 'worker', 'isolates', 'jobs', 'redis']);
});

test('a configured operator token is never logged; --no-worker starts no worker', async () => {
  const token = randomBytes(16).toString('hex');
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_PREFIX: prefix,
    REDIS_URL: localRedis,
    OPERATOR_TOKEN: token,
  });
  const { log, lines } = memoryLogger();
  server = await startServer(config, { worker: false, log, generated: { operatorToken: false } });
  await server.close();
  expect(JSON.stringify(lines())).not.toContain(token);
  expect(
    lines()
      .map((l) => l.what)
      .filter(Boolean),
  ).toEqual(['http', 'program events', 'isolates', 'jobs', 'redis']);
});

test('a port in use fails with a message that says what to do, and releases Redis', async () => {
  const base = { HOST: '127.0.0.1', REDIS_PREFIX: prefix, REDIS_URL: localRedis };
  const { log } = memoryLogger();
  server = await startServer(loadConfig({ ...base, PORT: '0' }), { worker: false, log });
  const taken = String(server.port);
  const { log: log2, lines } = memoryLogger();
  await expect(
    startServer(loadConfig({ ...base, PORT: taken }), { worker: false, log: log2 }),
  ).rejects.toThrow(`port ${taken} on 127.0.0.1 is in use`);
  expect(
    lines()
      .map((l) => l.what)
      .filter(Boolean),
  ).toEqual(['program events', 'isolates', 'jobs', 'redis']);
});
