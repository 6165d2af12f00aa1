import { readBundle } from '../codec';
import { roundTag, type RoundRef, type RoundStore } from '../store/types';

/** Held partials idle this long, with nothing uncommitted, are dropped (their committed copy stays). */
const HELD_IDLE_MS = 60_000;
const HELD_MAX = 8;

/**
 * A worker's partial of one round attempt in memory: the partial as last folded (`encodePartial` bytes)
 * and, while it covers fewer than `min_clients_in_aggregate` clients in an open attempt, the uploads
 * folded into it but not committed, with their jobs still in hand (docs/server.md, "Commit threshold").
 */
export interface Held<J> {
  /** The folded partial (committed uploads plus `tasks`); undefined before anything was folded. */
  partial: Uint8Array | undefined;
  /** Uploads inside `partial`. */
  clients: number;
  /** Tasks folded into `partial` and not committed, in order. */
  tasks: string[];
  /** The jobs of `tasks` (a task redelivered while held may have two), acknowledged at commit. */
  jobs: J[];
  /** How many of `tasks` were rejected (counted in the round once committed). */
  rejected: number;
  usedAt: number;
}

/**
 * One aggregation worker's partials of the attempts it works on, so that a batch need not read its partial
 * from Redis, and so that uploads can be held until the partial may be committed. The committed copy in
 * Redis stays the truth: a partial dropped from here is read back from it.
 */
export class HeldPartials<J> {
  private readonly held = new Map<string, { ref: RoundRef; held: Held<J> }>();

  constructor(
    private readonly store: RoundStore,
    /** The worker id the partials are committed under. */
    private readonly worker: string,
  ) {}

  /** This worker's partial of an attempt: in memory, else as last committed, else empty. */
  async get(ref: RoundRef): Promise<Held<J>> {
    const key = keyOf(ref);
    const cached = this.held.get(key);
    if (cached) {
      cached.held.usedAt = Date.now();
      return cached.held;
    }
    const bytes = await this.store.getPartial(ref, this.worker);
    const held: Held<J> = {
      partial: bytes,
      clients: bytes ? Number(readBundle(bytes).metadata.clients ?? 0) : 0,
      tasks: [],
      jobs: [],
      rejected: 0,
      usedAt: Date.now(),
    };
    this.held.set(key, { ref, held });
    return held;
  }

  /** Forgets an attempt's partial and returns the jobs it held uncommitted (the caller settles them). */
  drop(ref: RoundRef): J[] {
    const key = keyOf(ref);
    const jobs = this.held.get(key)?.held.jobs ?? [];
    this.held.delete(key);
    return jobs;
  }

  /** The attempts with uploads folded but not committed. */
  holding(): RoundRef[] {
    return [...this.held.values()].filter((h) => h.held.tasks.length > 0).map((h) => h.ref);
  }

  /** Drops clean partials idle too long, and the least recently used clean ones beyond the most kept. */
  evictIdle(): void {
    const now = Date.now();
    const clean = [...this.held.entries()]
      .filter(([, h]) => h.held.tasks.length === 0)
      .sort((a, b) => b[1].held.usedAt - a[1].held.usedAt);
    clean.forEach(([key, h], i) => {
      if (i >= HELD_MAX || now - h.held.usedAt > HELD_IDLE_MS) this.held.delete(key);
    });
  }

  /** Every job held uncommitted, of every attempt, and forgets everything. */
  clear(): J[] {
    const jobs = [...this.held.values()].flatMap((h) => h.held.jobs);
    this.held.clear();
    return jobs;
  }
}

function keyOf(ref: RoundRef): string {
  return `${ref.plan}/${roundTag(ref)}`;
}
