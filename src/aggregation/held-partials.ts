import { Interpreter } from '../compute/interpreter';
import type { Limits } from '../compute/limits';
import { disposeValue } from '../compute/value';
import type { LoadedPlan } from '../rounds/contracts';
import { newSecureSums, runSlot } from '../rounds/form-steps';
import { roundTag, type RoundInfo, type RoundRef, type RoundStore } from '../store/types';
import type { Held } from './fold';
import { decodePartial } from './partial';

/** Held partials idle this long are dropped from memory (their committed copy stays in Redis). */
const HELD_IDLE_MS = 60_000;
const HELD_MAX = 8;

/**
 * One aggregation worker's partials of the round attempts it works on, kept in memory between batches so
 * that a batch need not decode its partial from Redis; the committed copy in Redis stays the truth.
 */
export class HeldPartials {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly store: RoundStore,
    /** The worker id the partials are committed under. */
    private readonly worker: string,
    private readonly limits: Limits,
  ) {}

  /** This worker's partial of an attempt: in memory, else as last committed, else `zero`. */
  async get(ref: RoundRef, loaded: LoadedPlan, info: RoundInfo): Promise<Held> {
    const key = `${ref.plan}/${roundTag(ref)}`;
    const cached = this.held.get(key);
    if (cached) {
      cached.usedAt = Date.now();
      return cached;
    }
    const { checked } = loaded;
    const bytes = await this.store.getPartial(ref, this.worker);
    let held: Held;
    if (bytes) {
      const p = decodePartial(bytes, checked.types, info.secure_params);
      held = { acc: p.acc, sums: p.sums, clients: p.clients, usedAt: Date.now() };
    } else {
      const interpreter = new Interpreter(checked.plan.functions ?? {}, this.limits);
      held = {
        acc: runSlot(interpreter, checked.plan, 'zero', ref.round),
        sums: newSecureSums(checked, info.secure_params),
        clients: 0,
        usedAt: Date.now(),
      };
    }
    this.held.set(key, held);
    return held;
  }

  /** Forgets an attempt's partial (and disposes it), so that the next batch reloads it as committed. */
  drop(ref: RoundRef): void {
    const key = `${ref.plan}/${roundTag(ref)}`;
    const h = this.held.get(key);
    if (h) disposeValue(h.acc);
    this.held.delete(key);
  }

  /** Drops partials idle too long, and the least recently used beyond the most that are kept. */
  evictIdle(): void {
    const now = Date.now();
    const byAge = [...this.held.entries()].sort((a, b) => b[1].usedAt - a[1].usedAt);
    byAge.forEach(([key, h], i) => {
      if (i >= HELD_MAX || now - h.usedAt > HELD_IDLE_MS) {
        disposeValue(h.acc);
        this.held.delete(key);
      }
    });
  }

  /** Disposes every partial held. */
  clear(): void {
    for (const h of this.held.values()) disposeValue(h.acc);
    this.held.clear();
  }
}
