import { Redis } from 'ioredis';
import { createLogger } from '../log/logger';
import { WorkerIdTaken, WorkerLease, checkWorkerId } from './lease';

// The lease on a worker id against the local Redis, with a short time to live so that lapses come quickly.
const prefix = `rh-lease-${process.pid}-${Date.now()}`;
const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
// Long enough that a loaded machine's late timers do not let a renewed lease lapse.
const TTL = 1500;
const leases: WorkerLease[] = [];
const lease = (id: string) => {
  const l = new WorkerLease(redis, prefix, id, TTL, log);
  leases.push(l);
  return l;
};
const key = (id: string) => `${prefix}:worker:{${id}}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await Promise.all(leases.map((l) => l.release()));
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

test('a second process given a live id refuses to start; once the first releases it, the id is taken at once', async () => {
  const first = lease('w1');
  await first.acquire();
  expect(first.held()).toBe(true);
  expect(first.epoch).toBe(1);
  const token = await redis.get(key('w1'));
  const started = Date.now();
  // It waits out one lease period (a dead holder's lease would lapse), sees it renewed, and refuses.
  await expect(lease('w1').acquire()).rejects.toThrow(WorkerIdTaken);
  expect(Date.now() - started).toBeGreaterThanOrEqual(TTL / 2);
  await expect(lease('w1').acquire()).rejects.toThrow(
    /worker id "w1" is held by another live aggregation worker/,
  );
  expect(await redis.get(key('w1'))).toBe(token);
  expect(first.held()).toBe(true);

  await first.release();
  expect(await redis.exists(key('w1'))).toBe(0);
  const next = lease('w1');
  await next.acquire();
  expect(next.epoch).toBe(2);
});

test('renewal keeps the lease across many of its lifetimes', async () => {
  const l = lease('w2');
  await l.acquire();
  const token = await redis.get(key('w2'));
  for (let i = 0; i < 10; i++) {
    await sleep(500);
    expect(await redis.get(key('w2'))).toBe(token);
    expect(l.held()).toBe(true);
  }
});

test('a lease its holder stopped renewing (it died) lapses, and the next process takes the id with a higher epoch', async () => {
  // What a SIGKILLed holder leaves: its token, with the time to live running out.
  await redis.set(key('w3'), 'dead-token', 'PX', TTL);
  await redis.set(`${prefix}:worker:{w3}:epoch`, 7);
  const l = lease('w3');
  await l.acquire();
  expect(l.epoch).toBe(8);
  expect(await redis.get(key('w3'))).not.toBe('dead-token');
});

test('a holder whose lease was taken over stops judging it held, and takes it back only once it is free', async () => {
  const zombie = lease('w4');
  await zombie.acquire();
  // The zombie was paused past its lease: it lapsed, and another process took the id.
  await redis.del(key('w4'));
  const live = lease('w4');
  await live.acquire();
  expect(live.epoch).toBe(zombie.epoch + 1);
  // Its next renewal finds another token.
  for (const end = Date.now() + 10_000; zombie.held() && Date.now() < end;) await sleep(20);
  expect(zombie.held()).toBe(false);
  expect(await zombie.reacquire()).toBe(false);
  expect(live.held()).toBe(true);
  await live.release();
  expect(await zombie.reacquire()).toBe(true);
  expect(zombie.held()).toBe(true);
  expect(zombie.epoch).toBe(live.epoch + 1);
});

test('a holder marked lost (a fenced commit) is not held, and reacquires its own lease with the same epoch', async () => {
  const l = lease('w5');
  await l.acquire();
  const epoch = l.epoch;
  l.markLost();
  expect(l.held()).toBe(false);
  expect(await l.reacquire()).toBe(true);
  expect(l.epoch).toBe(epoch);
});

test('worker ids are checked: they name Redis keys', () => {
  expect(checkWorkerId('w-1.a_b')).toBe('w-1.a_b');
  for (const bad of ['', 'a{b}', 'a b', 'x'.repeat(129)])
    expect(() => checkWorkerId(bad)).toThrow(/worker id/);
});
