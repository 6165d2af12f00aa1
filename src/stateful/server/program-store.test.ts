import { Keys } from '../../store/keys';
import { openTestStore, type TestStore } from '../../store/testing';
import { ProgramStore } from './program-store';

describe('ProgramStore (real Redis)', () => {
  let t: TestStore;
  let programs: ProgramStore;
  beforeAll(() => {
    t = openTestStore('programs');
    programs = new ProgramStore(t.redis, new Keys(t.prefix));
  });
  afterAll(async () => {
    await t.close();
  });

  async function create(id: string, target = 3, min = 2): Promise<void> {
    await programs.create({
      id,
      json: '{}',
      name: 'p',
      population: `pop-${id}`,
      steps: 4,
      targetClients: target,
      minClients: min,
      joinDeadline: 10_000,
      now: 1,
    });
  }

  it('joins devices up to the target, gives a device its live session again, and closes with recruiting', async () => {
    await create('j1', 2);
    expect(await programs.recruitingIn('pop-j1')).toEqual(['j1']);
    expect(await programs.join('j1', 'dev-a', 's1', 5)).toEqual({ outcome: 'joined', session: 's1' });
    // The same device again (its first answer lost): the same session, not a second place in the cohort.
    expect(await programs.join('j1', 'dev-a', 's9', 6)).toEqual({ outcome: 'existing', session: 's1' });
    expect(await programs.join('j1', 'dev-b', 's2', 7)).toEqual({ outcome: 'joined', session: 's2' });
    expect(await programs.join('j1', 'dev-c', 's3', 8)).toEqual({ outcome: 'full' });
    expect(await programs.get('j1')).toMatchObject({ cohort: 2, live: 2, status: 'recruiting' });
    expect(await programs.move('j1', 'recruiting', 'running')).toBe(true);
    expect(await programs.move('j1', 'recruiting', 'running')).toBe(false);
    expect(await programs.recruitingIn('pop-j1')).toEqual([]);
    expect(await programs.active()).toContain('j1');
    await create('j2', 5);
    await programs.move('j2', 'recruiting', 'running');
    expect(await programs.join('j2', 'dev-z', 's5', 9)).toEqual({ outcome: 'closed' });
  });

  it('a device that leaves while recruiting frees its place', async () => {
    await create('f1', 2);
    await programs.join('f1', 'dev-a', 's1', 5);
    await programs.join('f1', 'dev-b', 's2', 6);
    expect(await programs.join('f1', 'dev-c', 's3', 7)).toEqual({ outcome: 'full' });
    await programs.endSession('f1', 's2', 'left', 'SESSION_ENDED', 'the device left');
    expect(await programs.join('f1', 'dev-c', 's3', 8)).toEqual({ outcome: 'joined', session: 's3' });
    expect(await programs.get('f1')).toMatchObject({ cohort: 3, live: 2 });
  });

  it('a failed session is not given back, and ends once', async () => {
    await create('e1');
    await programs.join('e1', 'dev-a', 's1', 5);
    expect(await programs.endSession('e1', 's1', 'failed', 'HANDLE_UNKNOWN', 'request 3: lost')).toBe(true);
    expect(await programs.endSession('e1', 's1', 'left', 'SESSION_ENDED', 'again')).toBe(false);
    expect(await programs.session('e1', 's1')).toMatchObject({
      status: 'failed',
      code: 'HANDLE_UNKNOWN',
      reason: 'request 3: lost',
    });
    expect((await programs.get('e1'))!.live).toBe(0);
    expect(await programs.join('e1', 'dev-a', 's2', 6)).toEqual({ outcome: 'ended' });
    // An ended session takes no answers.
    expect(await programs.answer('e1', 's1', 1, 7)).toBe(-1);
  });

  it('issues a step once, even when two drivers race, and an aggregate contribution once', async () => {
    await create('i1');
    await programs.move('i1', 'recruiting', 'running');
    const req = { kind: 'create_data', handle: 'h0', collection: 'c' } as const;
    const [a, b] = await Promise.all([
      programs.issue('i1', 0, 1, [req], 1000),
      programs.issue('i1', 0, 1, [req], 1000),
    ]);
    expect([a, b].filter((x) => x !== undefined)).toEqual([1]);
    // When requests last went out: a session owing them counts its silence from then (driver).
    expect((await programs.get('i1'))!.issued_at).toBe(1000);
    const contribute = { kind: 'contribute', aggregation: 'x', handle: 'h0', plan: 'p1' } as const;
    expect(await programs.issue('i1', 1, 1, [contribute], 2000)).toBe(2);
    expect(await programs.issue('i1', 1, 1, [contribute], 3000)).toBeUndefined();
    expect(await programs.issue('i1', 1, 2, [], 4000)).toBe(2);
    // A move with no request sends nothing out.
    expect((await programs.get('i1'))!.issued_at).toBe(2000);
    expect((await programs.requests('i1', 0)).map((r) => r.seq)).toEqual([1, 2]);
    expect((await programs.requests('i1', 1))[0]!.request).toEqual(contribute);
  });

  it('reads the status and last answer of many sessions in one command', async () => {
    await create('st1');
    await programs.join('st1', 'dev-a', 's1', 5);
    await programs.join('st1', 'dev-b', 's2', 5);
    await programs.answer('st1', 's2', 0, 6);
    await programs.endSession('st1', 's1', 'failed', 'HANDLE_UNKNOWN', 'request 1: HANDLE_UNKNOWN');
    const states = await programs.sessionStates('st1', ['s1', 's2', 'nobody']);
    expect([...states]).toEqual([
      ['s1', { status: 'failed', answered: 0 }],
      ['s2', { status: 'live', answered: 0 }],
    ]);
    expect((await programs.sessionStates('st1', [])).size).toBe(0);
  });

  it('answers move a live session forward only, and record the contact', async () => {
    await create('a1');
    await programs.join('a1', 'dev-a', 's1', 5);
    expect(await programs.answer('a1', 's1', 3, 50)).toBe(3);
    expect(await programs.answer('a1', 's1', 2, 60)).toBe(3);
    expect(await programs.session('a1', 's1')).toMatchObject({ answered: 3, seen: 60 });
  });

  it('the lock has one holder', async () => {
    await create('l1');
    expect(await programs.lock('l1', 'a', 10_000)).toBe(true);
    expect(await programs.lock('l1', 'b', 10_000)).toBe(false);
    await programs.unlock('l1', 'b');
    expect(await programs.lock('l1', 'b', 10_000)).toBe(false);
    await programs.unlock('l1', 'a');
    expect(await programs.lock('l1', 'b', 10_000)).toBe(true);
  });
});
