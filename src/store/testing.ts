/**
 * Helpers for tests that run the store against a real Redis (127.0.0.1:6379): a unique key prefix per
 * test file, and a scan of what the store left behind. Shipped in the build so that tests of the API and
 * the workers can use them too.
 */
import { Redis } from 'ioredis';
import { newPlanId } from './ids';
import { RedisRoundStore } from './redis-round-store';
import type { NewRound, RoundRef } from './types';

/** A store on its own connection and a prefix no other test run shares. */
export interface TestStore {
  readonly redis: Redis;
  readonly store: RedisRoundStore;
  readonly prefix: string;
  /** Every key under the prefix, sorted. */
  keys(): Promise<string[]>;
  /** Deletes every key under the prefix and closes the connection. */
  close(): Promise<void>;
}

/** Opens a store on a fresh prefix `rh-test-<pid>-<ms>-<name>-<n>`. */
export function openTestStore(name: string): TestStore {
  const prefix = `rh-test-${process.pid}-${Date.now()}-${name}-${++opened}`;
  const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
  const store = new RedisRoundStore(redis, prefix);
  return {
    redis,
    store,
    prefix,
    keys: () => scanKeys(redis, `${prefix}:*`),
    close: async () => {
      await store.clear();
      await redis.quit();
    },
  };
}
let opened = 0;

/** Every key matching a glob, sorted. */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found.sort();
}

/** A `NewRound` with small targets, overridable. */
export function newRound(ref: RoundRef, over: Partial<Omit<NewRound, 'ref'>> = {}): NewRound {
  return {
    ref,
    broadcast: new Uint8Array([1, 2, 3]),
    selectionTarget: 4,
    target: 3,
    minReports: 2,
    minAggregate: 2,
    secureParams: { bitwidth: [8], max_input: [100], modulus: [257] },
    now: 1_000,
    ...over,
  };
}

/**
 * Creates a plan with an empty document and every byte value as its state, on `population` (default
 * `test`) with `rounds` rounds (default 2); its id.
 */
export async function createTestPlan(
  t: TestStore,
  over: { population?: string; rounds?: number } = {},
): Promise<string> {
  const id = newPlanId();
  await t.store.createPlan({
    id,
    json: '{}',
    name: 'n',
    population: over.population ?? 'test',
    rounds: over.rounds ?? 2,
    state: allBytes(),
    now: 1,
  });
  return id;
}

/**
 * Creates a plan as {@link createTestPlan} and opens its round 1.1 as {@link newRound} makes it, with
 * `round` over its defaults; the round's ref.
 */
export async function openTestRound(
  t: TestStore,
  over: { population?: string; rounds?: number; round?: Partial<Omit<NewRound, 'ref'>> } = {},
): Promise<RoundRef> {
  const ref: RoundRef = { plan: await createTestPlan(t, over), round: 1, attempt: 1 };
  await t.store.openRound(newRound(ref, over.round));
  return ref;
}

/** Every byte value once: what a binary-safe path must carry unchanged. */
export function allBytes(): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, i) => i);
}
