import { newTaskId } from './ids';
import { allBytes, openTestRound, openTestStore, type TestStore } from './testing';

let t: TestStore;
beforeAll(() => {
  t = openTestStore('uploads');
});
afterAll(async () => {
  await t.close();
});

/** A plan with round 1.1 open and `n` tasks assigned. */
async function roundWithTasks(n: number, round: { selectionTarget?: number; target?: number } = {}) {
  const ref = await openTestRound(t, {
    population: 'up',
    rounds: 1,
    round: { selectionTarget: 10, target: 5, ...round },
  });
  const tasks: string[] = [];
  for (let i = 0; i < n; i++) {
    const task = newTaskId();
    const r = await t.store.tryAssign(ref.plan, task, 2, newTaskId());
    if (!r.ok) throw new Error(r.reason);
    tasks.push(task);
  }
  return { ref, tasks };
}

describe('acceptUpload', () => {
  it('accepts, stores the bytes binary-safe, and answers duplicate, reused and unknown', async () => {
    const { ref, tasks } = await roundWithTasks(2);
    const [a, b] = tasks as [string, string];
    const bytes = allBytes();
    expect(await t.store.acceptUpload(ref, a, bytes, 3, 10)).toEqual({ ok: true, closed: false });
    const stored = await t.store.getUpload(ref, a);
    expect(Buffer.isBuffer(stored)).toBe(false);
    expect(Array.from(stored ?? [])).toEqual(Array.from(bytes));

    expect(await t.store.acceptUpload(ref, a, bytes, 3, 10)).toEqual({
      ok: false,
      code: 'UPLOAD_DUPLICATE',
    });
    const other = new Uint8Array([7]);
    expect(await t.store.acceptUpload(ref, a, other, 3, 10)).toEqual({
      ok: false,
      code: 'TOKEN_REUSED',
    });
    expect(await t.store.acceptUpload(ref, newTaskId(), other, 3, 10)).toEqual({
      ok: false,
      code: 'TASK_UNKNOWN',
    });
    expect(await t.store.acceptUpload({ ...ref, attempt: 9 }, b, other, 3, 10)).toEqual({
      ok: false,
      code: 'TASK_UNKNOWN',
    });
    expect(await t.store.getRound(ref)).toMatchObject({ reported: 1, late: 0, phase: 'selecting' });
    expect(await t.store.getUpload(ref, b)).toBeUndefined();
    // Nothing was created for the attempt that does not exist.
    expect((await t.keys()).filter((k) => k.includes(`{${ref.plan}}:r:1.9`))).toEqual([]);
  });

  it('answers BUSY, changing nothing, while max pending uploads wait for aggregation', async () => {
    const { ref, tasks } = await roundWithTasks(3);
    const bytes = new Uint8Array([1]);
    expect((await t.store.acceptUpload(ref, tasks[0]!, bytes, 3, 2)).ok).toBe(true);
    expect((await t.store.acceptUpload(ref, tasks[1]!, bytes, 3, 2)).ok).toBe(true);
    expect(await t.store.acceptUpload(ref, tasks[2]!, bytes, 3, 2)).toEqual({
      ok: false,
      code: 'BUSY',
    });
    expect(await t.store.getUpload(ref, tasks[2]!)).toBeUndefined();
    expect(await t.store.getRound(ref)).toMatchObject({ reported: 2 });
    // Accumulating one frees a slot.
    expect((await t.store.commitPartial(ref, 'w', new Uint8Array([0]), [tasks[0]!])).ok).toBe(true);
    expect((await t.store.acceptUpload(ref, tasks[2]!, bytes, 3, 2)).ok).toBe(true);
  });

  it('closes the round with the upload that reaches target; later uploads are late and counted', async () => {
    const { ref, tasks } = await roundWithTasks(4, { target: 2 });
    const bytes = new Uint8Array([1, 2]);
    expect(await t.store.acceptUpload(ref, tasks[0]!, bytes, 3, 10)).toEqual({
      ok: true,
      closed: false,
    });
    expect(await t.store.acceptUpload(ref, tasks[1]!, bytes, 7, 10)).toEqual({
      ok: true,
      closed: true,
    });
    expect(await t.store.getRound(ref)).toMatchObject({ phase: 'closed', closed_at: 7, reported: 2 });
    expect(await t.store.acceptUpload(ref, tasks[2]!, bytes, 8, 10)).toEqual({
      ok: false,
      code: 'UPLOAD_LATE',
    });
    // The round key went with 'closed', so a retry of an accepted upload cannot be compared any more: its
    // one upload was accepted and counted, which is what its client learns (a duplicate), and not 'late'.
    expect(await t.store.acceptUpload(ref, tasks[1]!, bytes, 8, 10)).toEqual({
      ok: false,
      code: 'UPLOAD_DUPLICATE',
    });
    expect(await t.store.getRound(ref)).toMatchObject({ late: 1, reported: 2 });
    expect(await t.store.getUpload(ref, tasks[2]!)).toBeUndefined();
  });

  it('accepts uploads while still selecting, and can close from selecting', async () => {
    const { ref, tasks } = await roundWithTasks(1, { target: 1 });
    expect((await t.store.getRound(ref))?.phase).toBe('selecting');
    const bytes = new Uint8Array([3]);
    expect(await t.store.acceptUpload(ref, tasks[0]!, bytes, 3, 10)).toEqual({
      ok: true,
      closed: true,
    });
    expect(await t.store.tryAssign(ref.plan, newTaskId(), 4, newTaskId())).toEqual({
      ok: false,
      reason: 'not_selecting',
    });
  });
});

