/**
 * The data model of the round server as the API, the round engine and the workers see it. Implemented on
 * Redis by `RedisRoundStore` (keys in `keys.ts`, atomic steps as Lua scripts in `scripts/`); see
 * docs/server.md for the layout and the phase diagram.
 */
import type { SecAggSetup } from '../secagg/setup';

/** A round attempt's phase. */
export type Phase = 'selecting' | 'sharing' | 'reporting' | 'closed' | 'finalizing' | 'completed' | 'failed';

/** The deadlines of an attempt: selection, SecAgg's key sharing (R1), reporting. */
export type DeadlineKind = 'selection' | 'sharing' | 'reporting';

/** A plan's status. */
export type PlanStatus = 'active' | 'paused' | 'cancelled' | 'completed' | 'failed';

/** One attempt of one round of one plan. */
export interface RoundRef {
  readonly plan: string;
  readonly round: number;
  readonly attempt: number;
}

/** `n.a`, the form a round attempt takes in keys, job ids and URLs. */
export function roundTag(ref: Pick<RoundRef, 'round' | 'attempt'>): string {
  return `${ref.round}.${ref.attempt}`;
}

/** Parses `n.a`; undefined when malformed. */
export function parseRoundTag(tag: string): { round: number; attempt: number } | undefined {
  const m = /^([1-9][0-9]{0,8})\.([1-9][0-9]{0,8})$/.exec(tag);
  return m ? { round: Number(m[1]), attempt: Number(m[2]) } : undefined;
}

/** What the operator API shows of a plan. */
export interface PlanSummary {
  readonly id: string;
  readonly name: string;
  readonly population: string;
  readonly status: PlanStatus;
  /** The current round number (the one open or being finalized); after the last round, `rounds`. */
  readonly round: number;
  readonly attempt: number;
  readonly rounds: number;
  readonly created_at: number;
  /** The current round attempt's phase, if one exists. */
  readonly phase?: Phase;
  /** Why the plan failed (status `failed`): the round that used up its attempts and its last error. */
  readonly error?: string;
  /** Why a plan completed before its last round (status `completed`): its privacy budget. */
  readonly reason?: string;
  /** A plan with a dp section: the privacy it has spent, charged atomically with each completed round. */
  readonly dp?: PlanPrivacy;
}

/** The privacy a dp plan has spent (docs/server.md, "Differential privacy"). */
export interface PlanPrivacy {
  /**
   * epsilon spent by the completed rounds, at `delta`, under `accounting`: Infinity when the plan adds no
   * noise (z = 0), which JSON answers show as null.
   */
  readonly epsilon: number;
  readonly delta: number;
  /** The most the plan may spend; absent when it only tracks its spending. */
  readonly target_epsilon?: number;
  readonly accounting: 'no-amplification' | 'subsampled';
  readonly noise_multiplier: number;
  /** Rounds charged: every completed round. */
  readonly rounds: number;
  /** The clip norm of the next round (it changes each round with adaptive clipping). */
  readonly clip: number;
}

/** What a dp plan stores at creation: the fixed part of its privacy record and the first round's clip. */
export type NewPlanPrivacy = Omit<PlanPrivacy, 'epsilon' | 'rounds'>;

/** What a completed round of a dp plan charges, stored atomically with the completion. */
export interface RoundPrivacy {
  /** epsilon spent by the plan after this round. */
  readonly epsilon: number;
  /** The next round's clip. */
  readonly nextClip: number;
  /** Adaptive clipping: the noisy fraction of clients whose record was within the clip. */
  readonly unclippedFraction?: number;
}

