import { AppError } from '../errors';
import { newPlanId, newTaskId } from './ids';
import { allBytes, newRound, openTestStore, type TestStore } from './testing';
import type { RoundRef } from './types';

let t: TestStore;
beforeAll(() => {
  t = openTestStore('lifecycle');
});
afterAll(async () => {
  await t.close();
});

/** A plan of `rounds` rounds with round 1.1 open, `uploads` of its tasks uploaded. */
async function setup(opts: { rounds?: number; tasks: number; uploads: number; target?: number }) {
  const id = newPlanId();
  await t.store.createPlan({
    id,
    json: '{}',
    name: 'n',
    population: `pop-${id}`,
    rounds: opts.rounds ?? 2,
    state: allBytes(),
    now: 1,
  });
  const ref: RoundRef = { plan: id, round: 1, attempt: 1 };
  await t.store.openRound(newRound(ref, { selectionTarget: opts.tasks, target: opts.target ?? opts.tasks }));
  const tasks: string[] = [];
  for (let i = 0; i < opts.tasks; i++) {
    const task = newTaskId();
    if (!(await t.store.tryAssign(id, task, 2, newTaskId())).ok) throw new Error('not assigned');
    tasks.push(task);
  }
  for (const task of tasks.slice(0, opts.uploads)) {
    const bytes = new TextEncoder().encode(task);
    if (!(await t.store.acceptUpload(ref, task, bytes, 3, 100)).ok) throw new Error('not accepted');
  }
  return { id, ref, tasks };
}

/** The per-round keys that must not outlive a finished attempt. */
async function roundLeftovers(ref: RoundRef): Promise<string[]> {
  return (await t.keys()).filter(
    (k) => /:(upload|partial):|:(tasks|covered|partials)$/.test(k) && k.includes(`{${ref.plan}}`),
  );
}

describe('commitPartial', () => {
  it('commits: stores the partial, covers the tasks, deletes their uploads, counts them', async () => {
    const { ref, tasks } = await setup({ tasks: 4, uploads: 3, target: 3 });
    const partial = allBytes();
    expect(await t.store.commitPartial(ref, 'w1', partial, tasks.slice(0, 2))).toEqual({
      ok: true,
      ready: false,
    });
    expect(Array.from((await t.store.getPartial(ref, 'w1')) ?? [])).toEqual(Array.from(partial));
    expect(await t.store.getUpload(ref, tasks[0]!)).toBeUndefined();
    expect(await t.store.getUpload(ref, tasks[2]!)).toBeDefined();
    expect((await t.store.queuedUploads(ref, [tasks[0]!]))[0]!.covered).toBe(true);
    expect((await t.store.getRound(ref))?.accumulated).toBe(2);
  });

  it('refuses a batch with a covered or never-uploaded task, changing nothing', async () => {
    const { ref, tasks } = await setup({ tasks: 4, uploads: 3 });
    await t.store.commitPartial(ref, 'w1', new Uint8Array([1]), [tasks[0]!]);
    const before = await t.keys();
    const res = await t.store.commitPartial(ref, 'w2', new Uint8Array([2]), [
      tasks[1]!,
      tasks[0]!,
      tasks[3]!,
    ]);
    expect(res).toEqual({ ok: false, conflicts: [tasks[0], tasks[3]] });
    expect(await t.keys()).toEqual(before);
    expect(await t.store.getUpload(ref, tasks[1]!)).toBeDefined();
    expect(await t.store.getPartial(ref, 'w2')).toBeUndefined();
    expect((await t.store.getRound(ref))?.accumulated).toBe(1);
    await expect(
      t.store.commitPartial(ref, 'w2', new Uint8Array([2]), [tasks[1]!, tasks[1]!]),
    ).rejects.toThrow(/twice/);
  });

  it('answers ready once the round is closed and every upload accumulated', async () => {
    const { ref, tasks } = await setup({ tasks: 3, uploads: 3 });
    expect((await t.store.getRound(ref))?.phase).toBe('closed');
    expect(await t.store.commitPartial(ref, 'w1', new Uint8Array([1]), tasks.slice(0, 2))).toEqual({
      ok: true,
      ready: false,
    });
    expect(await t.store.commitPartial(ref, 'w2', new Uint8Array([2]), tasks.slice(2))).toEqual({
      ok: true,
      ready: true,
    });
    const partials = await t.store.getPartials(ref);
    expect(partials.map((p) => Array.from(p))).toEqual([[1], [2]]);
  });

  it('answers stale, changing nothing, once the attempt takes no more partials', async () => {
    const { ref, tasks } = await setup({ tasks: 2, uploads: 2 });
    await t.store.fail(ref, 'test', 5);
    expect(await t.store.commitPartial(ref, 'w1', new Uint8Array([1]), tasks)).toEqual({
      ok: false,
      conflicts: tasks,
      stale: true,
    });
    expect(await roundLeftovers(ref)).toEqual([]);
  });
});

