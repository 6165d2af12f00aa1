import { openTestStore, type TestStore } from '../../store/testing';
import { ProgramEvents, RECHECK_MS, programChannel } from './program-events';

describe('ProgramEvents (real Redis)', () => {
  let t: TestStore;
  let events: ProgramEvents;
  const publish = (program: string) => t.redis.publish(programChannel(t.prefix), program);
  beforeAll(async () => {
    t = openTestStore('program-events');
    events = new ProgramEvents(t.redis.duplicate(), programChannel(t.prefix));
    await events.start();
  });
  afterAll(async () => {
    await events.close();
    await t.close();
  });

  /** Whether `p` settles within `ms`. */
  const settles = (p: Promise<void>, ms: number) =>
    Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  it("wakes every wait on a program at once (a cohort's polls), and none of another program", async () => {
    const cohort = Array.from({ length: 1000 }, () => events.arm('p1', 30_000));
    const other = events.arm('p2', 30_000);
    expect(events.waiting()).toBe(1001);
    const t0 = Date.now();
    await publish('p1');
    await Promise.all(cohort.map((w) => w.changed));
    // Woken by the event, long before the recheck timer would have ended them.
    expect(Date.now() - t0).toBeLessThan(RECHECK_MS / 2);
    expect(events.waiting()).toBe(1);
    expect(await settles(other.changed, 50)).toBe(false);
    other.end();
    expect(events.waiting()).toBe(0);
  });

  it('a wait armed by a woken poll waits for the next event', async () => {
    const first = events.arm('p3', 30_000);
    let again: ReturnType<ProgramEvents['arm']> | undefined;
    const rearmed = first.changed.then(() => (again = events.arm('p3', 30_000)));
    await publish('p3');
    await rearmed;
    expect(events.waiting()).toBe(1);
    expect(await settles(again!.changed, 100)).toBe(false);
    await publish('p3');
    expect(await settles(again!.changed, RECHECK_MS / 2)).toBe(true);
    expect(events.waiting()).toBe(0);
  });

  it('ends a wait by its timer (at most RECHECK_MS) or by end(), once', async () => {
    const t0 = Date.now();
    await events.arm('p4', 60).changed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(events.waiting()).toBe(0);

    const capped = events.arm('p4', 60_000);
    const ended = events.arm('p4', 60_000);
    expect(events.waiting()).toBe(2);
    ended.end();
    ended.end();
    expect(await settles(ended.changed, 10)).toBe(true);
    expect(events.waiting()).toBe(1);
    const t1 = Date.now();
    await capped.changed;
    expect(Date.now() - t1).toBeLessThanOrEqual(RECHECK_MS + 200);
    expect(events.waiting()).toBe(0);
  });
});
