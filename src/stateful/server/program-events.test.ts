import { openTestStore, type TestStore } from '../../store/testing';
import { ProgramEvents, programChannel } from './program-events';

// A recheck far longer than any wake: a wait that ends before it was woken by the event, however loaded
// the machine (CI's 2 cores run two test files, their servers and Redis at once).
const LONG_RECHECK_MS = 60_000;
// A short one, for the test of the timer itself.
const SHORT_RECHECK_MS = 300;

describe('ProgramEvents (real Redis)', () => {
  let t: TestStore;
  let events: ProgramEvents;
  let short: ProgramEvents;
  const publish = (program: string) => t.redis.publish(programChannel(t.prefix), program);
  beforeAll(async () => {
    t = openTestStore('program-events');
    events = new ProgramEvents(t.redis.duplicate(), programChannel(t.prefix), LONG_RECHECK_MS);
    short = new ProgramEvents(t.redis.duplicate(), programChannel(t.prefix), SHORT_RECHECK_MS);
    await Promise.all([events.start(), short.start()]);
  });
  afterAll(async () => {
    await events.close();
    await short.close();
    await t.close();
  });

  /** Whether `p` settles within `ms`. */
  const settles = (p: Promise<void>, ms: number) =>
    Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  it("wakes every wait on a program at once (a cohort's polls), and none of another program", async () => {
    const cohort = Array.from({ length: 1000 }, () => events.arm('p1', LONG_RECHECK_MS));
    const other = events.arm('p2', LONG_RECHECK_MS);
    expect(events.waiting()).toBe(1001);
    const t0 = Date.now();
    await publish('p1');
    await Promise.all(cohort.map((w) => w.changed));
    // Woken by the event, long before the recheck timer would have ended them.
    expect(Date.now() - t0).toBeLessThan(LONG_RECHECK_MS / 2);
    expect(events.waiting()).toBe(1);
    expect(await settles(other.changed, 50)).toBe(false);
    other.end();
    expect(events.waiting()).toBe(0);
  });

  it('a wait armed by a woken poll waits for the next event', async () => {
    const first = events.arm('p3', LONG_RECHECK_MS);
    let again: ReturnType<ProgramEvents['arm']> | undefined;
    const rearmed = first.changed.then(() => (again = events.arm('p3', LONG_RECHECK_MS)));
    await publish('p3');
    await rearmed;
    expect(events.waiting()).toBe(1);
    expect(await settles(again!.changed, 100)).toBe(false);
    await publish('p3');
    expect(await settles(again!.changed, LONG_RECHECK_MS / 2)).toBe(true);
    expect(events.waiting()).toBe(0);
  });

  it('ends a wait by its timer (at most the recheck interval) or by end(), once', async () => {
    const t0 = Date.now();
    await short.arm('p4', 60).changed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(short.waiting()).toBe(0);

    const capped = short.arm('p4', 600_000);
    const ended = short.arm('p4', 600_000);
    expect(short.waiting()).toBe(2);
    ended.end();
    ended.end();
    expect(await settles(ended.changed, 10)).toBe(true);
    expect(short.waiting()).toBe(1);
    const t1 = Date.now();
    await capped.changed;
    // The recheck ended it: not the 600 s asked for. The margin is for a loaded machine's late timers.
    expect(Date.now() - t1).toBeGreaterThanOrEqual(SHORT_RECHECK_MS - 5);
    expect(Date.now() - t1).toBeLessThan(60_000);
    expect(short.waiting()).toBe(0);
  });
});
