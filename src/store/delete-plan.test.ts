import { newPlanId } from './ids';
import { Keys } from './keys';
import { createTestPlan, newRound, openTestRound, openTestStore, type TestStore } from './testing';

let t: TestStore;
beforeAll(() => {
  t = openTestStore('delete');
});
afterAll(async () => {
  await t.close();
});

describe('deletePlan', () => {
  test('refuses an active or paused plan and answers unknown for a missing one', async () => {
    const id = await createTestPlan(t);
    expect(await t.store.deletePlan(id)).toEqual({ outcome: 'open', status: 'active' });
    await t.store.setStatus(id, 'paused');
    expect(await t.store.deletePlan(id)).toEqual({ outcome: 'open', status: 'paused' });
    expect(await t.store.deletePlan(newPlanId())).toEqual({ outcome: 'unknown' });
    expect(await t.store.getPlan(id)).toMatchObject({ status: 'paused' });
  });

  test('removes every key and global entry of a cancelled plan, and only its own', async () => {
    const other = await openTestRound(t, { population: 'shared' });
    const before = await t.keys();
    const ref = await openTestRound(t, { population: 'shared' });
    await t.store.setStatus(ref.plan, 'cancelled');
    await t.store.fail(ref, 'the plan was cancelled', 5);
    const planKeys = (await t.keys()).filter((k) => k.includes(`{${ref.plan}}`));
    expect(planKeys.length).toBeGreaterThan(3);

    expect(await t.store.deletePlan(ref.plan)).toEqual({ outcome: 'deleted', keys: planKeys.length });
    expect(await t.keys()).toEqual(before);
    expect(await t.store.getPlan(ref.plan)).toBeUndefined();
    expect((await t.store.listPlans()).map((p) => p.id)).not.toContain(ref.plan);
    expect(await t.store.plansOf('shared')).toEqual([other.plan]);
    expect(await t.store.deletePlan(ref.plan)).toEqual({ outcome: 'unknown' });
  });

  test('a delete interrupted before the meta hash went is finished by the next one', async () => {
    const before = await t.keys();
    const id = await createTestPlan(t, { rounds: 3 });
    for (let n = 1; n <= 3; n++) await t.store.openRound(newRound({ plan: id, round: n, attempt: 1 }));
    await t.store.failPlan(id, 'gave up');
    // As a delete that died half-way leaves it: global entries gone, some keys gone, the meta hash there.
    const keys = new Keys(t.prefix);
    await t.redis.zrem(keys.global.plans, id);
    await t.redis.srem(keys.global.population('test'), id);
    await t.redis.unlink(keys.plan(id).state, keys.round({ plan: id, round: 2, attempt: 1 }).round);
    const left = (await t.keys()).filter((k) => k.includes(`{${id}}`));
    expect(left).toContain(keys.plan(id).meta);

    expect(await t.store.deletePlan(id)).toEqual({ outcome: 'deleted', keys: left.length });
    expect(await t.keys()).toEqual(before);
  });

  test('attemptsOf names every attempt up to the highest of each round, deleted failures included', async () => {
    const id = await createTestPlan(t, { rounds: 2 });
    const store = t.store;
    for (let a = 1; a <= 5; a++) {
      const ref = { plan: id, round: 1, attempt: a };
      await store.openRound(newRound(ref));
      await store.fail(ref, 'too few clients', a);
    }
    await store.openRound(newRound({ plan: id, round: 2, attempt: 1 }));
    // RETAIN_FAILED_ATTEMPTS 3 took 1.1 and 1.2 out of the history.
    expect((await store.listRounds(id)).map((r) => `${r.round}.${r.attempt}`)).toEqual([
      '1.3',
      '1.4',
      '1.5',
      '2.1',
    ]);
    expect((await store.attemptsOf(id)).map((r) => `${r.round}.${r.attempt}`)).toEqual([
      '1.1',
      '1.2',
      '1.3',
      '1.4',
      '1.5',
      '2.1',
    ]);
  });
});
