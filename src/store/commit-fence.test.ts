import { newTaskId } from './ids';
import { allBytes, createTestPlan, newRound, openTestStore, type TestStore } from './testing';
import type { RoundRef } from './types';

// commit-partial's fence (a worker id's lease epoch per attempt), its count of covered uploads inside no
// partial (`dropped`), and count-fault. Against a real Redis.
let t: TestStore;
beforeAll(() => {
  t = openTestStore('commit-fence');
});
afterAll(async () => {
  await t.close();
});

async function openAttempt(uploads: number): Promise<{ ref: RoundRef; tasks: string[] }> {
  const id = await createTestPlan(t, { population: 'fence' });
  const ref = { plan: id, round: 1, attempt: 1 };
  await t.store.openRound(newRound(ref, { selectionTarget: 8, target: 8 }));
  const tasks: string[] = [];
  for (let i = 0; i < uploads; i++) {
    const r = await t.store.tryAssign(id, newTaskId(), 2, `device-${i}`);
    if (!r.ok) throw new Error(r.reason);
    tasks.push(r.task);
    expect((await t.store.acceptUpload(ref, r.task, Uint8Array.of(i), 3, 10)).ok).toBe(true);
  }
  return { ref, tasks };
}

describe('the lease epoch fence of commit-partial', () => {
  it('refuses a commit with an epoch below the one the worker id committed with, changing nothing', async () => {
    const { ref, tasks } = await openAttempt(4);
    const [a, b, c, d] = tasks as [string, string, string, string];
    expect(await t.store.commitPartial(ref, 'w', Uint8Array.of(1), [a], 0, { epoch: 5 })).toEqual({
      ok: true,
      ready: false,
    });
    // A zombie of the id (an older holder of its lease) is fenced, even with tasks nobody covered.
    expect(await t.store.commitPartial(ref, 'w', Uint8Array.of(9), [b], 0, { epoch: 4 })).toEqual({
      ok: false,
      conflicts: [b],
      fenced: true,
    });
    expect(await t.store.commitPartial(ref, 'w', Uint8Array.of(9), [b])).toMatchObject({ fenced: true });
    expect(await t.store.getPartial(ref, 'w')).toEqual(Uint8Array.of(1));
    expect((await t.store.queuedUploads(ref, [b]))[0]!.covered).toBe(false);
    expect(await t.store.getRound(ref)).toMatchObject({ accumulated: 1 });
    // The holder (same epoch) and a newer one commit; then the older holder is fenced too.
    expect((await t.store.commitPartial(ref, 'w', Uint8Array.of(2), [b], 0, { epoch: 5 })).ok).toBe(true);
    expect((await t.store.commitPartial(ref, 'w', Uint8Array.of(3), [c], 0, { epoch: 6 })).ok).toBe(true);
    expect(await t.store.commitPartial(ref, 'w', Uint8Array.of(9), [d], 0, { epoch: 5 })).toMatchObject({
      fenced: true,
    });
    // The fence is per worker id: another id commits with any epoch.
    expect((await t.store.commitPartial(ref, 'other', Uint8Array.of(4), [d], 0, { epoch: 1 })).ok).toBe(true);
    expect(await t.store.getRound(ref)).toMatchObject({ accumulated: 4 });
  });
});

describe('dropped uploads and fault counts', () => {
  it('counts rejected and gone uploads of commits in dropped, and nothing of a refused commit', async () => {
    const { ref, tasks } = await openAttempt(4);
    expect(await t.store.aggregationCounts(ref)).toEqual({ accumulated: 0, dropped: 0 });
    expect((await t.store.commitPartial(ref, 'w1', allBytes(), tasks.slice(0, 3), 1, { gone: 1 })).ok).toBe(
      true,
    );
    expect(await t.store.commitPartial(ref, 'w2', allBytes(), tasks.slice(2), 1, { gone: 1 })).toMatchObject({
      ok: false,
    });
    expect(await t.store.aggregationCounts(ref)).toEqual({ accumulated: 3, dropped: 2 });
    // The API's rejections (before an upload is accepted) are rejected, never dropped.
    await t.store.countRejected(ref);
    expect(await t.store.getRound(ref)).toMatchObject({ rejected: 2, accumulated: 3 });
    expect(await t.store.aggregationCounts({ ...ref, attempt: 9 })).toBeUndefined();
  });

  it('counts faults in the attempt, or in the plan while the attempt opens, and creates no key', async () => {
    const { ref } = await openAttempt(0);
    expect(await t.store.countFault(ref)).toBe(1);
    expect(await t.store.countFault(ref)).toBe(2);
    expect(await t.redis.hget(`${t.prefix}:{${ref.plan}}:r:1.1`, 'faults')).toBe('2');
    const opening = { ...ref, attempt: 2 };
    expect(await t.store.countFault(opening)).toBe(1);
    expect(await t.redis.hget(`${t.prefix}:{${ref.plan}}:meta`, 'faults:1.2')).toBe('1');
    expect(await t.store.getRound(opening)).toBeUndefined();
    expect(await t.store.countFault({ plan: 'nope', round: 1, attempt: 1 })).toBe(-1);
    expect((await t.keys()).some((k) => k.includes('{nope}'))).toBe(false);
  });
});

describe('the fence raised when a worker reads its partial', () => {
  it('keeps a stale holder from committing first to an attempt the new holder has read', async () => {
    const { ref, tasks } = await openAttempt(2);
    const [a, b] = tasks as [string, string];
    // The new holder (epoch 6) reads the id's partial of the attempt: none yet; it raises the fence first.
    expect(await t.store.raiseFence(ref, 'w', 6)).toBe(0);
    expect(await t.store.getPartial(ref, 'w')).toBeUndefined();
    // The stale holder (epoch 5) had not committed to this attempt: without the raised fence its commit
    // would land, and the new holder's commit, built on the partial it read, would then replace it whole.
    expect(await t.store.commitPartial(ref, 'w', Uint8Array.of(5), [a], 0, { epoch: 5 })).toMatchObject({
      ok: false,
      fenced: true,
    });
    expect((await t.store.commitPartial(ref, 'w', Uint8Array.of(6), [b], 0, { epoch: 6 })).ok).toBe(true);
    // The stale holder reading the partial learns that it is stale.
    expect(await t.store.raiseFence(ref, 'w', 5)).toBe(6);
    expect(await t.store.raiseFence(ref, 'w', 6)).toBe(0);
  });
});
