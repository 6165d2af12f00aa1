import type { Phase, RoundRef } from '../store/types';
import { PhaseWatch } from './phase-watch';

const REF: RoundRef = { plan: 'p1', round: 1, attempt: 1 };

describe('PhaseWatch', () => {
  it('wakes every waiter once the phase moves on, with one read per tick for all of them', async () => {
    let phase: Phase = 'selecting';
    let reads = 0;
    const watch = new PhaseWatch(async () => {
      reads++;
      return phase;
    }, 20);
    const never = new AbortController().signal;
    const waiting = Array.from({ length: 50 }, () =>
      watch.changed(REF, 'selecting', Date.now() + 30_000, never),
    );
    await new Promise((r) => setTimeout(r, 200));
    const before = reads;
    phase = 'sharing';
    expect(await Promise.all(waiting)).toEqual(Array(50).fill('sharing'));
    // 50 waiters over at least 200 ms of 20 ms ticks: one read per tick at most, not one per waiter.
    expect(before).toBeGreaterThan(0);
    expect(reads).toBeLessThan(50);
  });

  it('answers the phase it was given when the hold ends or the client goes away', async () => {
    const watch = new PhaseWatch(async () => 'reporting', 20);
    expect(await watch.changed(REF, 'reporting', Date.now() + 60, new AbortController().signal)).toBe(
      'reporting',
    );
    const gone = new AbortController();
    const held = watch.changed(REF, 'reporting', Date.now() + 30_000, gone.signal);
    gone.abort();
    expect(await held).toBe('reporting');
  });

  it('tells a gone attempt apart (undefined), and passes a failed read on', async () => {
    expect(
      await new PhaseWatch(async () => undefined, 10).changed(
        REF,
        'closed',
        Date.now() + 5_000,
        new AbortController().signal,
      ),
    ).toBeUndefined();
    const failing = new PhaseWatch(() => Promise.reject(new Error('redis down')), 10);
    await expect(
      failing.changed(REF, 'closed', Date.now() + 5_000, new AbortController().signal),
    ).rejects.toThrow('redis down');
  });
});