describe('transitions', () => {
  it('moves selecting -> reporting -> closed -> finalizing only from the right phase', async () => {
    const { ref, tasks } = await setup({ tasks: 0, uploads: 0 });
    // setup opened with selection_target 0; open a roomier attempt 1.2 to walk the phases.
    await t.store.fail(ref, 'redo', 1);
    const ref2 = { ...ref, attempt: 2 };
    await t.store.openRound(newRound(ref2, { selectionTarget: 5, target: 5 }));
    expect(tasks).toEqual([]);
    expect(await t.store.beginFinalize(ref2)).toEqual({ changed: false, phase: 'selecting' });
    expect(await t.store.toReporting(ref2, 10)).toEqual({ changed: true, phase: 'reporting' });
    expect(await t.store.toReporting(ref2, 11)).toEqual({ changed: false, phase: 'reporting' });
    const task = newTaskId();
    expect(await t.store.tryAssign(ref.plan, task, 12, newTaskId())).toEqual({
      ok: false,
      reason: 'not_selecting',
    });
    expect(await t.store.close(ref2, 20)).toEqual({ changed: true, phase: 'closed' });
    expect(await t.store.close(ref2, 21)).toEqual({ changed: false, phase: 'closed' });
    expect(await t.store.beginFinalize(ref2)).toEqual({ changed: true, phase: 'finalizing' });
    expect(await t.store.beginFinalize(ref2)).toEqual({ changed: false, phase: 'finalizing' });
    expect(await t.store.getRound(ref2)).toMatchObject({ reporting_at: 10, closed_at: 20 });
    await expect(t.store.close({ ...ref, round: 7 }, 1)).rejects.toThrow(AppError);
  });

  it('does not begin finalizing while uploads wait for aggregation', async () => {
    const { ref, tasks } = await setup({ tasks: 2, uploads: 2 });
    expect(await t.store.beginFinalize(ref)).toEqual({ changed: false, phase: 'closed' });
    await t.store.commitPartial(ref, 'w', new Uint8Array([1]), tasks);
    expect(await t.store.beginFinalize(ref)).toEqual({ changed: true, phase: 'finalizing' });
  });

  it('completes: stores state and output, cleans every per-round key, completes the plan after its last round', async () => {
    const { id, ref, tasks } = await setup({ rounds: 2, tasks: 3, uploads: 3 });
    await t.store.commitPartial(ref, 'w1', new Uint8Array([1]), tasks.slice(0, 1));
    await t.store.commitPartial(ref, 'w2', new Uint8Array([2]), tasks.slice(1));
    expect(await t.store.complete(ref, new Uint8Array([9]), { loss: 1 }, 3, 50)).toEqual({
      changed: false,
      phase: 'closed',
    });
    await t.store.beginFinalize(ref);
    const state = new Uint8Array([255, 0, 128]);
    expect(await t.store.complete(ref, state, { loss: 0.5 }, 3, 60)).toEqual({
      changed: true,
      phase: 'completed',
    });
    expect(await t.store.complete(ref, new Uint8Array([1]), {}, 1, 70)).toEqual({
      changed: false,
      phase: 'completed',
    });
    expect(await t.store.fail(ref, 'late', 80)).toEqual({ changed: false, phase: 'completed' });
    expect(Array.from((await t.store.getState(id)) ?? [])).toEqual([255, 0, 128]);
    expect(await t.store.getRound(ref)).toMatchObject({
      phase: 'completed',
      output: { loss: 0.5 },
      aggregated_clients: 3,
      finished_at: 60,
    });
    expect(await roundLeftovers(ref)).toEqual([]);
    expect(await t.store.getPartials(ref)).toEqual([]);
    expect((await t.store.getPlan(id))?.status).toBe('active');

    // The last round completes the plan, which leaves its population.
    const ref2 = { ...ref, round: 2 };
    await t.store.openRound(newRound(ref2, { selectionTarget: 1, target: 1 }));
    const task = newTaskId();
    await t.store.tryAssign(id, task, 90, newTaskId());
    await t.store.acceptUpload(ref2, task, new Uint8Array([1]), 91, 10);
    await t.store.commitPartial(ref2, 'w1', new Uint8Array([1]), [task]);
    await t.store.beginFinalize(ref2);
    expect((await t.store.complete(ref2, state, undefined, 1, 95)).changed).toBe(true);
    expect(await t.store.getPlan(id)).toMatchObject({ status: 'completed', round: 2, phase: 'completed' });
    expect(await t.store.plansOf(`pop-${id}`)).toEqual([]);
    expect((await t.store.getRound(ref2))?.output).toBeUndefined();
  });

  it('fails: records why and discards partials, uploads, tasks and the broadcast; the state stays', async () => {
    const { id, ref, tasks } = await setup({ tasks: 4, uploads: 3 });
    await t.store.commitPartial(ref, 'w1', new Uint8Array([1]), tasks.slice(0, 1));
    expect(await t.store.fail(ref, 'too few clients', 40)).toEqual({ changed: true, phase: 'failed' });
    expect(await t.store.fail(ref, 'again', 41)).toEqual({ changed: false, phase: 'failed' });
    expect(await t.store.getRound(ref)).toMatchObject({
      phase: 'failed',
      error: 'too few clients',
      finished_at: 40,
    });
    expect(await roundLeftovers(ref)).toEqual([]);
    expect(await t.store.pendingTasks(ref)).toEqual([]);
    expect(Array.from((await t.store.getState(id)) ?? [])).toEqual(Array.from(allBytes()));
    expect(await t.store.getBroadcast(ref)).toBeUndefined();
  });
});