/** What the operator API shows of a round attempt: counts and the released output, nothing per client. */
export interface RoundInfo {
  readonly round: number;
  readonly attempt: number;
  readonly phase: Phase;
  readonly selection_target: number;
  readonly target: number;
  readonly min_reports: number;
  readonly min_aggregate: number;
  readonly assigned: number;
  readonly reported: number;
  readonly rejected: number;
  readonly late: number;
  readonly accumulated: number;
  readonly aggregated_clients: number;
  readonly opened_at: number;
  readonly reporting_at?: number;
  readonly closed_at?: number;
  readonly finished_at?: number;
  /**
   * The selection timeout and the reporting deadline (unix ms): set at open, moved later by a resume by
   * the time the plan was paused. The deadline script compares them with the time, so a stale deadline
   * job does nothing.
   */
  readonly selection_deadline?: number;
  readonly reporting_deadline?: number;
  /** SecAgg: when selection ended (the cohort was fixed) and until when the cohort may share keys (R1). */
  readonly sharing_at?: number;
  readonly sharing_deadline?: number;
  /** SecAgg: until when the survivors may send their unmasking shares (R3), set when reporting closes. */
  readonly unmasking_deadline?: number;
  /**
   * SecAgg, for attempts that run it: the protocol and how many clients got through each step (the cohort
   * that advertised keys, those that shared them, those that answered the unmasking request).
   */
  readonly secure_aggregation?: {
    readonly protocol: 'secagg+' | 'secagg';
    readonly advertised: number;
    readonly shared: number;
    readonly unmasked: number;
  };
  /**
   * A dp plan's attempt: the clip norm its uploads were clipped to; once completed, the plan's epsilon spent
   * after it, the next round's clip and (adaptive clipping) the noisy fraction of unclipped clients.
   */
  readonly dp?: {
    readonly clip: number;
    readonly epsilon?: number;
    readonly next_clip?: number;
    readonly unclipped_fraction?: number;
  };
  /** The server output X as JSON, once completed. */
  readonly output?: unknown;
  /** Why the attempt failed. */
  readonly error?: string;
  /** Secure-sum parameters per kind, one number per tensor of V1, V2, V3. */
  readonly secure_params: {
    readonly bitwidth: number[];
    readonly max_input: number[];
    readonly modulus: number[];
  };
}

/** What opening a round attempt stores. */
export interface NewRound {
  readonly ref: RoundRef;
  readonly broadcast: Uint8Array;
  readonly selectionTarget: number;
  readonly target: number;
  readonly minReports: number;
  readonly minAggregate: number;
  readonly secureParams: RoundInfo['secure_params'];
  readonly now: number;
  /** The attempt's selection timeout and reporting deadline (unix ms), stored with it. */
  readonly deadlines?: { readonly selection: number; readonly reporting: number };
  /** When set, the attempt could not open (prepare or the secure-sum parameters failed): stored failed. */
  readonly error?: string;
  /** A dp plan's attempt: the clip norm of its uploads. */
  readonly dpClip?: number;
  /** When the attempt masks its secure sums: its SecAgg setup and the exchange's timeouts. */
  readonly secagg?: {
    readonly setup: SecAggSetup;
    readonly timeoutsMs: { readonly sharing: number; readonly unmasking: number };
    /** When the exchange's keys expire should complete or fail not delete them (unix ms). */
    readonly expiresAt: number;
  };
}

/** What a check-in learns of its population (see `RoundStore.recordCheckin`). */
export interface PopulationCheckin {
  /** Ids of the plans published to the population. */
  readonly plans: string[];
  /** Check-ins per second over the window, this one included. */
  readonly rate: number;
}

/** The result of trying to assign a task in a plan's current round. */
export type AssignResult =
  | {
      readonly ok: true;
      readonly ref: RoundRef;
      readonly task: string;
      /** HMAC(round key, device id): the device's binding in this attempt, for the task token. */
      readonly device: string;
      readonly openedAt: number;
      /** The attempt's current reporting deadline (unix ms), when stored (a resume moves it later). */
      readonly reportingDeadline?: number;
    }
  | {
      readonly ok: false;
      /**
       * `device_assigned`: the device already uploaded for the current attempt (a device holding a task it has
       * not uploaded gets that task again); `served`: the device says
       * it already uploaded to the plan's current round (the check-in's `served` hint).
       */
      readonly reason: 'not_active' | 'not_selecting' | 'full' | 'device_assigned' | 'served';
    };

