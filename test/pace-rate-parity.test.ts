/**
 * The pure check-in rate window that the pace simulation runs (src/rounds/pace-rate.ts) against the store's
 * own `recordCheckin` on a real Redis: one sequence of check-ins, the same rate after each.
 */
import { Redis } from 'ioredis';
import { CheckinRateWindow } from '../src/rounds/pace-rate';
import { seededRandom } from '../src/rounds/pace-sim';
import { Keys } from '../src/store/keys';
import { RedisRoundStore } from '../src/store/redis-round-store';

const prefix = `rh-pace-rate-${process.pid}-${Date.now()}`;
const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const store = new RedisRoundStore(redis, prefix);

afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

it('gives the same rate as the store for the same check-ins', async () => {
  const random = seededRandom(7);
  const window = new CheckinRateWindow();
  // Bursts, quiet spells longer than the window and the first seconds of a population: 400 check-ins over
  // about 4 minutes of virtual time, starting on an odd millisecond.
  let now = 1_700_000_000_123;
  const pairs: [number, number][] = [];
  // Only a population with a plan keeps a rate.
  await redis.sadd(new Keys(prefix).global.population('pop'), 'p-listed');
  for (let i = 0; i < 400; i++) {
    now += random() < 0.02 ? 70_000 : Math.floor(random() * (random() < 0.5 ? 50 : 1500));
    pairs.push([(await store.recordCheckin('pop', now)).rate, window.record(now)]);
  }
  expect(new Set(pairs.map(([s]) => s)).size).toBeGreaterThan(50);
  expect(pairs.filter(([s, w]) => Math.abs(s - w) > 1e-9)).toEqual([]);
});
