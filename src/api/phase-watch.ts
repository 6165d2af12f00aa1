/**
 * Held SecAgg polls (`GET /v1/tasks/{task}/secagg?wait=`) wait for their round attempt's phase to move on:
 * every `wait` answer of the exchange lasts until the phase changes (selection ends, sharing ends, reporting
 * closes). A process reads each watched attempt's phase at most once per tick, however many of its polls
 * wait on that attempt, so a cohort's held polls cost Redis one read per tick, not one each.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Phase, RoundRef } from '../store/types';

/** How often a held poll looks at its attempt's phase (ms). */
const TICK_MS = 100;
/** Reads kept past this many are swept of those older than a second. */
const SWEEP_AT = 1024;

export class PhaseWatch {
  private readonly reads = new Map<
    string,
    { readonly at: number; readonly phase: Promise<Phase | undefined> }
  >();

  constructor(
    private readonly read: (ref: RoundRef) => Promise<Phase | undefined>,
    private readonly tickMs = TICK_MS,
  ) {}

  /**
   * Resolves with the attempt's phase once it is no longer `seen` (undefined: the attempt is gone), or with
   * `seen` when `until` (unix ms, real time) passes or `signal` aborts first.
   */
  async changed(ref: RoundRef, seen: Phase, until: number, signal: AbortSignal): Promise<Phase | undefined> {
    for (;;) {
      const left = until - Date.now();
      if (left <= 0 || signal.aborted) return seen;
      try {
        await sleep(Math.min(this.tickMs, left), undefined, { signal });
      } catch {
        return seen; // aborted: the client went away
      }
      const phase = await this.phaseOf(ref);
      if (phase !== seen) return phase;
    }
  }

  /** One read per attempt per half tick, shared by every poll that asks meanwhile. */
  private phaseOf(ref: RoundRef): Promise<Phase | undefined> {
    const key = `${ref.plan}:${ref.round}:${ref.attempt}`;
    const now = Date.now();
    const hit = this.reads.get(key);
    if (hit && now - hit.at < this.tickMs / 2) return hit.phase;
    const phase = this.read(ref);
    this.reads.set(key, { at: now, phase });
    if (this.reads.size > SWEEP_AT) {
      for (const [k, r] of this.reads) if (now - r.at > 1000) this.reads.delete(k);
    }
    return phase;
  }
}