/** The result of recording an upload. */
/** What `acceptUpload` may be given besides the upload. */
export interface AcceptOptions {
  /** The bytes the workers fold, when they differ from the bytes as sent (an update clipped to bounds). */
  readonly stored?: Uint8Array;
  /** The attempt's round key as the caller read it (undefined: gone); read by the store when absent. */
  readonly roundKey?: string | undefined;
}

export type AcceptResult =
  | {
      readonly ok: true;
      /** This upload made reported == target and closed the round. */ readonly closed: boolean;
    }
  | {
      readonly ok: false;
      readonly code:
        | 'UPLOAD_LATE'
        | 'UPLOAD_DUPLICATE'
        | 'TOKEN_REUSED'
        | 'BUSY'
        | 'TASK_UNKNOWN'
        | 'SECAGG_TOO_EARLY'
        | 'SECAGG_NOT_IN_COHORT';
    };

/** The result of committing a worker's partial. */
export type CommitResult =
  | {
      readonly ok: true;
      /** The round is closed and every reported upload is now accumulated. */ readonly ready: boolean;
    }
  | {
      readonly ok: false;
      /**
       * Tasks of the batch that cannot be accumulated: already covered by some committed partial, or with no
       * accepted upload. The worker drops them (acknowledging their jobs) and redoes the batch without them.
       */
      readonly conflicts: string[];
      /**
       * The attempt takes no more partials (finalizing, completed, failed or missing): `conflicts` is then the
       * whole batch, and the worker discards its in-memory partial for this attempt.
       */
      readonly stale?: boolean;
      /**
       * The worker id committed to this attempt with a higher lease epoch: this process lost the id's lease
       * (src/aggregation/lease.ts) and must stop committing. `conflicts` is then the whole batch.
       */
      readonly fenced?: boolean;
    };

/** What a commit records besides its tasks and partial. */
export interface CommitExtras {
  /** How many of the tasks had no upload left (gone): covered, inside no partial. Default 0. */
  readonly gone?: number;
  /** The committing process's lease epoch of the worker id; 0 (default) for a caller without a lease. */
  readonly epoch?: number;
}

/** The counts finalize checks the partials against (docs/server.md, "Worker leases"). */
/** A queued upload as a worker reads it: covered by a committed partial already, or its bytes (if still held). */
export type QueuedUpload =
  | { readonly task: string; readonly covered: true }
  | { readonly task: string; readonly covered: false; readonly bytes: Uint8Array | undefined };

export interface AggregationCounts {
  /** Uploads covered by committed partials. */
  readonly accumulated: number;
  /** Covered uploads inside no partial: rejected by a worker, or gone. */
  readonly dropped: number;
}
/** What `deletePlan` did: deleted `keys` keys, found no plan, or refused an open (active or paused) plan. */
export type DeleteResult =
  | { readonly outcome: 'deleted'; readonly keys: number }
  | { readonly outcome: 'unknown' }
  | { readonly outcome: 'open'; readonly status: 'active' | 'paused' };

/** Round-closing transitions decided by deadlines or by the finalizer. */
/** What `RoundStore.reindex` changed. */
export type ReindexOutcome = 'in-line' | 'listed' | 'unlisted' | 'forgotten' | 'pending';

export type TransitionResult = { readonly changed: boolean; readonly phase: Phase };

/** What the deadline script decided (src/store/scripts/deadline.ts). */
export type DeadlineResult =
  /** Not the plan's current attempt, or the plan is not active or paused: nothing to do. */
  | { readonly outcome: 'stale' }
  /** The plan is paused and the attempt open: its clock stands still until resumed. */
  | { readonly outcome: 'paused' }
  /** The stored deadline (moved by a resume) is still ahead: ask again at `at`. */
  | { readonly outcome: 'not_yet'; readonly at: number }
  /** SecAgg: selecting -> sharing (enough clients advertised keys); the sharing deadline is `at`. */
  | { readonly outcome: 'sharing'; readonly advertised: number; readonly at: number }
  /** selecting -> reporting (enough clients assigned), or SecAgg: sharing -> reporting (`assigned`: shared). */
  | { readonly outcome: 'reporting'; readonly assigned: number }
  /** reporting -> closed (enough reports). */
  | { readonly outcome: 'closed'; readonly reported: number }
  /** Too few clients: the attempt failed with `error`, its data discarded. */
  | { readonly outcome: 'failed'; readonly error: string }
  /** Nothing of this deadline's to decide in `phase` (already past it). */
  | { readonly outcome: 'none'; readonly phase: Phase };

