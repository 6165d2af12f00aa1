import { LocalStorageDeviceIdStore } from '../src/client/device';
import type { RunOutcome } from '../src/client/types';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { assignmentOf, countingFetch, FakeClock, SdkHarness, uploads } from './support/sdk-harness';

// The client SDK against a real server (the built CLI, one worker, a unique Redis prefix): retry windows,
// cached downloads, dropout, stragglers and deadlines. Typed errors and transient failures are in
// sdk-errors.test.ts.

let cluster: Cluster;
const h = new SdkHarness(() => cluster, 'sdk');

beforeAll(async () => {
  cluster = await startCluster({ workers: 1 });
});
afterAll(() => cluster?.stop());

describe('retry windows', () => {
  test('the wait is drawn inside the window, and run() sleeps exactly that long', async () => {
    const population = h.unique('nobody'); // no plan: the server sends the client away
    const clock = new FakeClock();
    const c = h.client(population, [1], { clock, random: () => 0.25 });
    const once = await c.runOnce();
    if (once.kind !== 'retry') throw new Error(`expected a retry, got ${once.kind}`);
    const { min_seconds: min, max_seconds: max } = once.window;
    expect(max).toBeGreaterThan(min);
    expect(once.waitMs).toBeGreaterThanOrEqual(min * 1000);
    expect(once.waitMs).toBeLessThanOrEqual(max * 1000);
    expect(once.waitMs).toBeCloseTo((min + 0.25 * (max - min)) * 1000, 6);

    const outcomes: RunOutcome[] = [];
    const looping = new FakeClock(Date.now(), () => looper.stop());
    const looper = h.client(population, [1], { clock: looping, random: () => 0.75 });
    await looper.run({ onOutcome: (o) => outcomes.push(o) });
    expect(outcomes).toHaveLength(1);
    const drawn = outcomes[0]!;
    if (drawn.kind !== 'retry') throw new Error(`expected a retry, got ${drawn.kind}`);
    expect(looping.sleeps).toEqual([drawn.waitMs]);
    expect(drawn.waitMs).toBeGreaterThanOrEqual(drawn.window.min_seconds * 1000);
    expect(drawn.waitMs).toBeLessThanOrEqual(drawn.window.max_seconds * 1000);
  });
});

describe('downloads', () => {
  test('the client plan is fetched once per plan; a broadcast is revalidated with If-None-Match (304)', async () => {
    const { id, population } = await h.sumPlan('cache', { targetClients: 2, overSelection: 1 });
    const { fetch: counted, calls } = countingFetch();
    let drops = 1;
    const a = h.client(population, [1, 2], { fetch: counted, beforeUpload: () => drops-- <= 0 });
    const dropped = await a.runOnce();
    if (dropped.kind !== 'dropped') throw new Error(`expected a dropped task, got ${dropped.kind}`);
    // The device still holds its one task of round 1: retrying it downloads the broadcast again (304).
    expect((await a.runTask(dropped.assignment)).kind).toBe('completed');
    expect((await h.client(population, [10]).runOnce()).kind).toBe('completed');
    await eventually('round 1 to complete', async () =>
      (await h.roundOf(id, 1)).phase === 'completed' ? true : undefined,
    );
    expect((await h.roundOf(id, 1)).output).toEqual({ sum: 13 });
    await eventually('round 2 to open', async () => {
      const res = await cluster.operator(`/v1/plans/${id}`);
      const plan = (await res.json()) as { round: number; phase?: string };
      return plan.round === 2 && plan.phase === 'selecting' ? true : undefined;
    });
    expect((await a.runOnce()).kind).toBe('completed'); // round 2: a new broadcast URL

    const plans = calls.filter((c) => c.url.endsWith('/client-plan'));
    expect(plans).toHaveLength(1);
    const broadcasts = calls.filter((c) => c.url.endsWith('/broadcast'));
    expect(broadcasts.map((c) => [c.url.split('/rounds/')[1], c.status, c.ifNoneMatch !== null])).toEqual([
      ['1.1/broadcast', 200, false],
      ['1.1/broadcast', 304, true],
      ['2.1/broadcast', 200, false],
    ]);
    expect(uploads(calls)).toHaveLength(2);
  });
});

