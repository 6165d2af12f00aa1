import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import type Redis from 'ioredis';
import { isCluster, type RedisClient } from '../store/redis-client';
import { connectRedis, freePort, ping, redact, type RedisHandle } from './redis';

const log = pino({ level: 'silent' });

async function answers(url: string): Promise<boolean> {
  try {
    await ping(url, 500);
    return true;
  } catch {
    return false;
  }
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
