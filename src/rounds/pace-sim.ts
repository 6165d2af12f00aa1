/**
 * A population of devices checking in on a virtual clock, against the check-in route's own pace steering:
 * each check-in is counted by {@link CheckinRateWindow} (the store's rate arithmetic), a device that gets no
 * task is answered by {@link retryWindow} with the need that {@link selectionNeed} computes from the
 * simulated rounds (through the route's {@link SelectionNeedMemo}), and it comes back at a uniformly random
 * time inside its window, as the SDK does. Rounds run one after another as the engine runs them: a round
 * selects `selection_target` devices, they work for a while and report (some drop out), the round closes at
 * `target` reports, finalizes, and the next round opens. Nothing sleeps: events wait in a binary heap.
 */
import type { PlanSummary, RoundInfo } from '../store/types';
import { selectionNeed, SelectionNeedMemo, type NeedPlans, type NeedStore } from '../api/selection-need';
import type { LoadedPlan } from './contracts';
import { retryWindow } from './pace';
import { CheckinRateWindow } from './pace-rate';
import { mulberry32 } from '../compute/shuffle';

/** What the simulation runs. */
export interface PaceSimOptions {
  readonly devices: number;
  readonly durationS: number;
  readonly targetClients: number;
  readonly overSelection: number;
  readonly selectionTimeoutS: number;
  readonly reportingDeadlineS: number;
  /** Seconds a selected device works before it uploads: uniform in `[min, max]`. */
  readonly workS: readonly [number, number];
  /** Probability that a selected device never uploads (it checks in again after its work time). */
  readonly dropout: number;
  /** Seconds from a round's close to the next round's opening (finalize). */
  readonly finalizeS: number;
  readonly minSeconds: number;
  readonly maxSeconds: number;
  readonly rateCap: number;
  /** Devices' first check-ins: uniform over `[0, firstCheckinS]`. */
  readonly firstCheckinS: number;
  /** Seeded uniform [0, 1). */
  readonly random: () => number;
}

/** One round attempt as it went. */
export interface SimRound {
  readonly round: number;
  readonly attempt: number;
  readonly openedAt: number;
  /** When the last slot was filled (ms), if it was. */
  filledAt?: number;
  closedAt?: number;
  outcome?: 'completed' | 'failed';
}

/** What the simulation saw. */
export interface PaceSimResult {
  /** Check-ins in each virtual second. */
  readonly perSecond: Int32Array;
  readonly rounds: readonly SimRound[];
  readonly checkins: number;
}

interface Event {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void | Promise<void>;
}

/**
 * The issue's population: 10,000 devices, rounds of 100 reports (130 selected) with a 60 s selection
 * timeout, work of 1 to 3 minutes with 10% dropping out, retry windows within [1, 600] s, a cap of 100
 * check-ins per second; the devices' first check-ins are spread over the longest window, as devices
 * paced before this server's first round would arrive. One hour of virtual time.
 */
export const TEN_THOUSAND_DEVICES: Omit<PaceSimOptions, 'random'> = {
  devices: 10_000,
  durationS: 3600,
  targetClients: 100,
  overSelection: 1.3,
  selectionTimeoutS: 60,
  reportingDeadlineS: 300,
  workS: [60, 180],
  dropout: 0.1,
  finalizeS: 10,
  minSeconds: 1,
  maxSeconds: 600,
  rateCap: 100,
  firstCheckinS: 600,
};

const PLAN = 'sim-plan';
/** Enough rounds that the plan never runs out inside a simulation. */
const ROUNDS = 1_000_000;

