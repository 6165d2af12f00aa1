import type { PlanCache } from '../rounds/contracts';
import { scheduleOf } from '../plan/schedule';
import type { RoundInfo, RoundStore } from '../store/types';

/** What the next selection of a population needs: the input of pace steering besides the check-in rate. */
export interface SelectionNeed {
  /** Clients the next selection needs. */
  readonly need: number;
  /** Seconds until they are needed; 0 if a round is selecting now. */
  readonly secondsUntilNeeded: number;
}

/** What {@link selectionNeed} reads of the store: narrow, so that a simulation can pass its own rounds. */
export type NeedStore = Pick<RoundStore, 'getPlan' | 'getRound'>;
/** What {@link selectionNeed} reads of the plan cache. */
export type NeedPlans = Pick<PlanCache, 'get'>;

/**
 * Works out what a population's plans need next, from the store:
 * - a round `selecting` needs its remaining slots (`selection_target - assigned`), now;
 * - a round `reporting` will be followed by a round of about the same selection target when it closes: at
 *   the latest at its reporting deadline, earlier if it reaches its target (see {@link expectedClose});
 *   nothing if it is the plan's last round;
 * - a round `closed`, `finalizing`, `completed` or `failed` is followed by a round (the next, or the same
 *   one again) in a moment.
 * Paused, cancelled, completed and failed plans need nobody. With several plans, needs add up and the
 * earliest time wins.
 */
export async function selectionNeed(
  store: NeedStore,
  plans: NeedPlans,
  planIds: readonly string[],
  now: number,
): Promise<SelectionNeed> {
  const parts = await Promise.all(planIds.map((id) => planNeed(store, plans, id, now)));
  let need = 0;
  let until = Infinity;
  for (const p of parts) {
    if (!p || p.need <= 0) continue;
    need += p.need;
    until = Math.min(until, p.secondsUntilNeeded);
  }
  return { need, secondsUntilNeeded: Number.isFinite(until) ? until : 0 };
}

async function planNeed(
  store: NeedStore,
  plans: NeedPlans,
  id: string,
  now: number,
): Promise<SelectionNeed | undefined> {
  const summary = await store.getPlan(id);
  if (!summary || summary.status !== 'active') return undefined;
  const round = await store.getRound({ plan: id, round: summary.round, attempt: summary.attempt });
  if (!round) return undefined;
  switch (round.phase) {
    case 'selecting':
      return { need: Math.max(0, round.selection_target - round.assigned), secondsUntilNeeded: 0 };
    case 'reporting': {
      if (summary.round >= summary.rounds) return undefined;
      const loaded = await plans.get(id);
      if (!loaded) return undefined;
      const left = (round.opened_at + scheduleOf(loaded.checked.plan).reportingDeadlineS * 1000 - now) / 1000;
      return {
        need: round.selection_target,
        secondsUntilNeeded: Math.max(0, Math.min(left, expectedClose(round, now))),
      };
    }
    case 'failed':
      return { need: round.selection_target, secondsUntilNeeded: 0 };
    default:
      // closed / finalizing / completed: the next round opens as soon as finalize is done.
      return summary.round >= summary.rounds
        ? undefined
        : { need: round.selection_target, secondsUntilNeeded: 0 };
  }
}

/**
 * Seconds until a reporting round is expected to reach its target, extrapolating linearly from the reports
 * so far. Before the first report it assumes the round needs as long again as it has run, so that clients
 * of a small population come back after geometrically growing pauses (a handful of check-ins per round)
 * rather than only at the deadline, which would idle every round whose clients finish early.
 */
export function expectedClose(
  round: Pick<RoundInfo, 'opened_at' | 'reported' | 'target'>,
  now: number,
): number {
  const elapsed = Math.max(0, (now - round.opened_at) / 1000);
  if (round.reported <= 0) return elapsed;
  return (elapsed * Math.max(0, round.target - round.reported)) / round.reported;
}

/**
 * A per-process memo of {@link selectionNeed} per population for `ttlMs`: rejected check-ins are the bulk
 * of the traffic, and the need changes slowly compared to the check-in rate. Bounded in size.
 */
export class SelectionNeedMemo {
  private readonly entries = new Map<string, { at: number; value: Promise<SelectionNeed> }>();

  constructor(
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  get(population: string, now: number, compute: () => Promise<SelectionNeed>): Promise<SelectionNeed> {
    const hit = this.entries.get(population);
    if (hit && now - hit.at < this.ttlMs && now >= hit.at) return hit.value;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    const value = compute();
    this.entries.set(population, { at: now, value });
    // A failed computation is not remembered.
    value.catch(() => this.entries.delete(population));
    return value;
  }
}
