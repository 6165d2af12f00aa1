import { AppError } from '../errors';
import { newPlanId, newTaskId } from './ids';
import { Keys } from './keys';
import { CHECKIN_WINDOW_S, ORPHAN_MS, RedisRoundStore } from './redis-round-store';
import { allBytes, newRound, openTestStore, type TestStore } from './testing';

let t: TestStore;
beforeAll(() => {
  t = openTestStore('plans');
});
afterAll(async () => {
  await t.close();
});

async function createPlan(
  over: { population?: string; rounds?: number; now?: number } = {},
): Promise<string> {
  const id = newPlanId();
  await t.store.createPlan({
    id,
    json: JSON.stringify({ name: 'sum', id }),
    name: 'sum',
    population: over.population ?? 'phones',
    rounds: over.rounds ?? 2,
    state: allBytes(),
    now: over.now ?? 5_000,
  });
  return id;
}

describe('plans', () => {
  it('creates a plan: json, state, summary, indexes', async () => {
    const id = await createPlan({ population: 'cars', now: 7_000 });
    expect(await t.store.getPlanJson(id)).toBe(JSON.stringify({ name: 'sum', id }));
    const state = await t.store.getState(id);
    expect(state).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(state)).toBe(false);
    expect(Array.from(state ?? [])).toEqual(Array.from(allBytes()));
    expect(await t.store.getPlan(id)).toEqual({
      id,
      name: 'sum',
      population: 'cars',
      status: 'active',
      round: 0,
      attempt: 0,
      rounds: 2,
      created_at: 7_000,
    });
    expect(await t.store.plansOf('cars')).toEqual([id]);
    expect((await t.store.listPlans()).map((p) => p.id)).toContain(id);
  });

  it('answers undefined for a plan that does not exist', async () => {
    expect(await t.store.getPlan('pnothing')).toBeUndefined();
    expect(await t.store.getPlanJson('pnothing')).toBeUndefined();
    expect(await t.store.getState('pnothing')).toBeUndefined();
    expect(await t.store.setStatus('pnothing', 'paused')).toBeUndefined();
  });

  it('lists plans by creation time', async () => {
    const b = await createPlan({ now: 20_000 });
    const a = await createPlan({ now: 10_000 });
    const ids = (await t.store.listPlans()).map((p) => p.id);
    expect(ids.indexOf(a)).toBeLessThan(ids.indexOf(b));
  });

  it('allows active<->paused and open->cancelled only; a cancelled plan leaves its population', async () => {
    const id = await createPlan({ population: 'status' });
    expect((await t.store.setStatus(id, 'paused'))?.status).toBe('paused');
    expect(await t.store.setStatus(id, 'paused')).toBeUndefined();
    expect((await t.store.setStatus(id, 'active'))?.status).toBe('active');
    expect(await t.store.setStatus(id, 'active')).toBeUndefined();
    expect(await t.store.plansOf('status')).toEqual([id]);
    expect((await t.store.setStatus(id, 'cancelled'))?.status).toBe('cancelled');
    expect(await t.store.plansOf('status')).toEqual([]);
    expect(await t.store.setStatus(id, 'active')).toBeUndefined();
    expect(await t.store.setStatus(id, 'paused')).toBeUndefined();
    expect((await t.store.getPlan(id))?.status).toBe('cancelled');
  });
});