/** Plans: their JSON, state, status and the population index (the API plan routes, the engine). */
export interface PlanStore {
  /** Stores a validated plan with its initial state and makes it the population's; the engine opens round 1. */
  createPlan(plan: {
    readonly id: string;
    readonly json: string;
    readonly name: string;
    readonly population: string;
    readonly rounds: number;
    readonly state: Uint8Array;
    readonly now: number;
    readonly dp?: NewPlanPrivacy;
  }): Promise<void>;
  listPlans(): Promise<PlanSummary[]>;
  getPlan(id: string): Promise<PlanSummary | undefined>;
  /** The plan JSON as stored. */
  getPlanJson(id: string): Promise<string | undefined>;
  /** The current server state bundle. */
  getState(id: string): Promise<Uint8Array | undefined>;
  /**
   * Sets the status when the transition is allowed (active<->paused, any open -> cancelled); returns the new
   * summary or undefined if not allowed. In the same atomic step: a pause records when; a resume moves the
   * current attempt's deadlines later by the time paused; a cancel fails the current attempt unless it is
   * completed or failed, so nothing of it is released (Lua).
   */
  setStatus(
    id: string,
    to: 'active' | 'paused' | 'cancelled',
    now?: number,
  ): Promise<PlanSummary | undefined>;
  /** active | paused -> failed with a reason (the plan used up a round's attempts); false if not allowed. */
  failPlan(id: string, error: string): Promise<boolean>;
  /**
   * active | paused -> completed with a reason, before its last round (its next round would spend more privacy
   * than its target); false if not allowed.
   */
  stopPlan(id: string, reason: string): Promise<boolean>;
  /** Plan ids published to a population. */
  plansOf(population: string): Promise<string[]>;
  /**
   * One page of every plan id (ZSCAN of the plans index from `cursor`, '0' to start); the next cursor is
   * '0' at the end. Ids may repeat across pages.
   */
  planPage(cursor: string, count: number): Promise<{ readonly cursor: string; readonly ids: string[] }>;
  /**
   * Brings the global indexes back in line with plan `id`'s own keys, which live in another slot and so
   * change in separate steps (docs/server.md, "Redis Cluster"): an active or paused plan is in its
   * population's set, a finished one is not, and an id in the plans index whose plan was never written (its
   * creator died in between) leaves the index once it is older than `orphanMs`. What it changed.
   */
  reindex(id: string, now: number, orphanMs?: number): Promise<ReindexOutcome>;
}

/** Round attempts as everyone reads them, and the opening of one (the engine). */
export interface RoundReads {
  /** Opens a round attempt in `selecting` (idempotent: does nothing if that attempt exists) and makes it current. */
  openRound(round: NewRound): Promise<boolean>;
  getRound(ref: RoundRef): Promise<RoundInfo | undefined>;
  /** Only the attempt's phase (one field, for pollers); undefined when the attempt does not exist. */
  getPhase(ref: RoundRef): Promise<Phase | undefined>;
  /** Every attempt of a plan, oldest first. */
  listRounds(plan: string): Promise<RoundInfo[]>;
  getBroadcast(ref: RoundRef): Promise<Uint8Array | undefined>;
}