describe('key layout', () => {
  it('tags every key of a plan with {planId} after a full lifecycle', async () => {
    const { id, ref, tasks } = await setup({ rounds: 1, tasks: 2, uploads: 1, target: 2 });
    await t.store.countRejected(ref);
    const mid = (await t.keys()).filter((k) => k.includes(`{${id}}`));
    expect(mid.some((k) => k.includes(':upload:'))).toBe(true);
    await t.store.commitPartial(ref, 'w1', new Uint8Array([1]), tasks.slice(0, 1));
    await t.store.close(ref, 10);
    await t.store.beginFinalize(ref);
    await t.store.complete(ref, new Uint8Array([1]), { ok: true }, 1, 11);
    const all = await t.keys();
    const planKeys = all.filter((k) => k.includes(`{${id}}`));
    for (const k of [...mid, ...planKeys]) expect(k.startsWith(`${t.prefix}:{${id}}:`)).toBe(true);
    expect(planKeys.map((k) => k.slice(`${t.prefix}:{${id}}:`.length)).sort()).toEqual(
      ['broadcasts', 'history', 'meta', 'plan', 'r:1.1', 'r:1.1:broadcast', 'state'].sort(),
    );
    for (const k of all.filter((k) => !k.includes('{')))
      expect(k).toMatch(new RegExp(`^${t.prefix}:(plans|pop:\\{[^}]+\\}(:rate)?)$`));
  });
});
