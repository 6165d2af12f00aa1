/**
 * Every Redis key of the round server, and nothing else spells one (docs/server.md, "Redis keys").
 *
 * Every key of a plan carries the hash tag `{<planId>}`, so all of them hash to one Cluster slot and one Lua
 * script may touch several. Scripts that must reach keys they cannot list up front (a task's upload, a
 * worker's partial, the current round's hash) receive a key prefix built here and append an id to it; the
 * result shares the tag, hence the slot. The global keys (`plans`, `pop:*`) carry no plan's tag and never
 * meet plan keys inside one script.
 */
import { roundTag, type RoundRef } from './types';

/** The global keys, which live outside any plan's slot. */
export interface GlobalKeys {
  /** zset: plan ids by creation time (ms). */
  readonly plans: string;
  /**
   * set: ids of the plans published to a population. Tagged `{<population>}` with the population's rate,
   * so that one script reads the plans and counts a check-in (`record-checkin.ts`).
   */
  population(population: string): string;
  /** hash: check-in counts per unix second of a population. */
  populationRate(population: string): string;
  /** Prefix of the anonymous check-in rate limiter's keys (rate-limiter-flexible appends `:<key>`). */
  readonly checkinLimit: string;
  /**
   * string: the lease on an aggregation worker id, its holder's token, with a TTL (src/aggregation/lease.ts).
   * Tagged `{<id>}` so that it shares a slot with the id's epoch: the lease scripts touch both.
   */
  workerLease(id: string): string;
  /** counter: the worker id's lease epoch, raised by every acquisition of the lease (fencing). */
  workerEpoch(id: string): string;
  /** set: ids of the plans whose `sweep` set may be non-empty (store.sweep() finds them here). */
  readonly sweeping: string;
  /** zset: stateful program ids by creation time (ms). */
  readonly programs: string;
  /** set: ids of the programs that are recruiting or running (the drivers' work list). */
  readonly activePrograms: string;
  /** set: ids of the programs recruiting in a population (check-in reads it). */
  populationPrograms(population: string): string;
}

/** The keys of one stateful program (docs/stateful.md), all tagged `{p.<id>}`: one slot. */
export interface ProgramKeys {
  /** string: the program document. */
  readonly doc: string;
  /** hash: status, step, cohort counts, deadlines, outputs, error. */
  readonly meta: string;
  /** list: the requests issued to the cohort, JSON, in seq order (seq = index + 1). */
  readonly requests: string;
  /** hash: `<session>:<field>` -> the session's device, status, answered seq, last contact, reason. */
  readonly sessions: string;
  /** hash: device -> its session id. */
  readonly devices: string;
  /** hash: server value name -> its bundle. */
  readonly values: string;
  /** hash: aggregate step index -> the id of the plan that runs it. */
  readonly aggregations: string;
  /** string: the driver's lock, its holder's token, with a TTL. */
  readonly lock: string;
}

/** The keys of one plan. */
export interface PlanKeys {
  readonly plan: string;
  readonly meta: string;
  readonly state: string;
  readonly history: string;
  /**
   * What a round attempt's hash key is once `n.a` is appended, for scripts that read the current round from
   * `meta` (try-assign); `round(ref)` is the same string with the tag.
   */
  readonly roundPrefix: string;
  /** list: `n.a` of the attempts whose broadcast is kept, oldest first (RETAIN_BROADCASTS of them). */
  readonly broadcasts: string;
  /** set: `n.a` of the finished attempts whose moved-away tasks and partials still await the sweep. */
  readonly sweep: string;
}

/** The keys of one round attempt. */
export interface RoundKeys {
  readonly round: string;
  readonly broadcast: string;
  readonly tasks: string;
  /** set: HMAC(round key, device id) of every device holding a task of the attempt (until it leaves reporting). */
  readonly devices: string;
  readonly covered: string;
  readonly partials: string;
  /** A task's queued upload is `uploadPrefix + task`. */
  readonly uploadPrefix: string;
  /** A worker's partial is `partialPrefix + worker`. */
  readonly partialPrefix: string;
  upload(task: string): string;
  /**
   * Where an upload's bytes are staged by a plain SET in the MULTI that runs accept-upload, which renames
   * them to `upload(task)` or deletes them: Redis copies a large script argument slowly, a SET quickly.
   * Expires after a minute should a transaction be cut short (NOSCRIPT, see LuaScript.runAfter).
   */
  incoming(task: string): string;
  partial(worker: string): string;
  /**
   * Where a finished attempt's tasks hash and partials set are moved (RENAME, O(1)) so that the sweep can
   * delete them and the uploads and partials they name in bounded steps, outside Lua.
   */
  readonly garbage: { readonly tasks: string; readonly partials: string };
  /** The attempt's secure-aggregation state (docs/server.md, "Secure aggregation"), deleted with the attempt. */
  readonly secagg: SecAggKeys;
}

/**
 * The keys of one attempt's SecAgg+ exchange. Indexes are cohort positions 0..n-1 (order of advertising).
 * Nothing here is a client's secure-sum value: public keys, ciphertexts, and shares that only the finalizer
 * combines, one kind per client (a survivor's self-mask seed or a dropped client's mask key, never both).
 */