/** What a device's requests read and change: check-in, assignment, the upload's accept (the API). */
export interface ClientStore {
  /**
   * A check-in's read of its population, in one step: the plans published to it and, when there is one,
   * the check-in recorded for pace steering with the population's check-ins per second over the window
   * (0, and nothing recorded, for a population without plans).
   */
  recordCheckin(population: string, now: number): Promise<PopulationCheckin>;
  /**
   * Assigns a task to a device in the plan's current round if it is active and selecting with room and the
   * device (a verified device id; only its HMAC under the attempt's round key is stored) holds no task of
   * that attempt yet (Lua). `servedRound`: the device's hint that it already uploaded to this round of the
   * plan, or an earlier one; then no task of a round up to it is assigned.
   */
  tryAssign(
    plan: string,
    task: string,
    now: number,
    deviceId: string,
    servedRound?: number,
  ): Promise<AssignResult>;
  /**
   * The round attempt's key (for HMAC(round key, device id) and HMAC(round key, upload)); undefined once the
   * attempt left reporting (its key is deleted).
   */
  roundKey(ref: RoundRef): Promise<string | undefined>;
  /**
   * Until when (unix ms) the attempt's task tokens stay valid: its current reporting deadline, later by
   * the time paused if its plan is paused now; undefined when the attempt does not take uploads (any more)
   * or stores no deadline.
   */
  uploadDeadline(ref: RoundRef, now: number): Promise<number | undefined>;
  /**
   * The uploads of an attempt that wait for aggregation (reported - accumulated - held), in one read: the
   * API refuses an upload with 503 BUSY before reading its body when they reach MAX_PENDING_UPLOADS
   * (acceptUpload decides again, atomically). 0 when the attempt does not exist.
   */
  pendingUploads(ref: RoundRef): Promise<number>;
  /**
   * Records an upload for a task; stores its bytes for the workers and, for single use, HMAC(round key,
   * bytes), never a plain hash (Lua). Counts late ones in `late`. `stored` is what the workers fold when it
   * differs from the bytes as sent (an update clipped to the plan's bounds): single use is judged on the bytes
   * as sent, so an honest retry is a duplicate.
   * BUSY when the uploads waiting for aggregation, less those held by workers (setHeld), reach maxPending.
   */
  acceptUpload(
    ref: RoundRef,
    task: string,
    bytes: Uint8Array,
    now: number,
    maxPending: number,
    options?: AcceptOptions,
  ): Promise<AcceptResult>;
  /** Counts an upload rejected for its content (bad bundle, out-of-range secure values). */
  countRejected(ref: RoundRef): Promise<void>;
}

/** What an aggregation worker reads and commits (src/aggregation/), and what finalize and the reconciler read of it. */
export interface AggregationStore {
  /**
   * Records how many of the attempt's uploads a worker holds folded but uncommitted (below the minimum);
   * they do not count against `maxPending` in `acceptUpload`. commitPartial clears it; 0 clears it too
   * (a worker that lets its held uploads go). Keeps `held_total` equal to the sum of the `held:*` counts.
   */
  setHeld(ref: RoundRef, worker: string, count: number): Promise<void>;
  /** An upload's bytes while queued; undefined once accumulated (or never stored). */
  getUpload(ref: RoundRef, task: string): Promise<Uint8Array | undefined>;
  /** Task ids whose upload was accepted but is not yet covered by a partial (to re-enqueue jobs lost between accept and enqueue). */
  pendingTasks(ref: RoundRef): Promise<string[]>;
  /**
   * For each task of a worker's batch, in order: whether a committed partial covers it already and, if not,
   * its upload's bytes (undefined once gone); read in one step.
   */
  queuedUploads(ref: RoundRef, tasks: readonly string[]): Promise<QueuedUpload[]>;
  /** A worker's last committed partial. */
  getPartial(ref: RoundRef, worker: string): Promise<Uint8Array | undefined>;
  /** Every committed partial of a round attempt. */
  getPartials(ref: RoundRef): Promise<Uint8Array[]>;
  /**
   * Atomically: fails with the conflicting tasks if any is already covered; else stores the worker's partial,
   * marks the tasks covered, deletes their uploads, adds them to `accumulated`, adds `rejected` (how many of
   * the tasks the worker rejected; default 0) to the attempt's `rejected` and clears the worker's held
   * count (Lua). Refused (`fenced`) when the worker id committed to the attempt with a higher lease epoch.
   */
  commitPartial(
    ref: RoundRef,
    worker: string,
    partial: Uint8Array,
    tasks: readonly string[],
    rejected?: number,
    extras?: CommitExtras,
  ): Promise<CommitResult>;
  /** The attempt's accumulated and dropped counts; undefined when the attempt does not exist. */
  aggregationCounts(ref: RoundRef): Promise<AggregationCounts | undefined>;
  /**
   * Counts one isolate fault of an attempt (in its hash, or in the plan's meta while it opens) and answers
   * the new count; -1 when neither exists (Lua).
   */
  countFault(ref: RoundRef): Promise<number>;
  /**
   * Raises the attempt's commit fence of worker id `worker` to `epoch` (its lease epoch) before the worker
   * reads its partial, so that no older holder of the id commits to the attempt afterwards
   * (src/store/scripts/raise-fence.ts). 0 when raised or already as high; else the higher fence, meaning the
   * caller is the stale holder.
   */
  raiseFence(ref: RoundRef, worker: string, epoch: number): Promise<number>;
}

