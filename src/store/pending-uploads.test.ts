import { newTaskId } from './ids';
import { allBytes, openTestRound, openTestStore, type TestStore } from './testing';

// pendingUploads, the API's admission read, counts what accept-upload's BUSY check counts.
let t: TestStore;
beforeAll(() => {
  t = openTestStore('pending');
});
afterAll(async () => {
  await t.close();
});

test('pending uploads are reported less accumulated less held, and 0 for no attempt', async () => {
  const ref = await openTestRound(t, { population: 'pending', round: { selectionTarget: 5, target: 5 } });
  expect(await t.store.pendingUploads(ref)).toBe(0);
  const tasks: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await t.store.tryAssign(ref.plan, newTaskId(), 2, `device-${i}`);
    if (!r.ok) throw new Error(r.reason);
    tasks.push(r.task);
  }
  for (const task of tasks) await t.store.acceptUpload(ref, task, Uint8Array.of(task.length), 3, 10);
  expect(await t.store.pendingUploads(ref)).toBe(3);
  await t.store.setHeld(ref, 'w1', 1);
  expect(await t.store.pendingUploads(ref)).toBe(2);
  expect(await t.store.commitPartial(ref, 'w2', allBytes(), [tasks[0]!])).toMatchObject({ ok: true });
  // One accumulated, one held.
  expect(await t.store.pendingUploads(ref)).toBe(1);
  expect(await t.store.pendingUploads({ ...ref, round: 99 })).toBe(0);
});
