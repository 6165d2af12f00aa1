import { armFaults, InjectedFault, parseFaults } from '../faults';
import { newTaskId } from './ids';
import { Keys } from './keys';
import { PARTIALS_IN_SCRIPT } from './scripts/common';
import { createTestPlan, newRound, openTestStore, type TestStore } from './testing';
import type { RoundRef } from './types';

let t: TestStore;
beforeAll(() => {
  t = openTestStore('sweep');
});
afterEach(() => armFaults(new Map()));
afterAll(async () => {
  await t.close();
});

/** Every key of the plan (after `{id}:`), sorted. */
async function planKeys(id: string): Promise<string[]> {
  const head = `${t.prefix}:{${id}}:`;
  return (await t.keys()).filter((k) => k.startsWith(head)).map((k) => k.slice(head.length));
}

/**
 * Opens round 1.1 of a fresh plan with `tasks` tasks, all uploaded, and commits the first `covered`
 * uploads in partials of `workers` workers (one partial each, the uploads dealt out in turn).
 */
async function bigRound(tasks: number, covered: number, workers = 2): Promise<RoundRef> {
  const ref = { plan: await createTestPlan(t), round: 1, attempt: 1 };
  await t.store.openRound(
    newRound(ref, { selectionTarget: tasks, target: tasks, minReports: 1, minAggregate: 1 }),
  );
  const ids: string[] = [];
  for (let i = 0; i < tasks; i++) {
    const r = await t.store.tryAssign(ref.plan, newTaskId(), 2, newTaskId());
    if (!r.ok) throw new Error(`not assigned: ${r.reason}`);
    ids.push(r.task);
  }
  // Upload in parallel batches: a few hundred uploads one by one would be slow on a loaded machine.
  for (let i = 0; i < tasks; i += 50) {
    await Promise.all(
      ids.slice(i, i + 50).map(async (task) => {
        const r = await t.store.acceptUpload(ref, task, Uint8Array.of(1, 2), 3, tasks);
        if (!r.ok) throw new Error(`not accepted: ${r.code}`);
      }),
    );
  }
  for (let w = 0; w < workers; w++) {
    const mine = ids.slice(0, covered).filter((_, i) => i % workers === w);
    const r = await t.store.commitPartial(ref, `w${w}`, Uint8Array.of(w), mine);
    if (!r.ok) throw new Error(`not committed: ${r.conflicts.join(' ')}`);
  }
  return ref;
}

const uploadsLeft = async (id: string) => (await planKeys(id)).filter((k) => k.includes(':upload:')).length;

describe('the sweep of finished attempts', () => {
  test('fail moves the data aside in one step; a sweep of bounded steps that is cut short resumes to the end', async () => {
    // More tasks than a listpack-encoded hash holds, so that HSCAN honours COUNT (a listpack answers whole).
    const [, listpackMax] = (await t.redis.config('GET', 'hash-max-listpack-entries')) as string[];
    const TASKS = Number(listpackMax ?? 128) + 88;
    // More workers than PARTIALS_IN_SCRIPT: their partials go to the sweep too.
    const WORKERS = PARTIALS_IN_SCRIPT + 6;
    const ref = await bigRound(TASKS, 2 * WORKERS, WORKERS);
    const partials = async () => (await planKeys(ref.plan)).filter((k) => k.includes(':partial:')).length;
    expect(await partials()).toBe(WORKERS);
    expect(await uploadsLeft(ref.plan)).toBe(TASKS - 2 * WORKERS);

    // The process "dies" between the script and its own sweep.
    armFaults(parseFaults('before-sweep:1:throw'));
    await expect(t.store.fail(ref, 'cut short', 10)).rejects.toBeInstanceOf(InjectedFault);
    expect(await t.store.getRound(ref)).toMatchObject({ phase: 'failed', error: 'cut short' });
    // The live keys of the attempt are gone at once; its tasks and partials set wait under gc: for the sweep.
    const aside = await planKeys(ref.plan);
    expect(aside.filter((k) => /^r:1\.1:(tasks|covered|partials|devices|broadcast)$/.test(k))).toEqual([]);
    expect(aside).toEqual(expect.arrayContaining(['gc:1.1:tasks', 'gc:1.1:partials', 'sweep']));
    expect(await t.redis.smembers(new Keys(t.prefix).global.sweeping)).toEqual([ref.plan]);
    expect(await t.redis.object('ENCODING', `${t.prefix}:{${ref.plan}}:gc:1.1:tasks`)).toBe('hashtable');

    // Steps of about 50 fields: two steps cannot finish.
    expect(await t.store.sweep({ step: 50, maxSteps: 2 })).toBe(false);
    const midway = await uploadsLeft(ref.plan);
    expect(midway).toBeLessThan(TASKS - 2 * WORKERS);
    expect(midway).toBeGreaterThan(0);
    expect(await t.redis.hlen(`${t.prefix}:{${ref.plan}}:gc:1.1:tasks`)).toBeGreaterThan(0);

    expect(await partials()).toBe(WORKERS);

    expect(await t.store.sweep({ step: 50 })).toBe(true);
    // The list of kept broadcasts went with its one entry, the failed attempt's.
    expect(await planKeys(ref.plan)).toEqual(['history', 'meta', 'plan', 'r:1.1', 'state']);
    expect(await t.redis.exists(new Keys(t.prefix).global.sweeping)).toBe(0);
    expect(await t.store.sweep()).toBe(true);
  });

  test('complete leaves the same keys as fail, broadcast aside; its own sweep runs to the end', async () => {
    const ref = await bigRound(200, 200);
    expect((await t.store.beginFinalize(ref)).phase).toBe('finalizing');
    expect((await t.store.complete(ref, Uint8Array.of(9), { ok: 1 }, 200, 20)).changed).toBe(true);
    expect(await planKeys(ref.plan)).toEqual([
      'broadcasts',
      'history',
      'meta',
      'plan',
      'r:1.1',
      'r:1.1:broadcast',
      'state',
    ]);
  });

  test('a sweep interrupted after a complete is finished by the next fail or complete of the plan', async () => {
    const ref = await bigRound(150, 150);
    await t.store.beginFinalize(ref);
    armFaults(parseFaults('before-sweep:1:throw'));
    await expect(t.store.complete(ref, Uint8Array.of(9), undefined, 150, 20)).rejects.toBeInstanceOf(
      InjectedFault,
    );
    // Two workers' partials went inside the script; the tasks wait for the sweep.
    expect((await planKeys(ref.plan)).filter((k) => k.startsWith('gc:') || k.includes(':partial'))).toEqual([
      'gc:1.1:tasks',
    ]);
    // Round 2 opens and fails: that fail's sweep takes round 1's leftovers too.
    const ref2 = { ...ref, round: 2 };
    await t.store.openRound(newRound(ref2));
    await t.store.fail(ref2, 'too few clients', 30);
    expect((await planKeys(ref.plan)).filter((k) => k.startsWith('gc:') || k === 'sweep')).toEqual([]);
  });
});