/** The phase changes of an attempt, one atomic step each (the engine, deadlines, the reconciler). */
export interface TransitionStore {
  /** selecting -> reporting (selection target reached is done inside tryAssign; this is the timeout path). */
  toReporting(ref: RoundRef, now: number): Promise<TransitionResult>;
  /**
   * A deadline of the attempt has come (its job, or the reconciler): decides inside one atomic step from
   * the phase, the stored deadline and the counts (Lua). A `closed` attempt is never failed by a deadline.
   */
  deadline(ref: RoundRef, kind: DeadlineKind, now: number): Promise<DeadlineResult>;
  /** selecting|reporting -> closed: stops accepting uploads; deletes the round key and the device set. */
  close(ref: RoundRef, now: number): Promise<TransitionResult>;
  /**
   * closed -> finalizing, only when accumulated == reported and, with SecAgg, every survivor answered the
   * unmasking request or its deadline is past `now`.
   */
  beginFinalize(ref: RoundRef, now?: number): Promise<TransitionResult>;
  /**
   * finalizing -> completed: stores the new state and the output, deletes the round's tasks, covered set,
   * partials, round key and device set; marks the plan completed if this was the last round (Lua).
   */
  complete(
    ref: RoundRef,
    state: Uint8Array,
    output: unknown,
    aggregatedClients: number,
    now: number,
    privacy?: RoundPrivacy,
  ): Promise<TransitionResult>;
  /** any open phase -> failed with a reason; discards partials, uploads, tasks, broadcast, round key, devices (Lua). */
  fail(ref: RoundRef, error: string, now: number): Promise<TransitionResult>;
}

/** Sweeps and deletes of finished data (docs/server.md, "Retention"; the reconciler, the API). */
export interface RetentionStore {
  /**
   * Deletes, in bounded steps, the uploads and partials of finished attempts that complete and fail moved
   * aside and did not finish deleting (a process died); true when nothing is left. For the reconciler.
   */
  sweep(options?: { readonly step?: number; readonly maxSteps?: number }): Promise<boolean>;
  /** Every attempt the plan may have opened (for removing their queued jobs before a delete). */
  attemptsOf(plan: string): Promise<RoundRef[]>;
  /**
   * Deletes every key of a cancelled, completed or failed plan and its global entries; refuses an active
   * or paused one. Repeatable after an interruption.
   */
  deletePlan(id: string): Promise<DeleteResult>;
}

/**
 * Every read and atomic write the server makes. Methods that change several keys are one Lua script each,
 * so that concurrent API replicas and workers never see or leave a half-done step.
 */
export interface RoundStore
  extends PlanStore, RoundReads, ClientStore, AggregationStore, TransitionStore, RetentionStore {
  /** The SecAgg+ exchange of attempts that run it (src/store/secagg-store.ts). */
  readonly secagg: SecAggStore;

  /** Removes every key of the store (tests). */
  clear(): Promise<void>;
}

// secure aggregation (src/store/secagg-store.ts; docs/server.md, "Secure aggregation")

/** A cohort member's two X25519 public keys (base64url): `c` encrypts shares, `s` derives pairwise masks. */
export interface PublicKeys {
  readonly c: string;
  readonly s: string;
}

