import type { Redis } from 'ioredis';
import { newTaskId } from './ids';
import { createTestPlan, newRound, openTestStore, type TestStore } from './testing';
import type { RoundRef } from './types';

// What a plan leaves in Redis after many rounds (docs/server.md, "Retention"), at the defaults:
// RETAIN_BROADCASTS 2, RETAIN_FAILED_ATTEMPTS 3.
const RETAIN_BROADCASTS = 2;
const RETAIN_FAILED_ATTEMPTS = 3;
const BROADCAST_BYTES = 64 * 1024;
const UPLOAD_BYTES = 1024;

let t: TestStore;
beforeAll(() => {
  t = openTestStore('retention');
});
afterAll(async () => {
  await t.close();
});

/** The plan's keys (after `{id}:`), sorted. */
async function planKeys(id: string): Promise<string[]> {
  const head = `${t.prefix}:{${id}}:`;
  return (await t.keys()).filter((k) => k.startsWith(head)).map((k) => k.slice(head.length));
}

/** MEMORY USAGE summed over keys (SAMPLES 0: every element counted). */
async function bytesOf(redis: Redis, keys: readonly string[]): Promise<number> {
  const pipeline = redis.pipeline();
  for (const k of keys) pipeline.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
  const replies = (await pipeline.exec()) ?? [];
  return replies.reduce((sum, [err, n]) => {
    if (err) throw err;
    return sum + Number(n ?? 0);
  }, 0);
}

/**
 * Opens attempt `ref` with a 64 KiB broadcast, assigns three tasks and uploads two (1 KiB each), commits
 * one upload; then fails the attempt (one upload still queued, one partial committed) or commits the other
 * upload and completes it.
 */
async function runAttempt(ref: RoundRef, outcome: 'fail' | 'complete', now: number): Promise<void> {
  const broadcast = new Uint8Array(BROADCAST_BYTES).fill(ref.round % 251);
  const opened = await t.store.openRound(
    newRound(ref, { broadcast, selectionTarget: 3, target: 2, minReports: 1, minAggregate: 1, now }),
  );
  if (!opened) throw new Error(`round ${ref.round}.${ref.attempt} did not open`);
  const tasks: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await t.store.tryAssign(ref.plan, newTaskId(), now, newTaskId());
    if (!r.ok) throw new Error(`not assigned: ${r.reason}`);
    tasks.push(r.task);
  }
  for (const task of tasks.slice(0, 2)) {
    const r = await t.store.acceptUpload(ref, task, new Uint8Array(UPLOAD_BYTES).fill(7), now, 64);
    if (!r.ok) throw new Error(`not accepted: ${r.code}`);
  }
  await t.store.commitPartial(ref, 'w1', new Uint8Array(UPLOAD_BYTES), tasks.slice(0, 1));
  if (outcome === 'fail') {
    expect((await t.store.fail(ref, 'too few clients', now)).changed).toBe(true);
    return;
  }
  await t.store.commitPartial(ref, 'w2', new Uint8Array(UPLOAD_BYTES), tasks.slice(1, 2));
  expect((await t.store.beginFinalize(ref)).phase).toBe('finalizing');
  const state = new Uint8Array(UPLOAD_BYTES).fill(ref.round % 251);
  expect((await t.store.complete(ref, state, { loss: 1 / ref.round }, 2, now)).changed).toBe(true);
}

/** Failed attempts before the completed one, for round n of the 100. */
const failuresOf = (n: number): number => (n % 25 === 0 ? 5 : n % 10 === 0 ? 1 : 0);

describe('retention', () => {
  test('a 100-round plan keeps its round hashes, RETAIN_BROADCASTS broadcasts and no data of any attempt', async () => {
    const ROUNDS = 100;
    const id = await createTestPlan(t, { rounds: ROUNDS });
    let keptFailures = 0;
    for (let n = 1; n <= ROUNDS; n++) {
      const failures = failuresOf(n);
      for (let a = 1; a <= failures; a++) await runAttempt({ plan: id, round: n, attempt: a }, 'fail', n);
      await runAttempt({ plan: id, round: n, attempt: failures + 1 }, 'complete', n);
      keptFailures += Math.min(failures, RETAIN_FAILED_ATTEMPTS);
    }
    expect(await t.store.getPlan(id)).toMatchObject({ status: 'completed', round: ROUNDS });
    expect(keptFailures).toBe(20);

    const keys = await planKeys(id);
    // The bound, stated: plan, meta, state, history and the list of kept broadcasts; one hash per completed
    // round and per kept failed attempt (at most RETAIN_FAILED_ATTEMPTS a round); RETAIN_BROADCASTS
    // broadcasts. Nothing of any attempt's tasks, uploads, partials, covered or device sets.
    const bound = 5 + ROUNDS + keptFailures + RETAIN_BROADCASTS;
    expect(keys.length).toBeLessThanOrEqual(bound);
    expect(keys.filter((k) => k.endsWith(':broadcast'))).toEqual(['r:100.6:broadcast', 'r:99.1:broadcast']);
    expect(keys.filter((k) => /^r:[0-9.]+$/.test(k))).toHaveLength(ROUNDS + keptFailures);
    expect(keys.filter((k) => !/^r:[0-9.]+(:broadcast)?$/.test(k)).sort()).toEqual(
      ['broadcasts', 'history', 'meta', 'plan', 'state'].sort(),
    );
    // Bytes: the kept broadcasts, the state, and about a kilobyte per round hash (its counts and output).
    const bytes = await bytesOf(t.redis, await t.keys());
    const byteBound =
      RETAIN_BROADCASTS * (BROADCAST_BYTES + 1024) + (ROUNDS + keptFailures) * 1024 + 16 * 1024;
    expect(bytes).toBeLessThanOrEqual(byteBound);
    // Every completed round is still listed with its output.
    const rounds = await t.store.listRounds(id);
    expect(rounds.filter((r) => r.phase === 'completed')).toHaveLength(ROUNDS);
    expect(rounds.filter((r) => r.phase === 'failed')).toHaveLength(keptFailures);
    expect(rounds.find((r) => r.round === 7)?.output).toEqual({ loss: 1 / 7 });
  }, 120_000);

  test('a failed attempt leaves only its hash: no broadcast, tasks, uploads, partials or covered set', async () => {
    const id = await createTestPlan(t);
    const ref = { plan: id, round: 1, attempt: 1 };
    await runAttempt(ref, 'fail', 5);
    expect(await t.store.getRound(ref)).toMatchObject({ phase: 'failed', error: 'too few clients' });
    expect(await t.store.getBroadcast(ref)).toBeUndefined();
    expect((await planKeys(id)).filter((k) => k.startsWith('r:') || k.startsWith('gc:'))).toEqual(['r:1.1']);
  });

  test('a round keeps its last RETAIN_FAILED_ATTEMPTS failed attempts, in the hashes and the history', async () => {
    const id = await createTestPlan(t);
    for (let a = 1; a <= RETAIN_FAILED_ATTEMPTS + 2; a++)
      await runAttempt({ plan: id, round: 1, attempt: a }, 'fail', a);
    const kept = Array.from({ length: RETAIN_FAILED_ATTEMPTS }, (_, i) => `r:1.${i + 3}`);
    expect((await planKeys(id)).filter((k) => k.startsWith('r:')).sort()).toEqual(kept.sort());
    expect((await t.store.listRounds(id)).map((r) => `${r.round}.${r.attempt}`)).toEqual(
      kept.map((k) => k.slice(2)),
    );
  });
});
