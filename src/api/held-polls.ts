/** Where the bounds report to (the API's metrics). */
export interface HeldPollsObserver {
  /** The number of held polls changed. */
  held(size: number): void;
  /** A poll was answered at once: its holder's bound or the process's was reached. */
  unheld(bound: 'holder' | 'process'): void;
}

/**
 * Bounds on the polls one API process holds (`?wait=` on a session's requests and on a task's SecAgg step).
 * A held poll costs the process a socket, a timer and about 10 KiB of heap for up to 30 s (bench/sessions.ts),
 * and the credential that opens one opens as many as its holder likes: without a bound, one device could
 * pin any number of them. So each holder (a session, a task) holds at most `perHolder` at once, the process
 * at most `total`, and a poll past either bound is answered at once, as a server that does not hold polls
 * answers it (clients then wait out their own interval: the SDK polls an early empty answer at most twice a
 * wait). Nothing is refused, so an honest client that meets the bound (a reconnect whose old poll the server
 * has not seen close yet) loses only the hold.
 */
export class HeldPolls {
  private readonly byHolder = new Map<string, number>();
  private held = 0;

  constructor(
    /** Polls one holder may have held at once. */
    readonly perHolder: number,
    /** Polls the process may hold at once. */
    readonly total: number,
    private readonly observer?: HeldPollsObserver,
  ) {}

  /** How many polls the process holds now. */
  get size(): number {
    return this.held;
  }

  /**
   * Takes a hold for `holder` (a session's or a task's id, namespaced by the caller); its release, which may
   * be called more than once, or undefined when a bound is reached and the poll is to be answered at once.
   */
  take(holder: string): (() => void) | undefined {
    const mine = this.byHolder.get(holder) ?? 0;
    if (mine >= this.perHolder || this.held >= this.total) {
      this.observer?.unheld(mine >= this.perHolder ? 'holder' : 'process');
      return undefined;
    }
    this.byHolder.set(holder, mine + 1);
    this.held += 1;
    this.observer?.held(this.held);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= 1;
      this.observer?.held(this.held);
      const left = (this.byHolder.get(holder) ?? 1) - 1;
      if (left > 0) this.byHolder.set(holder, left);
      else this.byHolder.delete(holder);
    };
  }
}

/** Polls one session or task may have held at once: one, and a reconnect's while the old one closes. */
export const HELD_POLLS_PER_HOLDER = 4;