describe('rounds', () => {
  it('opens a round once, makes it current, and keeps its broadcast', async () => {
    const id = await createPlan();
    const ref = { plan: id, round: 1, attempt: 1 };
    expect(await t.store.openRound(newRound(ref, { broadcast: allBytes(), now: 9_000 }))).toBe(true);
    expect(await t.store.openRound(newRound(ref, { broadcast: new Uint8Array([9]), now: 9_999 }))).toBe(
      false,
    );
    expect(Array.from((await t.store.getBroadcast(ref)) ?? [])).toEqual(Array.from(allBytes()));
    expect(await t.store.getPlan(id)).toMatchObject({ round: 1, attempt: 1, phase: 'selecting' });
    expect(await t.store.getRound(ref)).toEqual({
      round: 1,
      attempt: 1,
      phase: 'selecting',
      selection_target: 4,
      target: 3,
      min_reports: 2,
      min_aggregate: 2,
      assigned: 0,
      reported: 0,
      rejected: 0,
      late: 0,
      accumulated: 0,
      aggregated_clients: 0,
      opened_at: 9_000,
      secure_params: { bitwidth: [8], max_input: [100], modulus: [257] },
    });
    expect(await t.store.getRound({ plan: id, round: 1, attempt: 2 })).toBeUndefined();
    expect(await t.store.getBroadcast({ plan: id, round: 1, attempt: 2 })).toBeUndefined();
  });

  it('lists attempts oldest first and never moves the current attempt backwards', async () => {
    const id = await createPlan();
    await t.store.openRound(newRound({ plan: id, round: 1, attempt: 1 }));
    await t.store.fail({ plan: id, round: 1, attempt: 1 }, 'too few', 2_000);
    await t.store.openRound(newRound({ plan: id, round: 1, attempt: 2 }));
    // A stale engine opening an older, never-opened attempt changes nothing.
    expect(await t.store.openRound(newRound({ plan: id, round: 1, attempt: 1 }))).toBe(false);
    const rounds = await t.store.listRounds(id);
    expect(rounds.map((r) => [r.round, r.attempt, r.phase, r.error])).toEqual([
      [1, 1, 'failed', 'too few'],
      [1, 2, 'selecting', undefined],
    ]);
    expect(await t.store.getPlan(id)).toMatchObject({ round: 1, attempt: 2 });
    expect(await t.store.listRounds('pnothing')).toEqual([]);
  });

  it('refuses to open a round of a plan that does not exist', async () => {
    await expect(t.store.openRound(newRound({ plan: 'pnothing', round: 1, attempt: 1 }))).rejects.toThrow(
      AppError,
    );
  });
});

describe('tryAssign', () => {
  it('assigns exactly selection_target of 50 concurrent check-ins from several replicas', async () => {
    const id = await createPlan();
    const ref = { plan: id, round: 1, attempt: 1 };
    await t.store.openRound(newRound(ref, { selectionTarget: 10, target: 8, now: 3_000 }));
    const connections = [1, 2, 3].map(() => t.redis.duplicate());
    const replicas = [t.store, ...connections.map((c) => new RedisRoundStore(c, t.prefix))];
    const tasks = Array.from({ length: 50 }, newTaskId);
    const results = await Promise.all(
      tasks.map((task, i) => replicas[i % replicas.length]!.tryAssign(id, task, 4_000, newTaskId())),
    );
    const ok = results.filter((r) => r.ok);
    expect(ok).toHaveLength(10);
    expect(new Set(ok.map((r) => r.ok && r.task)).size).toBe(10);
    for (const r of ok) expect(r).toMatchObject({ ref, openedAt: 3_000 });
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === 'not_selecting')).toBe(true);
    expect(await t.store.getRound(ref)).toMatchObject({
      phase: 'reporting',
      assigned: 10,
      reporting_at: 4_000,
    });
    await Promise.all(connections.map((c) => c.quit()));
  });

  it('answers not_active for paused and unknown plans, not_selecting before round 1', async () => {
    const id = await createPlan();
    expect(await t.store.tryAssign(id, newTaskId(), 1, newTaskId())).toEqual({
      ok: false,
      reason: 'not_selecting',
    });
    await t.store.openRound(newRound({ plan: id, round: 1, attempt: 1 }));
    await t.store.setStatus(id, 'paused');
    expect(await t.store.tryAssign(id, newTaskId(), 1, newTaskId())).toEqual({
      ok: false,
      reason: 'not_active',
    });
    expect(await t.store.tryAssign('pnothing', newTaskId(), 1, newTaskId())).toEqual({
      ok: false,
      reason: 'not_active',
    });
    await t.store.setStatus(id, 'active');
    const task = newTaskId();
    expect((await t.store.tryAssign(id, task, 1, newTaskId())).ok).toBe(true);
    await expect(t.store.tryAssign(id, task, 1, newTaskId())).rejects.toThrow(/already assigned/);
  });

  it('answers full when the target is reached without leaving selecting (target 0)', async () => {
    const id = await createPlan();
    await t.store.openRound(newRound({ plan: id, round: 1, attempt: 1 }, { selectionTarget: 0 }));
    expect(await t.store.tryAssign(id, newTaskId(), 1, newTaskId())).toEqual({ ok: false, reason: 'full' });
  });
});

