import { createHash } from 'node:crypto';
import { newTaskId } from './ids';
import { Keys } from './keys';
import { allBytes, newRound, openTestRound, openTestStore, type TestStore } from './testing';
import { RedisRoundStore } from './redis-round-store';
import { deviceHmac } from './round-key';
import type { RoundRef } from './types';

let t: TestStore;
beforeAll(() => {
  t = openTestStore('devices');
});
afterAll(async () => {
  await t.close();
});

/** A plan with round 1.1 open, selecting 10 devices for a target of 5 unless `round` says otherwise. */
function openPlan(round: { selectionTarget?: number; target?: number } = {}): Promise<RoundRef> {
  return openTestRound(t, {
    population: 'dev',
    rounds: 2,
    round: { selectionTarget: 10, target: 5, ...round },
  });
}

/** Every value of every key of a plan, as text, for searching what is at rest. */
async function everythingAtRest(plan: string): Promise<string> {
  const keys = (await t.keys()).filter((k) => k.includes(`{${plan}}`));
  const parts: string[] = [];
  for (const k of keys) {
    const type = await t.redis.type(k);
    if (type === 'string') parts.push(k, (await t.redis.getBuffer(k))!.toString('latin1'));
    if (type === 'hash') parts.push(k, JSON.stringify(await t.redis.hgetall(k)));
    if (type === 'set') parts.push(k, JSON.stringify(await t.redis.smembers(k)));
    if (type === 'list') parts.push(k, JSON.stringify(await t.redis.lrange(k, 0, -1)));
  }
  return parts.join('\n');
}

