import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import type Redis from 'ioredis';
import { isCluster, type RedisClient } from '../store/redis-client';
import { connectRedis, freePort, ping, redact, type RedisHandle } from './redis';

const log = pino({ level: 'silent' });

// Generous: the shared Redis serves the other test files meanwhile, and on a loaded machine 500 ms went by
// without an answer once in CI.
async function answers(url: string, timeoutMs = 10_000): Promise<boolean> {
  try {
    await ping(url, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/**
 * A listener that answers every command with +PONG after `delayMs` (never, when undefined): a Redis too busy
 * to answer at once, or something else on the port.
 */
async function slowListener(delayMs: number | undefined): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => {
      if (delayMs === undefined) return;
      // One reply per command: ioredis pipelines its connection set-up (CLIENT SETINFO, INFO) in one write.
      const commands = data.toString('latin1').match(/(^|\r\n)\*\d+\r\n/g)?.length ?? 0;
      setTimeout(() => socket.writable && socket.write('+PONG\r\n'.repeat(commands)), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A logger whose debug lines are kept, to count the probes connectRedis made. */
function probeLog(): { log: pino.Logger; probes(): number } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
  return { log: logger, probes: () => lines.filter((l) => l.includes('no Redis answered')).length };
}

/** A URL nothing listens on: a port that was free a moment ago. */
async function bogusUrl(): Promise<string> {
  return `redis://127.0.0.1:${await freePort()}`;
}

const handles: RedisHandle[] = [];
afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.close()));
});

describe('connectRedis', () => {
  test('fails clearly when REDIS_URL does not answer', async () => {
    const url = await bogusUrl();
    await expect(connectRedis({ redisUrl: url }, log)).rejects.toThrow(`REDIS_URL ${url} does not answer`);
  });

  const local = 'redis://127.0.0.1:6379';
  test('uses 127.0.0.1:6379 when REDIS_URL is not set and it answers', async () => {
    // The machine's Redis is a dependency of the tests, as for the integration tests: no skip without it.
    expect({ [local]: await answers(local) }).toEqual({ [local]: true });
    const h = await connectRedis({ redisUrl: undefined }, log);
    handles.push(h);
    expect(h.url).toBe(local);
    expect(h.private).toBe(false);
    const c = h.client();
    expect(await c.ping()).toBe('PONG');
    expect(isCluster(c)).toBe(false);
    const single = (client: RedisClient) => client as Redis;
    expect(single(c).options.maxRetriesPerRequest).not.toBeNull();
    expect(single(h.client({ forBullWorker: true })).options.maxRetriesPerRequest).toBeNull();
    await h.close();
    expect(c.status).toBe('end');
    // Closing the handle quits its connections, never the server it did not start.
    expect(await answers(local)).toBe(true);
  });

  test('uses REDIS_URL when set', async () => {
    expect({ [local]: await answers(local) }).toEqual({ [local]: true });
    const h = await connectRedis({ redisUrl: local }, log, { defaultUrl: await bogusUrl() });
    handles.push(h);
    expect(h.url).toBe(local);
    expect(h.private).toBe(false);
  });

  // No skip when redis-server is missing: that is a missing dependency, and the test fails on it.
  test('starts a private redis-server when nothing answers, and stops it on close', async () => {
    const h = await connectRedis({ redisUrl: undefined }, log, { defaultUrl: await bogusUrl() });
    handles.push(h);
    expect(h.private).toBe(true);
    expect(h.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    const c = h.client({ forBullWorker: true });
    await c.set('roundhouse-test', 'x');
    expect(await c.get('roundhouse-test')).toBe('x');
    // No persistence: nothing may be written to disk behind the operator's back.
    expect(await c.config('GET', 'save')).toEqual(['save', '']);
    expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    const dir = ((await c.config('GET', 'dir')) as string[])[1]!;
    expect(fs.existsSync(dir)).toBe(true);
    await h.close();
    expect(await answers(h.url)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('starts a private redis-server in a plain process too, where nothing else keeps it alive', async () => {
    // Under jest the test runner keeps the event loop busy; a CLI process has nothing but our own handles,
    // and once exited silently (code 0) while the private server was starting. Runs the built module
    // (`npm test` builds first).
    const built = path.join(__dirname, '..', '..', 'dist', 'src', 'runtime', 'redis.js');
    const script = `
      const { connectRedis } = require(${JSON.stringify(built)});
      const log = require('pino')({ level: 'silent' });
      connectRedis({ redisUrl: undefined }, log, { defaultUrl: ${JSON.stringify(await bogusUrl())} })
        .then(async (h) => { console.log('up', h.private); await h.close(); });`;
    const out = execFileSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out.trim()).toBe('up true');
  });

  test('a refused connection is probed once; a slow Redis at the default address is waited for, not replaced', async () => {
    const refusedLog = probeLog();
    await expect(
      connectRedis({ redisUrl: undefined }, refusedLog.log, {
        defaultUrl: await bogusUrl(),
        allowPrivate: false,
      }),
    ).rejects.toThrow(/no Redis answers/);
    expect(refusedLog.probes()).toBe(1);

    // Answers after 1.5 s: past the first probe's 500 ms, well within the second's 5 s.
    const slow = await slowListener(1500);
    try {
      const slowLog = probeLog();
      const h = await connectRedis({ redisUrl: undefined }, slowLog.log, { defaultUrl: slow.url });
      handles.push(h);
      expect({ url: h.url, private: h.private }).toEqual({ url: slow.url, private: false });
      expect(slowLog.probes()).toBe(1);
    } finally {
      await slow.close();
    }
  });

  test('something at the default address that never answers gets the second probe, then a private server', async () => {
    const silent = await slowListener(undefined);
    try {
      const silentLog = probeLog();
      const h = await connectRedis({ redisUrl: undefined }, silentLog.log, {
        defaultUrl: silent.url,
        slowProbeTimeoutMs: 1000,
      });
      handles.push(h);
      expect(h.private).toBe(true);
      expect(h.url).not.toBe(silent.url);
      expect(silentLog.probes()).toBe(2);
    } finally {
      await silent.close();
    }
  });

  test('a worker process does not start a private server', async () => {
    const url = await bogusUrl();
    await expect(
      connectRedis({ redisUrl: undefined }, log, { defaultUrl: url, allowPrivate: false }),
    ).rejects.toThrow(/REDIS_URL is not set and no Redis answers at .*apt-get install redis-server/);
  });

  test('says how to get a Redis when no redis-server is on PATH', async () => {
    const err = await connectRedis({ redisUrl: undefined }, log, {
      defaultUrl: await bogusUrl(),
      redisServer: 'roundhouse-no-such-redis-server',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const text = (err as Error).message;
    expect(text).toContain('REDIS_URL');
    expect(text).toContain('apt-get install redis-server');
    expect(text).toContain('docker compose up redis');
  });
});

test('redact hides the password of a Redis URL', () => {
  expect(redact('redis://user:secret@host:6380/2')).toBe('redis://user:***@host:6380/2');
  expect(redact('redis://host:6379')).toBe('redis://host:6379');
});