/** Refusals of the exchange's steps (each an error code of the API). */
export type SecAggRefusal =
  | 'TASK_UNKNOWN'
  | 'SECAGG_OFF'
  | 'SECAGG_KEYS_CHANGED'
  | 'SECAGG_PHASE'
  | 'SECAGG_NOT_IN_COHORT'
  | 'SECAGG_ALREADY_SENT'
  | 'SECAGG_NOT_SURVIVOR'
  | 'SECAGG_WRONG_SHARE';

export type StepResult<T> =
  | ({ readonly ok: true } & T)
  | { readonly ok: false; readonly code: SecAggRefusal; readonly detail?: string };

/** Where an attempt's exchange stands, for one task. */
export interface SecAggView {
  readonly phase: Phase;
  readonly setup: SecAggSetup;
  /** The cohort size so far (final once the attempt left 'selecting'). */
  readonly n: number;
  /** The task's cohort index, if it advertised keys. */
  readonly index?: number;
}

/** An attempt's SecAgg+ exchange in the store; each step that decides is one atomic script. */
export interface SecAggStore {
  /** The attempt's setup and counts, with the task's index; undefined when the attempt runs no SecAgg. */
  view(ref: RoundRef, task: string): Promise<SecAggView | undefined>;
  /** The attempt's phase alone (one read, for held polls); undefined when the attempt is gone. */
  phase(ref: RoundRef): Promise<Phase | undefined>;
  /**
   * Until when the attempt's task tokens authorize SecAgg steps (unix ms): the reporting deadline until the
   * attempt closes, then the unmasking deadline (later by a pause); undefined after, or without SecAgg.
   */
  deadline(ref: RoundRef, now: number): Promise<number | undefined>;
  /** Which of `indexes` are in U2 (`shared`), U3 (`uploaded`) or U4 (`answered`), in order. */
  members(
    ref: RoundRef,
    set: 'shared' | 'uploaded' | 'answered',
    indexes: readonly number[],
  ): Promise<boolean[]>;
  /** The attempt's setup (for the workers and the finalizer); undefined when it runs no SecAgg. */
  setup(ref: RoundRef): Promise<SecAggSetup | undefined>;
  /** R0: records a task's public keys; `ended` when its advertisement closed selection. */
  advertise(
    ref: RoundRef,
    task: string,
    keys: PublicKeys,
    now: number,
  ): Promise<StepResult<{ index: number; ended: boolean }>>;
  /** The public keys of cohort members, by index (members without keys are left out). */
  publicKeys(ref: RoundRef, indexes: readonly number[]): Promise<Map<number, PublicKeys>>;
  /** Every cohort member's public keys, index order (for the finalizer). */
  allPublicKeys(ref: RoundRef): Promise<PublicKeys[]>;
  /** R1: stores a member's encrypted shares; `ended` when the last member's shares moved on to reporting. */
  share(
    ref: RoundRef,
    task: string,
    shares: readonly { readonly to: number; readonly ct: string }[],
    now: number,
  ): Promise<StepResult<{ ended: boolean }>>;
  /** The ciphertexts addressed to `index` from each of `from` that sent its shares (sender order). */
  inbox(
    ref: RoundRef,
    index: number,
    from: readonly number[],
  ): Promise<{ readonly from: number; readonly ct: string }[]>;
  /** U2 and U3 as sets of cohort indexes. */
  survivors(ref: RoundRef): Promise<{ shared: Set<number>; uploaded: Set<number> }>;
  /** R3: stores a survivor's unmasking shares (the script checks each share's kind against U2 and U3). */
  unmask(
    ref: RoundRef,
    task: string,
    shares: readonly { readonly of: number; readonly kind: 'b' | 's'; readonly share: string }[],
  ): Promise<StepResult<{ answered: number; reported: number }>>;
  /** Every unmasking share, by the index it is of: the kind and each giver's share (for the finalizer). */
  unmaskShares(ref: RoundRef): Promise<Map<number, { kind: 'b' | 's'; shares: string[] }>>;
}