export interface SecAggKeys {
  /** hash: task -> cohort index. */
  readonly index: string;
  /** list: the public keys `c.s` (base64url) of cohort index i at position i. */
  readonly keys: string;
  /** set: indexes that sent their encrypted shares (U2). */
  readonly shared: string;
  /** set: indexes whose masked upload was accepted (U3). */
  readonly uploaded: string;
  /** set: indexes that answered the unmasking request (U4). */
  readonly answered: string;
  /** hash: `<to>:<from>` -> the share ciphertext from `from` to `to` (base64url). */
  readonly inbox: string;
  /** hash: `<of>:<by>` -> `b:` or `s:` and the share of `of`'s secret given by `by` (base64url). */
  readonly unmask: string;
}

/** The part each SecAgg key appends to the attempt's hash key (complete and fail delete them from Lua). */
export const SECAGG_SUFFIXES = {
  index: ':sa:index',
  keys: ':sa:keys',
  shared: ':sa:shared',
  uploaded: ':sa:uploaded',
  answered: ':sa:answered',
  inbox: ':sa:inbox',
  unmask: ':sa:unmask',
} as const satisfies Record<keyof SecAggKeys, string>;

/** The part a round attempt's sub-keys append to its hash key; try-assign needs the tasks one from Lua. */
export const ROUND_SUFFIX = {
  broadcast: ':broadcast',
  tasks: ':tasks',
  devices: ':devices',
  covered: ':covered',
  partials: ':partials',
  upload: ':upload:',
  incoming: ':incoming:',
  partial: ':partial:',
} as const;

/** Builds the keys of a store whose every key starts with `prefix:`. */
export class Keys {
  readonly global: GlobalKeys;

  constructor(readonly prefix: string) {
    if (!prefix || /[{}\s]/.test(prefix)) {
      // A brace in the prefix would become the hash tag instead of the plan id and break slot locality.
      throw new Error(`Redis prefix must be non-empty without braces or spaces, got "${prefix}"`);
    }
    this.global = {
      plans: `${prefix}:plans`,
      population: (population) => `${prefix}:pop:{${population}}`,
      populationRate: (population) => `${prefix}:pop:{${population}}:rate`,
      checkinLimit: `${prefix}:limit:checkin`,
      workerLease: (id) => `${prefix}:worker:{${id}}`,
      workerEpoch: (id) => `${prefix}:worker:{${id}}:epoch`,
      sweeping: `${prefix}:sweeping`,
      programs: `${prefix}:programs`,
      activePrograms: `${prefix}:programs:active`,
      populationPrograms: (population) => `${prefix}:pop:{${population}}:programs`,
    };
  }

  /** The glob that matches every key of the store (for `SCAN` in `clear`), with glob characters escaped. */
  get pattern(): string {
    return `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}:*`;
  }

  /** The keys of a plan. */
  plan(id: string): PlanKeys {
    const base = `${this.prefix}:{${id}}`;
    return {
      plan: `${base}:plan`,
      meta: `${base}:meta`,
      state: `${base}:state`,
      history: `${base}:history`,
      roundPrefix: `${base}:r:`,
      broadcasts: `${base}:broadcasts`,
      sweep: `${base}:sweep`,
    };
  }

  /** The keys of a stateful program. */
  program(id: string): ProgramKeys {
    const base = `${this.prefix}:{p.${id}}`;
    return {
      doc: `${base}:doc`,
      meta: `${base}:meta`,
      requests: `${base}:requests`,
      sessions: `${base}:sessions`,
      devices: `${base}:devices`,
      values: `${base}:values`,
      aggregations: `${base}:aggs`,
      lock: `${base}:lock`,
    };
  }

  /** The glob that matches every key of one plan (for `SCAN` in `deletePlan`), escaped like `pattern`. */
  planPattern(id: string): string {
    return `${this.pattern.slice(0, -1)}{${id}}:*`;
  }

  /** The keys of a round attempt. */
  round(ref: RoundRef): RoundKeys {
    const round = `${this.plan(ref.plan).roundPrefix}${roundTag(ref)}`;
    const garbage = `${this.prefix}:{${ref.plan}}:gc:${roundTag(ref)}`;
    const uploadPrefix = `${round}${ROUND_SUFFIX.upload}`;
    const partialPrefix = `${round}${ROUND_SUFFIX.partial}`;
    return {
      round,
      broadcast: `${round}${ROUND_SUFFIX.broadcast}`,
      tasks: `${round}${ROUND_SUFFIX.tasks}`,
      devices: `${round}${ROUND_SUFFIX.devices}`,
      covered: `${round}${ROUND_SUFFIX.covered}`,
      partials: `${round}${ROUND_SUFFIX.partials}`,
      uploadPrefix,
      partialPrefix,
      upload: (task) => `${uploadPrefix}${task}`,
      incoming: (task) => `${round}${ROUND_SUFFIX.incoming}${task}`,
      partial: (worker) => `${partialPrefix}${worker}`,
      garbage: { tasks: `${garbage}:tasks`, partials: `${garbage}:partials` },
      secagg: Object.fromEntries(
        Object.entries(SECAGG_SUFFIXES).map(([name, suffix]) => [name, `${round}${suffix}`]),
      ) as unknown as SecAggKeys,
    };
  }
}