describe('recordCheckin', () => {
  it('measures check-ins per second over the observed span, at least 1 s, at most the window', async () => {
    const pop = `rate-${Date.now()}`;
    const id = await createPlan({ population: pop });
    const t0 = 1_700_000_000_000;
    const rate = async (now: number) => {
      const read = await t.store.recordCheckin(pop, now);
      expect(read.plans).toEqual([id]);
      return read.rate;
    };
    expect(await rate(t0)).toBe(1);
    expect(await rate(t0 + 500)).toBe(2);
    // 3 check-ins over 4 s.
    expect(await rate(t0 + 4_000)).toBeCloseTo(3 / 4);
    // Long after: the old buckets leave the window and are pruned.
    const later = t0 + (CHECKIN_WINDOW_S + 10) * 1000;
    expect(await rate(later)).toBe(1);
    const fields = await t.redis.hkeys(`${t.prefix}:pop:{${pop}}:rate`);
    expect(fields).toEqual([String(Math.floor(later / 1000))]);
    for (let i = 0; i < 120; i++) await rate(later + i * 1000);
    // A steady 1/s: the window keeps the last 60 buckets (the older ones pruned), 60 check-ins over the
    // 59.5 s from the oldest bucket's start to now.
    expect(await rate(later + 120_500)).toBeCloseTo(60 / 59.5);
    expect(await t.redis.hlen(`${t.prefix}:pop:{${pop}}:rate`)).toBe(CHECKIN_WINDOW_S);
    expect(await t.redis.ttl(`${t.prefix}:pop:{${pop}}:rate`)).toBeGreaterThan(CHECKIN_WINDOW_S);
  });

  it('keeps no rate, and creates no key, for a population without plans', async () => {
    const pop = `nobody-${Date.now()}`;
    expect(await t.store.recordCheckin(pop, 1_700_000_000_000)).toEqual({ plans: [], rate: 0 });
    expect(await t.redis.exists(new Keys(t.prefix).global.populationRate(pop))).toBe(0);
  });
});

describe('reindex: the global indexes follow the plan keys (they change in separate steps)', () => {
  const keys = () => new Keys(t.prefix).global;

  it('lists an open plan its population set misses, and leaves a listed one alone', async () => {
    const id = await createPlan({ population: 'tablets' });
    expect(await t.store.reindex(id, 10_000)).toBe('in-line');
    // As if the process that created it died before the population step.
    await t.redis.srem(keys().population('tablets'), id);
    expect(await t.store.plansOf('tablets')).not.toContain(id);
    expect(await t.store.reindex(id, 10_000)).toBe('listed');
    expect(await t.store.plansOf('tablets')).toContain(id);
    expect(await t.store.reindex(id, 10_000)).toBe('in-line');
  });

  it('unlists a finished plan left in its population set', async () => {
    const id = await createPlan({ population: 'watches' });
    await t.store.setStatus(id, 'cancelled', 6_000);
    expect(await t.store.plansOf('watches')).not.toContain(id);
    // As if the process that cancelled it died between the script and the set.
    await t.redis.sadd(keys().population('watches'), id);
    expect(await t.store.reindex(id, 10_000)).toBe('unlisted');
    expect(await t.store.plansOf('watches')).not.toContain(id);
  });

  it('forgets an id whose plan was never written once it is old, not while it may still be written', async () => {
    const id = newPlanId();
    await t.redis.zadd(keys().plans, 1_000, id);
    expect(await t.store.reindex(id, 1_000 + ORPHAN_MS - 1)).toBe('pending');
    expect(await t.redis.zscore(keys().plans, id)).not.toBeNull();
    expect(await t.store.reindex(id, 1_000 + ORPHAN_MS)).toBe('forgotten');
    expect(await t.redis.zscore(keys().plans, id)).toBeNull();
    // A plan that is listed nowhere and has no keys: nothing to do.
    expect(await t.store.reindex(newPlanId(), 1_000)).toBe('pending');
  });
});
