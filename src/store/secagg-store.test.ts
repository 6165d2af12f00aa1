import { newTaskId } from './ids';
import { createTestPlan, newRound, openTestStore, type TestStore } from './testing';
import type { RoundRef } from './types';
import type { SecAggSetup } from '../secagg/setup';

// The atomic steps of the SecAgg exchange against a real Redis: who may do which step in which phase, the
// kind of unmasking share decided from U3, the keys' expiry, and their deletion with the attempt.

let t: TestStore;
beforeAll(() => {
  t = openTestStore('secagg');
});
afterAll(() => t.close());

const SETUP: SecAggSetup = {
  protocol: 'secagg+',
  session: 'A'.repeat(43),
  graph_seed: 'B'.repeat(43),
  moduli: { bitwidth: [2 ** 10], max_input: [], modulus: [] },
  params: { bitwidth: [8], max_input: [], modulus: [] },
  n_max: 4,
  dropout_rate: 0.33,
  adversarial_rate: 0.05,
  adversary: 'curious',
};
const EXPIRES_AT = Date.now() + 3_600_000;
const keys = (i: number) => ({ c: `c${i}`.padEnd(43, 'x'), s: `s${i}`.padEnd(43, 'x') });

/** A SecAgg round 1.1 (selection target 4, target 3, min 2) with 4 tasks assigned. */
async function secureRound(): Promise<{ ref: RoundRef; tasks: string[] }> {
  const id = await createTestPlan(t);
  const ref = { plan: id, round: 1, attempt: 1 };
  await t.store.openRound(
    newRound(ref, {
      secagg: { setup: SETUP, timeoutsMs: { sharing: 60_000, unmasking: 30_000 }, expiresAt: EXPIRES_AT },
      deadlines: { selection: 61_000, reporting: 301_000 },
    }),
  );
  const tasks: string[] = [];
  for (let i = 0; i < 4; i++) {
    const task = newTaskId();
    const a = await t.store.tryAssign(id, task, 2_000, `device-${i}`);
    if (!a.ok) throw new Error(`not assigned: ${a.reason}`);
    tasks.push(task);
  }
  return { ref, tasks };
}

test('selection ends with the last advertisement of the selection target, not with the last assignment', async () => {
  const { ref, tasks } = await secureRound();
  expect(await t.store.getPhase(ref)).toBe('selecting');
  for (let i = 0; i < 3; i++) {
    expect(await t.store.secagg.advertise(ref, tasks[i]!, keys(i), 3_000)).toEqual({
      ok: true,
      index: i,
      ended: false,
    });
  }
  // Again with the same keys: the same index; other keys: refused.
  expect(await t.store.secagg.advertise(ref, tasks[1]!, keys(1), 3_000)).toEqual({
    ok: true,
    index: 1,
    ended: false,
  });
  expect(await t.store.secagg.advertise(ref, tasks[1]!, keys(9), 3_000)).toMatchObject({
    ok: false,
    code: 'SECAGG_KEYS_CHANGED',
  });
  expect(await t.store.secagg.advertise(ref, newTaskId(), keys(7), 3_000)).toMatchObject({
    ok: false,
    code: 'TASK_UNKNOWN',
  });
  expect(await t.store.secagg.advertise(ref, tasks[3]!, keys(3), 4_000)).toEqual({
    ok: true,
    index: 3,
    ended: true,
  });
  const info = await t.store.getRound(ref);
  expect(info).toMatchObject({ phase: 'sharing', sharing_at: 4_000, sharing_deadline: 64_000 });
  expect(info!.secure_aggregation).toEqual({ protocol: 'secagg+', advertised: 4, shared: 0, unmasked: 0 });
  // The exchange's keys expire at the stored time.
  const k = `${t.prefix}:{${ref.plan}}:r:1.1`;
  expect(await t.redis.pexpiretime(`${k}:sa:keys`)).toBe(EXPIRES_AT);
  expect(await t.redis.pexpiretime(`${k}:sa:index`)).toBe(EXPIRES_AT);
});