/** Runs the simulation to `durationS` of virtual time. */
export async function simulatePace(o: PaceSimOptions): Promise<PaceSimResult> {
  const target = o.targetClients;
  const selectionTarget = Math.max(target, Math.ceil(target * o.overSelection - 1e-9));
  const end = o.durationS * 1000;
  const perSecond = new Int32Array(o.durationS);
  const rounds: SimRound[] = [];
  const events = new EventHeap();
  const rate = new CheckinRateWindow();
  const memo = new SelectionNeedMemo();
  let checkins = 0;

  // The current round attempt, as the store would hold it.
  let info: RoundInfo;
  let current: SimRound;
  let holders = new Set<number>();

  const open = (round: number, attempt: number, now: number): void => {
    info = {
      round,
      attempt,
      phase: 'selecting',
      selection_target: selectionTarget,
      target,
      min_reports: target,
      min_aggregate: target,
      assigned: 0,
      reported: 0,
      rejected: 0,
      late: 0,
      accumulated: 0,
      aggregated_clients: 0,
      opened_at: now,
      secure_params: {} as RoundInfo['secure_params'], // plain sums: not read here
    };
    holders = new Set();
    current = { round, attempt, openedAt: now };
    rounds.push(current);
    const mine = current;
    events.push(now + o.selectionTimeoutS * 1000, () => {
      if (current !== mine || info.phase !== 'selecting') return;
      if (info.assigned >= info.min_reports) info = { ...info, phase: 'reporting' };
      else finish('failed', now + o.selectionTimeoutS * 1000);
    });
    events.push(now + o.reportingDeadlineS * 1000, () => {
      if (current !== mine || (info.phase !== 'selecting' && info.phase !== 'reporting')) return;
      finish(info.reported >= info.min_reports ? 'completed' : 'failed', now + o.reportingDeadlineS * 1000);
    });
  };

  const finish = (outcome: 'completed' | 'failed', now: number): void => {
    current.closedAt = now;
    current.outcome = outcome;
    info = { ...info, phase: 'closed' };
    const next = outcome === 'completed' ? info.round + 1 : info.round;
    const attempt = outcome === 'completed' ? 1 : info.attempt + 1;
    events.push(now + o.finalizeS * 1000, () => open(next, attempt, now + o.finalizeS * 1000));
  };

  const store: NeedStore = {
    getPlan: async (): Promise<PlanSummary> => ({
      id: PLAN,
      name: PLAN,
      population: 'sim',
      status: 'active',
      round: info.round,
      attempt: info.attempt,
      rounds: ROUNDS,
      created_at: 0,
      phase: info.phase,
    }),
    getRound: async () => info,
  };
  const loaded = {
    checked: {
      plan: {
        schedule: {
          rounds: ROUNDS,
          target_clients: target,
          over_selection: o.overSelection,
          selection_timeout_s: o.selectionTimeoutS,
          reporting_deadline_s: o.reportingDeadlineS,
        },
      },
    },
  } as unknown as LoadedPlan; // only the schedule is read
  const plans: NeedPlans = { get: async () => loaded };

  const checkin = async (device: number, now: number): Promise<void> => {
    checkins++;
    perSecond[Math.floor(now / 1000)]!++;
    const r = rate.record(now);
    // tryAssign: a selecting round with a free slot, one task per device and round attempt.
    if (info.phase === 'selecting' && info.assigned < info.selection_target && !holders.has(device)) {
      holders.add(device);
      const assigned = info.assigned + 1;
      info = { ...info, assigned, phase: assigned === info.selection_target ? 'reporting' : 'selecting' };
      if (assigned === info.selection_target) current.filledAt = now;
      const mine = current;
      const done = now + (o.workS[0] + o.random() * (o.workS[1] - o.workS[0])) * 1000;
      const uploads = o.random() >= o.dropout;
      events.push(done, () => {
        if (uploads && current === mine && info.phase === 'reporting') {
          info = { ...info, reported: info.reported + 1 };
          if (info.reported === info.target) finish('completed', done);
        }
        // The SDK's loop checks in again as soon as a task is over.
        return checkin(device, done);
      });
      return;
    }
    const need = await memo.get('sim', now, () => selectionNeed(store, plans, [PLAN], now));
    const w = retryWindow(
      {
        checkinRate: r,
        need: need.need,
        secondsUntilNeeded: need.secondsUntilNeeded,
        minSeconds: o.minSeconds,
        maxSeconds: o.maxSeconds,
        rateCap: o.rateCap,
      },
      o.random,
    );
    const at = now + (w.min_seconds + o.random() * (w.max_seconds - w.min_seconds)) * 1000;
    events.push(at, () => checkin(device, at));
  };

  open(1, 1, 0);
  for (let d = 0; d < o.devices; d++) {
    const at = o.random() * o.firstCheckinS * 1000;
    events.push(at, () => checkin(d, at));
  }
  for (let e = events.pop(); e && e.at < end; e = events.pop()) await e.run();
  return { perSecond, rounds, checkins };
}

/** A binary min-heap of events by time (ties in insertion order). */
class EventHeap {
  private readonly items: Event[] = [];
  private seq = 0;

  push(at: number, run: Event['run']): void {
    const items = this.items;
    items.push({ at, seq: this.seq++, run });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): Event | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && before(items[l]!, items[m]!)) m = l;
        if (r < items.length && before(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A small seeded PRNG (mulberry32), so that a simulation is reproducible. */
export function seededRandom(seed: number): () => number {
  return mulberry32(seed);
}