describe('one task per device per round attempt', () => {
  it('assigns no task of a round the device says it served, and a task of a later one', async () => {
    const ref = await openPlan();
    expect(await t.store.tryAssign(ref.plan, newTaskId(), 2, 'device-s', 1)).toEqual({
      ok: false,
      reason: 'served',
    });
    expect(await t.store.getRound(ref)).toMatchObject({ assigned: 0 });
    expect(await t.store.tryAssign(ref.plan, newTaskId(), 2, 'device-s', 0)).toMatchObject({ ok: true, ref });
  });

  it('gives a device one task however often it asks (the same one until it uploads), and every other device its own', async () => {
    const ref = await openPlan({ target: 3 });
    const first = await t.store.tryAssign(ref.plan, newTaskId(), 2, 'device-a');
    expect(first).toMatchObject({ ok: true, ref });
    // Asking again (its first answer lost) gives the same task, never a second one.
    const again = await Promise.all(
      Array.from({ length: 20 }, () => t.store.tryAssign(ref.plan, newTaskId(), 3, 'device-a')),
    );
    expect(again.every((r) => r.ok && first.ok && r.task === first.task && r.device === first.device)).toBe(
      true,
    );
    const b = await t.store.tryAssign(ref.plan, newTaskId(), 4, 'device-b');
    expect(b.ok).toBe(true);
    expect(await t.store.getRound(ref)).toMatchObject({ assigned: 2 });
    // The binding is an HMAC: the same for the same device in one attempt, different across devices.
    expect(first.ok && b.ok && first.device !== b.device).toBe(true);
    expect(deviceHmac((await t.store.roundKey(ref))!, 'device-a')).toBe(first.ok ? first.device : '');
    // Once it uploaded, the device gets nothing more of the attempt.
    expect((await t.store.acceptUpload(ref, first.ok ? first.task : '', new Uint8Array([1]), 5, 10)).ok).toBe(
      true,
    );
    expect(await t.store.tryAssign(ref.plan, newTaskId(), 6, 'device-a')).toEqual({
      ok: false,
      reason: 'device_assigned',
    });
    expect(await t.store.getRound(ref)).toMatchObject({ assigned: 2 });
  });

  it('gives a device its task again after selection ended (the check-in that filled it lost its answer)', async () => {
    const ref = await openPlan({ selectionTarget: 1, target: 1 });
    const first = await t.store.tryAssign(ref.plan, newTaskId(), 2, 'device-a');
    expect(first.ok).toBe(true);
    expect((await t.store.getRound(ref))?.phase).toBe('reporting');
    expect(await t.store.tryAssign(ref.plan, newTaskId(), 3, 'device-a')).toMatchObject({
      ok: true,
      task: first.ok ? first.task : '',
    });
    expect(await t.store.tryAssign(ref.plan, newTaskId(), 3, 'device-b')).toEqual({
      ok: false,
      reason: 'not_selecting',
    });
  });

  it('links nothing across attempts: a new attempt has a new key, and the device may serve it', async () => {
    const ref = await openPlan();
    const a1 = await t.store.tryAssign(ref.plan, newTaskId(), 2, 'device-a');
    await t.store.fail(ref, 'too few', 3);
    const ref2 = { ...ref, attempt: 2 };
    await t.store.openRound(newRound(ref2));
    const a2 = await t.store.tryAssign(ref.plan, newTaskId(), 4, 'device-a');
    expect(a1.ok && a2.ok).toBe(true);
    expect(a1.ok && a2.ok && a1.device !== a2.device).toBe(true);
  });

  it('deletes the round key and the device set when the attempt closes, fails or completes', async () => {
    const keys = new Keys(t.prefix);
    for (const end of ['close', 'fail', 'complete'] as const) {
      const ref = await openPlan();
      const task = newTaskId();
      expect((await t.store.tryAssign(ref.plan, task, 2, 'device-a')).ok).toBe(true);
      expect(await t.redis.exists(keys.round(ref).devices)).toBe(1);
      if (end === 'fail') {
        await t.store.fail(ref, 'x', 3);
      } else {
        await t.store.close(ref, 3);
        if (end === 'complete') {
          await t.store.beginFinalize(ref);
          await t.store.complete(ref, allBytes(), {}, 1, 4);
        }
      }
      expect(await t.redis.exists(keys.round(ref).devices)).toBe(0);
      expect(await t.redis.hget(keys.round(ref).round, 'round_key')).toBeNull();
      expect(await t.store.roundKey(ref)).toBeUndefined();
    }
  });

  it('stores no plain hash of an upload, and closes the attempt with its devices forgotten', async () => {
    const ref = await openPlan({ target: 2 });
    const tasks = [newTaskId(), newTaskId()];
    for (const [i, task] of tasks.entries()) await t.store.tryAssign(ref.plan, task, 2, `device-${i}`);
    const value = new TextEncoder().encode('31337');
    expect(await t.store.acceptUpload(ref, tasks[0]!, value, 3, 10)).toEqual({ ok: true, closed: false });
    expect(await t.store.acceptUpload(ref, tasks[0]!, value, 3, 10)).toEqual({
      ok: false,
      code: 'UPLOAD_DUPLICATE',
    });
    const atRest = await everythingAtRest(ref.plan);
    const plain = createHash('sha256').update(value).digest();
    for (const form of ['hex', 'base64', 'base64url'] as const)
      expect(atRest).not.toContain(plain.toString(form));
    expect(atRest).not.toContain('device-0');
    expect(await t.store.acceptUpload(ref, tasks[1]!, value, 4, 10)).toEqual({ ok: true, closed: true });
    expect(await t.store.getRound(ref)).toMatchObject({ phase: 'closed' });
    expect(await t.redis.hget(new Keys(t.prefix).round(ref).round, 'round_key')).toBeNull();
  });

  it('assigns in the current attempt when a process remembers an older one (two processes, one Redis)', async () => {
    const other = new RedisRoundStore(t.redis, t.prefix);
    const ref = await openPlan();
    // Both processes remember 1.1 now.
    expect(await t.store.tryAssign(ref.plan, newTaskId(), 2, 'device-1')).toMatchObject({ ok: true, ref });
    expect(await other.tryAssign(ref.plan, newTaskId(), 2, 'device-2')).toMatchObject({ ok: true, ref });
    await t.store.fail(ref, 'too few', 3);
    const ref2 = { ...ref, attempt: 2 };
    await t.store.openRound(newRound(ref2));
    // The other process learns of 1.2 from the script ('moved') and assigns there, under 1.2's key.
    const again = await other.tryAssign(ref.plan, newTaskId(), 4, 'device-2');
    expect(again).toMatchObject({ ok: true, ref: ref2 });
    const key = await t.store.roundKey(ref2);
    expect(again.ok && again.device).toBe(deviceHmac(key!, 'device-2'));
    // A device's hint of a served round is checked against a fresh read, not against the memory: round 2
    // opens, and a device that served round 1 gets a task of it through a process that remembers round 1.
    const third = new RedisRoundStore(t.redis, t.prefix);
    expect(await third.tryAssign(ref.plan, newTaskId(), 4, 'device-3')).toMatchObject({
      ok: true,
      ref: ref2,
    });
    await t.store.close(ref2, 5);
    await t.store.beginFinalize(ref2);
    await t.store.complete(ref2, allBytes(), {}, 3, 5);
    const ref3 = { plan: ref.plan, round: 2, attempt: 1 };
    await t.store.openRound(newRound(ref3));
    expect(await third.tryAssign(ref.plan, newTaskId(), 6, 'device-3', 1)).toMatchObject({
      ok: true,
      ref: ref3,
    });
  });

  it('assigns nothing when the round moved on between the read and the script', async () => {
    const ref = await openPlan();
    await t.store.toReporting(ref, 2);
    expect(await t.store.tryAssign(ref.plan, newTaskId(), 3, 'device-a')).toEqual({
      ok: false,
      reason: 'not_selecting',
    });
  });
});
