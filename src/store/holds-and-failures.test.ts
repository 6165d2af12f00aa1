import { newPlanId, newTaskId } from './ids';
import { allBytes, createTestPlan, newRound, openTestRound, openTestStore, type TestStore } from './testing';
import type { RoundRef } from './types';

// The store's parts of plan isolation and the commit threshold, against a real Redis: held uploads and the
// back-pressure bound, failed plans, and attempts that could not open.
let t: TestStore;
beforeAll(() => {
  t = openTestStore('holds');
});
afterAll(async () => {
  await t.close();
});

function plan(population = 'holds'): Promise<string> {
  return createTestPlan(t, { population, rounds: 2 });
}

async function assigned(ref: RoundRef, n: number): Promise<string[]> {
  const tasks: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await t.store.tryAssign(ref.plan, newTaskId(), 2, `device-${i}`);
    if (!r.ok) throw new Error(r.reason);
    tasks.push(r.task);
  }
  return tasks;
}

describe('held uploads', () => {
  it('do not count against the pending bound, and a commit clears them', async () => {
    const ref = await openTestRound(t, { population: 'holds', round: { selectionTarget: 5, target: 5 } });
    const [a, b, c] = (await assigned(ref, 3)) as [string, string, string];
    const up = (task: string) => t.store.acceptUpload(ref, task, Uint8Array.of(task.length), 3, 1);
    expect(await up(a)).toEqual({ ok: true, closed: false });
    // One upload waits for aggregation and the bound is 1.
    expect(await up(b)).toEqual({ ok: false, code: 'BUSY' });
    // A worker folded it and holds it below the minimum: it no longer blocks.
    await t.store.setHeld(ref, 'w1', 1);
    expect(await t.store.heldUploads(ref)).toBe(1);
    expect(await up(b)).toEqual({ ok: true, closed: false });
    expect(await up(c)).toEqual({ ok: false, code: 'BUSY' });

    expect(await t.store.commitPartial(ref, 'w1', allBytes(), [a])).toEqual({ ok: true, ready: false });
    expect(await t.store.heldUploads(ref)).toBe(0);
    expect(await t.redis.hget(`${t.prefix}:{${ref.plan}}:r:1.1`, 'held:w1')).toBeNull();
  });

  it('are recorded only while the attempt is open, and 0 clears', async () => {
    const ref = await openTestRound(t, { population: 'holds' });
    await t.store.setHeld(ref, 'w1', 3);
    await t.store.setHeld(ref, 'w2', 2);
    expect(await t.store.heldUploads(ref)).toBe(5);
    await t.store.setHeld(ref, 'w2', 0);
    expect(await t.store.heldUploads(ref)).toBe(3);
    await t.store.fail(ref, 'test', 5);
    await t.store.setHeld(ref, 'w3', 4);
    expect(await t.redis.hget(`${t.prefix}:{${ref.plan}}:r:1.1`, 'held:w3')).toBeNull();
  });
});

describe('failPlan', () => {
  it('marks an active plan failed with the reason and takes it off its population, once', async () => {
    const id = await plan('pop-failing');
    expect(await t.store.plansOf('pop-failing')).toEqual([id]);
    expect(await t.store.failPlan(id, 'round 1 failed 10 attempts')).toBe(true);
    expect(await t.store.getPlan(id)).toMatchObject({
      status: 'failed',
      error: 'round 1 failed 10 attempts',
    });
    expect(await t.store.plansOf('pop-failing')).toEqual([]);
    expect(await t.store.failPlan(id, 'again')).toBe(false);
    expect((await t.store.getPlan(id))!.error).toBe('round 1 failed 10 attempts');
    // Nothing moves a failed plan back.
    expect(await t.store.setStatus(id, 'active')).toBeUndefined();
    expect(await t.store.failPlan(newPlanId(), 'no such plan')).toBe(false);
  });

  it('leaves a cancelled plan alone', async () => {
    const id = await plan();
    await t.store.setStatus(id, 'cancelled');
    expect(await t.store.failPlan(id, 'late')).toBe(false);
    expect(await t.store.getPlan(id)).toMatchObject({ status: 'cancelled' });
    expect((await t.store.getPlan(id))!.error).toBeUndefined();
  });
});

describe('openRound with an error', () => {
  it('records the attempt failed, with no broadcast, as the current one', async () => {
    const id = await plan();
    const ref = { plan: id, round: 1, attempt: 1 };
    expect(await t.store.openRound(newRound(ref, { error: 'opening the round: prepare failed' }))).toBe(true);
    expect(await t.store.getRound(ref)).toMatchObject({
      phase: 'failed',
      error: 'opening the round: prepare failed',
      finished_at: 1_000,
    });
    expect(await t.store.getBroadcast(ref)).toBeUndefined();
    expect(await t.store.getPlan(id)).toMatchObject({ round: 1, attempt: 1, phase: 'failed' });
    const r = await t.store.tryAssign(id, newTaskId(), 2, 'device-a');
    expect(r).toEqual({ ok: false, reason: 'not_selecting' });
  });
});
