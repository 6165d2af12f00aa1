/**
 * The population check-in rate that pace steering reads, as a pure in-memory window with the clock passed
 * in: the same arithmetic as `RedisRoundStore.recordCheckin` and its Lua script (`record-checkin.ts`), for
 * simulations that run a population on a virtual clock without a Redis round trip per check-in.
 * `test/pace-rate-parity.test.ts` runs one sequence of check-ins through both and requires equal rates.
 */

import { checkinRate } from '../store/checkin-rate';

/** Per-second check-in buckets over the last `windowS` seconds (the store's `CHECKIN_WINDOW_S`, 60). */
export class CheckinRateWindow {
  private readonly buckets = new Map<number, number>();

  constructor(private readonly windowS = 60) {}

  /** Counts a check-in at `now` (unix ms) and returns the rate over the window, this check-in included. */
  record(now: number): number {
    const second = Math.floor(now / 1000);
    this.buckets.set(second, (this.buckets.get(second) ?? 0) + 1);
    let count = 0;
    let oldest = second;
    for (const [s, c] of this.buckets) {
      if (s <= second - this.windowS) this.buckets.delete(s);
      else {
        count += c;
        if (s < oldest) oldest = s;
      }
    }
    return checkinRate(count, oldest, now, this.windowS);
  }
}