test('a whole exchange: shares, masked uploads only from U2 in reporting, one kind of share per client in R3', async () => {
  const { ref, tasks } = await secureRound();
  for (let i = 0; i < 4; i++) await t.store.secagg.advertise(ref, tasks[i]!, keys(i), 3_000);
  // Uploads before the exchange ends are refused.
  expect(await t.store.acceptUpload(ref, tasks[0]!, Uint8Array.of(0), 4_000, 100)).toEqual({
    ok: false,
    code: 'SECAGG_TOO_EARLY',
  });
  const envelopes = (from: number) => [0, 1, 2, 3].map((to) => ({ to, ct: `ct-${from}-${to}` }));
  for (let i = 0; i < 3; i++) {
    expect(await t.store.secagg.share(ref, tasks[i]!, envelopes(i), 5_000)).toEqual({
      ok: true,
      ended: false,
    });
  }
  expect(await t.store.secagg.share(ref, tasks[0]!, envelopes(0), 5_000)).toMatchObject({
    ok: false,
    code: 'SECAGG_ALREADY_SENT',
  });
  // Task 3 never shares: the sharing deadline moves the attempt on with U2 = {0, 1, 2}.
  expect(await t.store.deadline(ref, 'sharing', 65_000)).toEqual({ outcome: 'reporting', assigned: 3 });
  expect(await t.store.secagg.share(ref, tasks[3]!, envelopes(3), 65_001)).toMatchObject({
    ok: false,
    code: 'SECAGG_PHASE',
  });
  expect(await t.store.secagg.inbox(ref, 1, [0, 1, 2, 3])).toEqual([
    { from: 0, ct: 'ct-0-1' },
    { from: 1, ct: 'ct-1-1' },
    { from: 2, ct: 'ct-2-1' },
  ]);
  expect(await t.store.acceptUpload(ref, tasks[3]!, Uint8Array.of(3), 66_000, 100)).toEqual({
    ok: false,
    code: 'SECAGG_NOT_IN_COHORT',
  });
  expect(await t.store.acceptUpload(ref, tasks[0]!, Uint8Array.of(0), 66_000, 100)).toEqual({
    ok: true,
    closed: false,
  });
  expect(await t.store.acceptUpload(ref, tasks[1]!, Uint8Array.of(1), 66_000, 100)).toEqual({
    ok: true,
    closed: false,
  });
  // Task 2 drops after sharing; the reporting deadline closes the attempt with U3 = {0, 1}.
  expect(await t.store.deadline(ref, 'reporting', 301_000)).toEqual({ outcome: 'closed', reported: 2 });
  expect((await t.store.getRound(ref))!.unmasking_deadline).toBe(331_000);
  expect(await t.store.secagg.survivors(ref)).toEqual({
    shared: new Set([0, 1, 2]),
    uploaded: new Set([0, 1]),
  });
  // R3: a survivor's self-mask share (b), a dropout's mask-key share (s); never the other kind.
  expect(await t.store.secagg.unmask(ref, tasks[0]!, [{ of: 2, kind: 'b', share: 'x' }])).toEqual({
    ok: false,
    code: 'SECAGG_WRONG_SHARE',
    detail: '2',
  });
  expect(await t.store.secagg.unmask(ref, tasks[0]!, [{ of: 1, kind: 's', share: 'x' }])).toMatchObject({
    ok: false,
    code: 'SECAGG_WRONG_SHARE',
  });
  expect(await t.store.secagg.unmask(ref, tasks[0]!, [{ of: 3, kind: 's', share: 'x' }])).toMatchObject({
    ok: false,
    code: 'SECAGG_WRONG_SHARE',
  });
  expect(await t.store.secagg.unmask(ref, tasks[2]!, [{ of: 2, kind: 's', share: 'x' }])).toMatchObject({
    ok: false,
    code: 'SECAGG_NOT_SURVIVOR',
  });
  const answer = (by: number) => [
    { of: 0, kind: 'b' as const, share: `b0-by-${by}` },
    { of: 1, kind: 'b' as const, share: `b1-by-${by}` },
    { of: 2, kind: 's' as const, share: `s2-by-${by}` },
  ];
  expect(await t.store.secagg.unmask(ref, tasks[0]!, answer(0))).toEqual({
    ok: true,
    answered: 1,
    reported: 2,
  });
  expect(await t.store.secagg.unmask(ref, tasks[0]!, answer(0))).toMatchObject({
    ok: false,
    code: 'SECAGG_ALREADY_SENT',
  });
  // Both uploads folded (no worker here); finalize still waits for the other survivor's answer until
  // the unmasking deadline.
  await t.redis.hset(`${t.prefix}:{${ref.plan}}:r:1.1`, 'accumulated', 2);
  expect(await t.store.beginFinalize(ref, 300_000)).toEqual({ changed: false, phase: 'closed' });
  expect(await t.store.secagg.unmask(ref, tasks[1]!, answer(1))).toEqual({
    ok: true,
    answered: 2,
    reported: 2,
  });
  const shares = await t.store.secagg.unmaskShares(ref);
  expect(shares.get(0)).toEqual({ kind: 'b', shares: ['b0-by-0', 'b0-by-1'] });
  expect(shares.get(2)).toEqual({ kind: 's', shares: ['s2-by-0', 's2-by-1'] });
  expect(await t.store.beginFinalize(ref, 300_000)).toEqual({ changed: true, phase: 'finalizing' });
  // Failing the attempt deletes its whole exchange.
  await t.store.fail(ref, 'test', 400_000);
  expect((await t.keys()).filter((k) => k.includes(`{${ref.plan}}`) && k.includes(':sa:'))).toEqual([]);
});

test('the unmasking deadline lets finalize go on without the last answers', async () => {
  const { ref, tasks } = await secureRound();
  for (let i = 0; i < 4; i++) await t.store.secagg.advertise(ref, tasks[i]!, keys(i), 3_000);
  for (let i = 0; i < 4; i++) await t.store.secagg.share(ref, tasks[i]!, [{ to: i, ct: 'c' }], 5_000);
  expect(await t.store.getPhase(ref)).toBe('reporting');
  for (let i = 0; i < 3; i++) await t.store.acceptUpload(ref, tasks[i]!, Uint8Array.of(i), 6_000, 100);
  const info = await t.store.getRound(ref);
  expect(info).toMatchObject({ phase: 'closed', unmasking_deadline: 36_000 });
  await t.redis.hset(`${t.prefix}:{${ref.plan}}:r:1.1`, 'accumulated', 3);
  expect(await t.store.beginFinalize(ref, 35_999)).toEqual({ changed: false, phase: 'closed' });
  expect(await t.store.beginFinalize(ref, 36_000)).toEqual({ changed: true, phase: 'finalizing' });
});
