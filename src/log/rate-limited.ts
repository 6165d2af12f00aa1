import type { Logger } from 'pino';

/** Options of {@link RateLimitedLog}. */
export interface RateLimitedLogOptions {
  /** At most one line per key in this many ms (default 30000). */
  readonly windowMs?: number;
  /** Default `Date.now`; tests pass their own. */
  readonly now?: () => number;
  /** Keys remembered at most (default 256); the oldest is forgotten first, so odd keys cannot grow it. */
  readonly maxKeys?: number;
}

/**
 * A logger for failures that repeat while a dependency is down (Redis unreachable: every connection and
 * every request fails the same way, many times a second): one line per distinct key per window, and the
 * next line of that key says how many were suppressed since the last (`suppressed`).
 */
export class RateLimitedLog {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(
    private readonly log: Logger,
    options: RateLimitedLogOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 256;
  }

  /** Logs at `level` unless `key` was logged within the window; answers whether it logged. */
  write(level: 'error' | 'warn' | 'info', key: string, fields: object, msg: string): boolean {
    const now = this.now();
    const entry = this.seen.get(key);
    if (entry && now - entry.at < this.windowMs) {
      entry.suppressed++;
      return false;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.seen.delete(key);
    this.seen.set(key, { at: now, suppressed: 0 });
    while (this.seen.size > this.maxKeys) this.seen.delete(this.seen.keys().next().value as string);
    this.log[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg);
    return true;
  }

  /** Forgets every key (a dependency came back: its next failure is news again). */
  reset(): void {
    this.seen.clear();
  }
}
