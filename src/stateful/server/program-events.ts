/**
 * Wakes long polls when a program's requests or status change (docs/stateful.md, "The session protocol"):
 * the driver publishes the program's id on one channel, and each API process holds one subscriber and wakes
 * the polls waiting on that program. A message lost (a reconnect) costs a poll at most `RECHECK_MS` more:
 * every wait also ends by a timer, after which the route looks at Redis again.
 *
 * A cohort's polls wake together (a thousand on one message), so the costs here are per poll and flat:
 * a set of waits per program (an EventEmitter's listener array made each removal a scan of the others),
 * and a wait ended by a plain call (an AbortSignal made an event and a DOMException per poll), measured by
 * bench/sessions.ts.
 */
import type { RedisClient } from '../../store/redis-client';

/** Longest a waiting poll goes without looking at Redis, whatever the channel says (ms). */
export const RECHECK_MS = 2000;

/** The channel of a store's program events. */
export function programChannel(prefix: string): string {
  return `${prefix}:programs:events`;
}

/** One poll's wait on a program, armed before the poll looks at Redis. */
export interface ProgramWait {
  /** Resolves when the program changes, when the wait's timer runs out, or on `end()`. */
  readonly changed: Promise<void>;
  /** Ends the wait now (the poll answered, or its client went away); idempotent. */
  end(): void;
}

/** One subscriber per process, and the polls waiting on it (the API's side). */
export class ProgramEvents {
  /** Each program's waits; a program's entry goes when its last wait ends. */
  private readonly waits = new Map<string, Set<() => void>>();
  private subscribed: Promise<unknown> | undefined;

  /** `recheckMs` is `RECHECK_MS` but in tests, which tell a wake by the event from one by the timer. */
  constructor(
    private readonly subscriber: RedisClient,
    private readonly channel: string,
    private readonly recheckMs = RECHECK_MS,
  ) {
    this.subscriber.on('message', (channel: string, program: string) => {
      if (channel === this.channel) this.wake(program);
    });
  }

  /** Subscribes; a poll armed before this resolves may miss events for up to `RECHECK_MS`. */
  start(): Promise<unknown> {
    return (this.subscribed ??= this.subscriber.subscribe(this.channel));
  }

  /**
   * Arms a wait on program `id` now (so that an event published while the caller looks at Redis is not
   * missed); it ends when the program changes, after `ms` (at most the recheck interval), or by `end()`.
   */
  arm(id: string, ms: number): ProgramWait {
    void this.start();
    let resolve!: () => void;
    const changed = new Promise<void>((r) => (resolve = r));
    let waits = this.waits.get(id);
    if (!waits) this.waits.set(id, (waits = new Set()));
    const end = (): void => {
      clearTimeout(timer);
      const current = this.waits.get(id);
      // After a wake the program's set is gone (or a new one holds the re-armed waits, not this one).
      if (current?.delete(end) && current.size === 0) this.waits.delete(id);
      resolve();
    };
    const timer = setTimeout(end, Math.max(0, Math.min(ms, this.recheckMs)));
    waits.add(end);
    return { changed, end };
  }

  /** Waiting polls (for tests and metrics). */
  waiting(): number {
    let n = 0;
    for (const waits of this.waits.values()) n += waits.size;
    return n;
  }

  async close(): Promise<void> {
    // The waits end by their timers; the polls then look at Redis once more.
    this.waits.clear();
    this.subscriber.disconnect();
  }

  /** Ends every wait on `program`: the set is taken first, so waits armed by the woken polls wait anew. */
  private wake(program: string): void {
    const waits = this.waits.get(program);
    if (!waits) return;
    this.waits.delete(program);
    for (const end of waits) end();
  }
}