describe('countRejected and pendingTasks', () => {
  it('counts rejections only in attempts that exist', async () => {
    const { ref } = await roundWithTasks(0);
    await t.store.countRejected(ref);
    await t.store.countRejected(ref);
    expect((await t.store.getRound(ref))?.rejected).toBe(2);
    await t.store.countRejected({ ...ref, round: 5 });
    expect((await t.keys()).filter((k) => k.includes(`{${ref.plan}}:r:5.1`))).toEqual([]);
  });

  it('lists uploaded tasks not yet covered by a partial', async () => {
    const { ref, tasks } = await roundWithTasks(4);
    const bytes = new Uint8Array([1]);
    for (const task of tasks.slice(0, 3)) await t.store.acceptUpload(ref, task, bytes, 3, 10);
    expect((await t.store.pendingTasks(ref)).sort()).toEqual(tasks.slice(0, 3).sort());
    await t.store.commitPartial(ref, 'w', new Uint8Array([1]), [tasks[1]!]);
    expect((await t.store.pendingTasks(ref)).sort()).toEqual([tasks[0]!, tasks[2]!].sort());
    expect((await t.store.queuedUploads(ref, [tasks[1]!]))[0]!.covered).toBe(true);
    expect((await t.store.queuedUploads(ref, [tasks[0]!]))[0]!.covered).toBe(false);
  });
});

describe('queuedUploads', () => {
  it("reads a batch's covered flags and bytes in its order: covered, queued, and never uploaded", async () => {
    const { ref, tasks } = await roundWithTasks(4);
    const [covered, queued, other, never] = tasks as [string, string, string, string];
    await t.store.acceptUpload(ref, covered, new Uint8Array([7]), 3, 10);
    await t.store.acceptUpload(ref, queued, new Uint8Array([0, 255, 13, 10]), 3, 10);
    await t.store.acceptUpload(ref, other, new Uint8Array([9]), 3, 10);
    await t.store.commitPartial(ref, 'w', new Uint8Array([1]), [covered]);
    expect(await t.store.queuedUploads(ref, [queued, never, covered, other])).toEqual([
      { task: queued, covered: false, bytes: new Uint8Array([0, 255, 13, 10]) },
      { task: never, covered: false, bytes: undefined },
      { task: covered, covered: true },
      { task: other, covered: false, bytes: new Uint8Array([9]) },
    ]);
    expect(await t.store.queuedUploads(ref, [])).toEqual([]);
  });
});