describe('devices', () => {
  test('one device gets one task per round however often it checks in, and never works a round twice', async () => {
    const { id, population } = await h.sumPlan('device', { targetClients: 3, overSelection: 1 });
    const { fetch: counted, calls } = countingFetch();
    const a = h.client(population, [4], { fetch: counted, deviceId: 'sdk-test-device-a' });
    expect((await a.runOnce()).kind).toBe('completed');
    // The round still selects, but this device holds its task: retry windows, no second task.
    for (let i = 0; i < 5; i++) expect((await a.runOnce()).kind).toBe('retry');
    // Another client object of the same installation is the same device.
    expect((await h.client(population, [4], { deviceId: 'sdk-test-device-a' }).runOnce()).kind).toBe('retry');
    expect(a.hasServed(id, 1)).toBe(true);
    // An assignment of a round it already served (as a new attempt of that round would give) is declined
    // before any download.
    const fake = { ...(await assignmentOf(h.client(population, [1]))) };
    const before = calls.length;
    expect(await a.runTask(fake)).toMatchObject({ kind: 'abandoned', reason: 'already-served' });
    expect(calls.length).toBe(before);
    expect(uploads(calls)).toHaveLength(1);
    expect((await h.roundOf(id, 1)).assigned).toBe(2);
  });

  test('the device id is made once per installation and kept in its store', () => {
    const stored = new Map<string, string>();
    const storage = {
      getItem: (k: string) => stored.get(k) ?? null,
      setItem: (k: string, v: string) => void stored.set(k, v),
    };
    const first = h.client('any', [1], { deviceIdStore: new LocalStorageDeviceIdStore(storage) });
    expect(first.deviceId).toMatch(/^[0-9a-f]{32}$/);
    expect(stored.get('roundhouse.device_id')).toBe(first.deviceId);
    const again = h.client('any', [1], { deviceIdStore: new LocalStorageDeviceIdStore(storage) });
    expect(again.deviceId).toBe(first.deviceId);
    expect(h.client('any', [1]).deviceId).not.toBe(first.deviceId);
    expect(() => h.client('any', [1], { deviceId: 'has a space' })).toThrow(/deviceId/);
  });
});

describe('dropout, stragglers and deadlines', () => {
  test('a dropped task uploads nothing: the round reports no more', async () => {
    const { id, population } = await h.sumPlan('dropout', { targetClients: 2, overSelection: 1 });
    const { fetch: counted, calls } = countingFetch();
    let asked = 0;
    const c = h.client(population, [5], { fetch: counted, beforeUpload: () => (asked++, false) });
    const outcome = await c.runOnce();
    expect(outcome.kind).toBe('dropped');
    expect(asked).toBe(1);
    expect(uploads(calls)).toHaveLength(0);
    const round = await h.roundOf(id, 1);
    expect([round.assigned, round.reported]).toEqual([1, 0]);
  });

  test('a straggler that uploads after the round closed is late, and counted late', async () => {
    const { id, population } = await h.sumPlan('straggler', { targetClients: 2, overSelection: 1.5 });
    const a = h.client(population, [1]);
    const b = h.client(population, [2]);
    // The straggler holds its upload until the two others have closed the round.
    let release: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => (release = resolve));
    const slow = h.client(population, [3], { beforeUpload: async () => (await closed, true) });
    // All three check in first, while the round still selects (its third slot is the straggler's).
    const [ta, tb, tc] = await Promise.all([assignmentOf(a), assignmentOf(b), assignmentOf(slow)]);
    const straggling = slow.runTask(tc);
    const onTime = Promise.all([a.runTask(ta), b.runTask(tb)]);
    await onTime;
    release();
    const late = await straggling;
    expect((await onTime).map((o) => o.kind)).toEqual(['completed', 'completed']);
    expect(late.kind).toBe('late');
    const round = await h.roundOf(id, 1);
    expect([round.reported, round.late]).toEqual([2, 1]);
  });

  test('a task past its deadline is abandoned before work or before upload, never uploaded', async () => {
    const { id, population } = await h.sumPlan('deadline', { targetClients: 3, overSelection: 1 });
    const { fetch: counted, calls } = countingFetch();

    const clock = new FakeClock();
    const early = h.client(population, [1], { fetch: counted, clock });
    const a = await assignmentOf(early);
    clock.t = a.deadline; // the deadline is the first instant that is too late
    expect(await early.runTask(a)).toEqual({
      kind: 'abandoned',
      assignment: a,
      reason: 'deadline-before-work',
    });

    const later = new FakeClock();
    const slow = h.client(population, [1], {
      fetch: counted,
      clock: later,
      beforeUpload: (x) => ((later.t = x.deadline + 1), true),
    });
    const b = await assignmentOf(slow);
    expect(await slow.runTask(b)).toEqual({
      kind: 'abandoned',
      assignment: b,
      reason: 'deadline-before-upload',
    });

    expect(uploads(calls)).toHaveLength(0);
    expect((await h.roundOf(id, 1)).reported).toBe(0);
  });
});
