/** What the simulated clients saw of each round attempt: counts only, like everything the server releases. */
import type { Assignment, RunOutcome } from '../client/types';

/** Client-side counts of one round attempt. */
export interface ClientTally {
  completed: number;
  dropped: number;
  /** Uploads the server refused as late (409 UPLOAD_LATE). */
  late: number;
  abandoned: number;
  /** Stragglers still holding their upload (task ids). */
  readonly holding: Set<string>;
  /** Tasks that failed with an error. */
  errors: number;
}

/** Counts client outcomes per round attempt (`n.a`). */
export class Tally {
  private readonly byRound = new Map<string, ClientTally>();
  private lastError: unknown;

  /** The counts of a round attempt (zeros when nothing was seen). */
  of(round: number, attempt: number): ClientTally {
    const key = `${round}.${attempt}`;
    let t = this.byRound.get(key);
    if (!t) {
      t = { completed: 0, dropped: 0, late: 0, abandoned: 0, holding: new Set(), errors: 0 };
      this.byRound.set(key, t);
    }
    return t;
  }

  /** A straggler starts holding its upload; it counts until its outcome (or failure) is recorded. */
  hold(a: Assignment): void {
    this.of(a.round, a.attempt).holding.add(a.task_id);
  }

  /** Records one outcome; retries and stateful programs' sessions are not counted (they are no round's). */
  record(o: RunOutcome): void {
    if (o.kind === 'retry' || o.kind === 'session') return;
    const t = this.of(o.assignment.round, o.assignment.attempt);
    t.holding.delete(o.assignment.task_id);
    t[o.kind]++;
  }

  /** Records a failed task (or a failed check-in, without an assignment). */
  error(e: unknown, a?: Assignment): void {
    this.lastError = e;
    if (!a) return;
    const t = this.of(a.round, a.attempt);
    t.holding.delete(a.task_id);
    t.errors++;
  }

  /** The most recent failure, for a message when every client fails. */
  get recentError(): unknown {
    return this.lastError;
  }
}
