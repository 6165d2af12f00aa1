import { newPlanId, newTaskId } from './ids';
import { allBytes, newRound, openTestStore, type TestStore } from './testing';
import type { RoundRef } from './types';

// commit-partial counts the worker's rejected uploads in the same step as the commit; getPhase reads one
// field. Against a real Redis.
let t: TestStore;
beforeAll(() => {
  t = openTestStore('commit-rejected');
});
afterAll(async () => {
  await t.close();
});

async function openAttempt(): Promise<{ ref: RoundRef; tasks: string[] }> {
  const id = newPlanId();
  await t.store.createPlan({
    id,
    json: '{}',
    name: 'n',
    population: 'cr',
    rounds: 1,
    state: allBytes(),
    now: 1,
  });
  const ref = { plan: id, round: 1, attempt: 1 };
  await t.store.openRound(newRound(ref, { selectionTarget: 5, target: 5 }));
  const tasks: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await t.store.tryAssign(id, newTaskId(), 2, `device-${i}`);
    if (!r.ok) throw new Error(r.reason);
    tasks.push(r.task);
    expect((await t.store.acceptUpload(ref, r.task, Uint8Array.of(i), 3, 10)).ok).toBe(true);
  }
  return { ref, tasks };
}

describe('commitPartial with rejected uploads', () => {
  it('adds them to rejected with the commit, and nothing when it conflicts', async () => {
    const { ref, tasks } = await openAttempt();
    await t.store.setHeld(ref, 'w1', 2);
    expect(await t.store.commitPartial(ref, 'w1', allBytes(), tasks.slice(0, 2), 1)).toEqual({
      ok: true,
      ready: false,
    });
    expect(await t.store.getRound(ref)).toMatchObject({ rejected: 1, accumulated: 2 });
    expect(await t.store.heldUploads(ref)).toBe(0);
    // A conflicting commit changes nothing, its rejected count included.
    const res = await t.store.commitPartial(ref, 'w2', allBytes(), tasks.slice(1), 1);
    expect(res).toEqual({ ok: false, conflicts: [tasks[1]] });
    expect(await t.store.getRound(ref)).toMatchObject({ rejected: 1, accumulated: 2 });
    expect(await t.store.commitPartial(ref, 'w2', allBytes(), tasks.slice(2))).toEqual({
      ok: true,
      ready: false,
    });
    expect(await t.store.getRound(ref)).toMatchObject({ rejected: 1, accumulated: 3 });
  });
});

describe('getPhase', () => {
  it('reads the phase, undefined for an attempt that does not exist', async () => {
    const { ref } = await openAttempt();
    expect(await t.store.getPhase(ref)).toBe('selecting');
    await t.store.fail(ref, 'test', 5);
    expect(await t.store.getPhase(ref)).toBe('failed');
    expect(await t.store.getPhase({ ...ref, round: 9 })).toBeUndefined();
  });
});
