/**
 * Wakes long polls when a program's requests or status change (docs/stateful.md, "The session protocol"):
 * the driver publishes the program's id on one channel, and each API process holds one subscriber and wakes
 * the polls waiting on that program. A message lost (a reconnect) costs a poll at most `RECHECK_MS` more:
 * every wait also ends by a timer, after which the route looks at Redis again.
 */
import { EventEmitter } from 'node:events';
import type { RedisClient } from '../../store/redis-client';

/** Longest a waiting poll goes without looking at Redis, whatever the channel says (ms). */
export const RECHECK_MS = 2000;

/** The channel of a store's program events. */
export function programChannel(prefix: string): string {
  return `${prefix}:programs:events`;
}

/** One subscriber per process, and the polls waiting on it (the API's side). */
export class ProgramEvents {
  private readonly emitter = new EventEmitter();
  private subscribed: Promise<unknown> | undefined;

  constructor(
    private readonly subscriber: RedisClient,
    private readonly channel: string,
  ) {
    // One listener per waiting poll: a thousand sessions of one program wait on one event name.
    this.emitter.setMaxListeners(0);
    this.subscriber.on('message', (channel: string, program: string) => {
      if (channel === this.channel) this.emitter.emit(program);
    });
  }

  /** Subscribes; a poll armed before this resolves may miss events for up to `RECHECK_MS`. */
  start(): Promise<unknown> {
    return (this.subscribed ??= this.subscriber.subscribe(this.channel));
  }

  /**
   * Arms a wait on program `id` now (so that an event published while the caller looks at Redis is not
   * missed); the promise resolves when the program changes, after `ms` (at most `RECHECK_MS`), or when
   * `signal` aborts.
   */
  arm(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    void this.start();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.emitter.off(id, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(ms, RECHECK_MS)));
      this.emitter.once(id, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Waiting polls (for tests and metrics). */
  waiting(): number {
    return this.emitter.eventNames().reduce((n, e) => n + this.emitter.listenerCount(e), 0);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
    this.subscriber.disconnect();
  }
}
