import { LeaseLost } from './lease';
import { readBundle } from '../codec';
import { roundTag, type AggregationStore, type RoundRef } from '../store/types';

/** Held partials idle this long, with nothing uncommitted, are dropped (their committed copy stays). */
const HELD_IDLE_MS = 60_000;
const HELD_MAX = 8;

/**
 * A worker's partial of one round attempt in memory: the partial as last folded (`encodePartial` bytes)
 * and, while the clients folded since its last commit are fewer than `min_clients_in_aggregate` in an
 * open attempt, the uploads folded into it but not committed, with their jobs still in hand
 * (docs/server.md, "Commit threshold").
 */
export interface Held<J> {
  /** The folded partial (committed uploads plus `tasks`); undefined before anything was folded. */
  partial: Uint8Array | undefined;
  /** Uploads inside `partial`. */
  clients: number;
  /** Uploads inside the partial as last committed (in Redis); `clients - committed` are held. */
  committed: number;
  /** The held count last recorded in the round hash (`setHeld`); 0 when none is recorded. */
  recorded: number;
  /** Tasks folded into `partial` and not committed, in order. */
  tasks: string[];
  /** The jobs of `tasks` (a task redelivered while held may have two), acknowledged at commit. */
  jobs: J[];
  /** How many of `tasks` were rejected (counted in the round once committed). */
  rejected: number;
  /** How many of `tasks` had no upload left (gone; counted in the round's `dropped` once committed). */
  gone: number;
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
    private readonly store: AggregationStore,
    /** The worker id the partials are committed under. */
    private readonly worker: string,
    /** This process's lease epoch of the id (0: no lease, nothing fenced). */
    private readonly epoch: () => number = () => 0,
  ) {}

  /** This worker's partial of an attempt: in memory, else as last committed, else empty. */
  async get(ref: RoundRef): Promise<Held<J>> {
    const key = keyOf(ref);
    const cached = this.held.get(key);
    if (cached) {
      cached.held.usedAt = Date.now();
      return cached.held;
    }
    // Fenced first, read second: a stale holder of this id (one that lost the lease without noticing) can
    // no longer commit, so nothing it commits can be lost when this process's commit replaces the partial.
    const epoch = this.epoch();
    if (epoch > 0 && (await this.store.raiseFence(ref, this.worker, epoch)) > 0) {
      throw new LeaseLost(this.worker, 'another process holds the id with a later lease');
    }
    const bytes = await this.store.getPartial(ref, this.worker);
    const clients = bytes ? Number(readBundle(bytes).metadata.clients ?? 0) : 0;
    const held: Held<J> = {
      partial: bytes,
      clients,
      committed: clients,
      recorded: 0,
      tasks: [],
      jobs: [],
      rejected: 0,
      gone: 0,
      usedAt: Date.now(),
    };
    this.held.set(key, { ref, held });
    return held;
  }

  /**
   * Forgets an attempt's partial; returns the jobs it held uncommitted (the caller settles them) and the
   * held count it had recorded in the round hash (the caller clears it).
   */
  drop(ref: RoundRef): { jobs: J[]; recorded: number } {
    const key = keyOf(ref);
    const h = this.held.get(key)?.held;
    this.held.delete(key);
    return { jobs: h?.jobs ?? [], recorded: h?.recorded ?? 0 };
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

  /** Every attempt's held jobs and recorded held count (as {@link drop}), and forgets everything. */
  clear(): Array<{ ref: RoundRef; jobs: J[]; recorded: number }> {
    const all = [...this.held.values()].map(({ ref, held }) => ({
      ref,
      jobs: held.jobs,
      recorded: held.recorded,
    }));
    this.held.clear();
    return all;
  }
}

function keyOf(ref: RoundRef): string {
  return `${ref.plan}/${roundTag(ref)}`;
}
