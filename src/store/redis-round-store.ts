/**
 * The round store on Redis (docs/server.md). Keys come from `keys.ts`; every step that changes several keys
 * is one Lua script from `scripts/`, so concurrent API replicas and workers never see a half-done step.
 */
import type { ChainableCommander } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { AppError } from '../errors';
import { faultPoint } from '../faults';
import { Keys } from './keys';
import { isPhase, parsePlan, parseRound } from './parse';
import { exec, isAcceptCode, toBuffer, toBytes, transition, tuple } from './replies';
import { failKeys, planPage, runDeadline, runDropping, runSetStatus, uploadDeadline } from './round-clock';
import { deviceHmac, newRoundKey, uploadHmac } from './round-key';
import { scanKeys, unlinkKeys, type RedisClient } from './redis-client';
import { checkinRate } from './checkin-rate';
import { SCRIPTS } from './scripts';
import { RedisSecAggStore } from './secagg-store';
import { attemptsOf, deletePlanKeys } from './delete-plan';
import { sweepAll, sweepPlan, unlist, type SweepOptions } from './sweep';
import {
  parseRoundTag,
  roundTag,
  type AcceptOptions,
  type AcceptResult,
  type AggregationCounts,
  type AssignResult,
  type CommitExtras,
  type CommitResult,
  type DeadlineKind,
  type SecAggStore,
  type DeadlineResult,
  type DeleteResult,
  type NewRound,
  type Phase,
  type PlanSummary,
  type PopulationCheckin,
  type QueuedUpload,
  type ReindexOutcome,
  type RoundInfo,
  type RoundPrivacy,
  type RoundRef,
  type RoundStore,
  type TransitionResult,
} from './types';

/** The window, in seconds, over which `recordCheckin` measures a population's check-in rate. */
export const CHECKIN_WINDOW_S = 60;

/** How long staged upload bytes live should their transaction be cut short (see `RoundKeys.incoming`). */
const INCOMING_TTL_MS = 60_000;

/** How long a process remembers a plan's current attempt and round key for check-ins (see `tryAssign`). */
const CURRENT_ATTEMPT_TTL_MS = 60_000;

/** A plan's current attempt and its round key. */
interface CurrentAttempt {
  readonly ref: RoundRef;
  readonly roundKey: string;
}

/** How old an id in the plans index without a plan must be before reindex takes it for a leftover. */
export const ORPHAN_MS = 10 * 60_000;

/** What the store keeps of finished rounds (docs/server.md, "Retention"). */
export interface RetentionOptions {
  /** Broadcasts kept per plan: the current round's and the previous ones' (`RETAIN_BROADCASTS`, >= 1). */
  readonly broadcasts: number;
  /**
   * Failed attempts of one round whose hash is kept, the latest ones (`RETAIN_FAILED_ATTEMPTS`, >= 1: the
   * engine reads the attempt that just failed to open the next).
   */
  readonly failedAttempts: number;
}

/** The defaults of {@link RetentionOptions}, as in src/config.ts. */
export const DEFAULT_RETENTION: RetentionOptions = { broadcasts: 2, failedAttempts: 3 };

/**
 * How many replicas must hold a write before it is acknowledged where losing it would lose a client's work
 * (docs/server.md, "Redis Cluster"): an accepted upload before its 202, a committed partial before its jobs
 * are acknowledged. Redis replicates asynchronously; a primary that fails over before its replica has a
 * write loses it, and WAIT is what makes the replica have it first.
 */
export interface Durability {
  /** Replicas that must acknowledge (`REDIS_WAIT_REPLICAS`); 0 waits for none. */
  readonly replicas: number;
  /** How long to wait for them, in ms (`REDIS_WAIT_TIMEOUT_MS`); fewer by then is a retryable failure. */
  readonly timeoutMs: number;
}

/** No waiting: a single Redis without replicas. */
export const NO_WAIT: Durability = { replicas: 0, timeoutMs: 0 };

/**
 * `RoundStore` on one ioredis connection. The connection must not set ioredis' `keyPrefix`: scripts build
 * some keys from prefixes passed as arguments, which ioredis would not prefix.
 */
export class RedisRoundStore implements RoundStore {
  private readonly keys: Keys;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly retention: RetentionOptions = DEFAULT_RETENTION,
    private readonly durability: Durability = NO_WAIT,
  ) {
    this.keys = new Keys(prefix);
    this.secagg = new RedisSecAggStore(redis, this.keys);
  }

  /**
   * Per plan, the current attempt and its round key as last read (for {@link tryAssign}). Bounded in size
   * and age: a round key is deleted from Redis when its attempt leaves reporting (so that the stored device
   * HMACs can no longer be linked to device ids), and this copy must not long outlive it.
   */
  private readonly currentAttempts = new LRUCache<string, CurrentAttempt>({
    max: 10_000,
    ttl: CURRENT_ATTEMPT_TTL_MS,
  });

  readonly secagg: SecAggStore;

  // plans

  async createPlan(plan: Parameters<RoundStore['createPlan']>[0]): Promise<void> {
    const k = this.keys.plan(plan.id);
    // Three steps in three slots (docs/server.md, "Redis Cluster"): the plans index first, so that a
    // process dying after it leaves an id the reconciler finds (reindex forgets it); the plan's keys
    // together (one slot, so MULTI works on a Cluster); its population's set last, so that a plan offered to
    // clients is always complete (reindex lists an open plan that missed it).
    await this.redis.zadd(this.keys.global.plans, plan.now, plan.id);
    await exec(
      this.redis
        .multi()
        .set(k.plan, plan.json)
        .set(k.state, toBuffer(plan.state))
        .hset(k.meta, {
          name: plan.name,
          population: plan.population,
          status: 'active',
          created_at: plan.now,
          round: 0,
          attempt: 0,
          rounds: plan.rounds,
          ...(plan.dp
            ? {
                dp: JSON.stringify({
                  delta: plan.dp.delta,
                  target_epsilon: plan.dp.target_epsilon,
                  accounting: plan.dp.accounting,
                  noise_multiplier: plan.dp.noise_multiplier,
                }),
                dp_clip: plan.dp.clip,
                dp_rounds: 0,
                dp_epsilon: 0,
              }
            : {}),
        }),
    );
    await faultPoint('before-population-index');
    await this.redis.sadd(this.keys.global.population(plan.population), plan.id);
  }

  async reindex(id: string, now: number, orphanMs = ORPHAN_MS): Promise<ReindexOutcome> {
    const [status, population] = await this.redis.hmget(this.keys.plan(id).meta, 'status', 'population');
    if (!status || !population) {
      const created = await this.redis.zscore(this.keys.global.plans, id);
      // Its creator may still be writing it: only an id older than orphanMs is a leftover.
      if (created === null || now - Number(created) < orphanMs) return 'pending';
      await this.redis.zrem(this.keys.global.plans, id);
      return 'forgotten';
    }
    const open = status === 'active' || status === 'paused';
    const set = this.keys.global.population(population);
    const listed = (await this.redis.sismember(set, id)) === 1;
    if (open && !listed) {
      await this.redis.sadd(set, id);
      // A cancel or completion between the two reads would leave it listed: read the status again.
      const again = await this.redis.hget(this.keys.plan(id).meta, 'status');
      if (again !== 'active' && again !== 'paused') await this.redis.srem(set, id);
      return 'listed';
    }
    if (!open && listed) {
      await this.redis.srem(set, id);
      return 'unlisted';
    }
    return 'in-line';
  }

  async listPlans(): Promise<PlanSummary[]> {
    const ids = await this.redis.zrange(this.keys.global.plans, 0, -1);
    const plans = await Promise.all(ids.map((id) => this.getPlan(id)));
    return plans.filter((p): p is PlanSummary => p !== undefined);
  }

  async getPlan(id: string): Promise<PlanSummary | undefined> {
    const meta = await this.redis.hgetall(this.keys.plan(id).meta);
    const round = Number(meta.round ?? 0);
    const attempt = Number(meta.attempt ?? 0);
    const phase =
      round > 0 ? await this.redis.hget(this.keys.round({ plan: id, round, attempt }).round, 'phase') : null;
    return parsePlan(id, meta, phase);
  }

  async getPlanJson(id: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.plan(id).plan)) ?? undefined;
  }

  async getState(id: string): Promise<Uint8Array | undefined> {
    return toBytes(await this.redis.getBuffer(this.keys.plan(id).state));
  }

  async setStatus(
    id: string,
    to: 'active' | 'paused' | 'cancelled',
    now = Date.now(),
  ): Promise<PlanSummary | undefined> {
    // A cancel may fail the current attempt and move its data to the sweep: listed first, as in fail.
    if (to === 'cancelled') await this.redis.sadd(this.keys.global.sweeping, id);
    const { changed, population } = await runSetStatus(
      this.redis,
      this.keys,
      id,
      to,
      now,
      this.retention.failedAttempts,
    );
    if (to === 'cancelled') await this.sweepPlan(id);
    if (!changed) return undefined;
    // The population set lists open plans only; it is global, so it cannot change inside the script.
    if (to === 'cancelled') await this.redis.srem(this.keys.global.population(population), id);
    return this.getPlan(id);
  }

  async failPlan(id: string, error: string): Promise<boolean> {
    const [changed, population] = tuple(
      await SCRIPTS.failPlan.run(this.redis, [this.keys.plan(id).meta], [error]),
    );
    if (changed !== '1') return false;
    // The population set lists open plans only; it is global, so it cannot change inside the script.
    await this.redis.srem(this.keys.global.population(population ?? ''), id);
    return true;
  }

  async stopPlan(id: string, reason: string): Promise<boolean> {
    const [changed, population] = tuple(
      await SCRIPTS.stopPlan.run(this.redis, [this.keys.plan(id).meta], [reason]),
    );
    if (changed !== '1') return false;
    await this.redis.srem(this.keys.global.population(population ?? ''), id);
    return true;
  }

  async plansOf(population: string): Promise<string[]> {
    return this.redis.smembers(this.keys.global.population(population));
  }

  planPage(cursor: string, count: number): Promise<{ cursor: string; ids: string[] }> {
    return planPage(this.redis, this.keys, cursor, count);
  }

  // rounds

  async openRound(r: NewRound): Promise<boolean> {
    const p = this.keys.plan(r.ref.plan);
    const k = this.keys.round(r.ref);
    const res = await SCRIPTS.openRound.run(
      this.redis,
      [
        p.meta,
        k.round,
        k.broadcast,
        p.history,
        p.broadcasts,
        this.keys.round({ ...r.ref, attempt: Math.max(0, r.ref.attempt - this.retention.failedAttempts) })
          .round,
      ],
      [
        r.ref.round,
        r.ref.attempt,
        roundTag(r.ref),
        r.selectionTarget,
        r.target,
        r.minReports,
        r.minAggregate,
        JSON.stringify(r.secureParams),
        r.now,
        toBuffer(r.broadcast),
        newRoundKey(),
        r.error ?? '',
        '',
        '',
        this.retention.failedAttempts,
        r.deadlines?.selection ?? '',
        r.deadlines?.reporting ?? '',
        r.secagg ? JSON.stringify(r.secagg.setup) : '',
        r.secagg?.timeoutsMs.sharing ?? '',
        r.secagg?.timeoutsMs.unmasking ?? '',
        r.secagg?.expiresAt ?? '',
        r.dpClip ?? '',
      ],
    );
    if (res === -1) throw new AppError('PLAN_NOT_FOUND', `Plan ${r.ref.plan} does not exist`);
    if (res === 1 && !r.error) await this.trimBroadcasts(r.ref.plan);
    return res === 1;
  }

  /**
   * Drops the plan's oldest kept broadcasts beyond RETAIN_BROADCASTS, one trim-broadcast step each (each
   * declares the broadcast it deletes). After an opened or completed round; a process that dies before
   * leaves the list long until the next one, which trims it back.
   */
  private async trimBroadcasts(plan: string): Promise<void> {
    const p = this.keys.plan(plan);
    const keep = this.retention.broadcasts;
    const kept = await this.redis.lrange(p.broadcasts, 0, -1);
    for (const tag of kept.slice(0, Math.max(0, kept.length - keep))) {
      const ref = parseRoundTag(tag);
      if (!ref) throw new Error(`plan ${plan}: malformed broadcast list entry "${tag}"`);
      const broadcast = this.keys.round({ plan, ...ref }).broadcast;
      await SCRIPTS.trimBroadcast.run(this.redis, [p.broadcasts, broadcast], [tag, keep]);
    }
  }

  async getPhase(ref: RoundRef): Promise<Phase | undefined> {
    const phase = await this.redis.hget(this.keys.round(ref).round, 'phase');
    return isPhase(phase) ? phase : undefined;
  }

  async getRound(ref: RoundRef): Promise<RoundInfo | undefined> {
    return parseRound(await this.redis.hgetall(this.keys.round(ref).round), ref.round, ref.attempt);
  }

  async listRounds(plan: string): Promise<RoundInfo[]> {
    const tags = await this.redis.lrange(this.keys.plan(plan).history, 0, -1);
    const refs = tags.map((tag) => {
      const parsed = parseRoundTag(tag);
      if (!parsed) throw new Error(`plan ${plan}: malformed history entry "${tag}"`);
      return { plan, ...parsed };
    });
    const pipeline = this.redis.pipeline();
    for (const ref of refs) pipeline.hgetall(this.keys.round(ref).round);
    const hashes = (await exec(pipeline)) as Record<string, string>[];
    return refs
      .map((ref, i) => parseRound(hashes[i] ?? {}, ref.round, ref.attempt))
      .filter((r): r is RoundInfo => r !== undefined);
  }

  async getBroadcast(ref: RoundRef): Promise<Uint8Array | undefined> {
    return toBytes(await this.redis.getBuffer(this.keys.round(ref).broadcast));
  }

  // clients

  async recordCheckin(population: string, now: number): Promise<PopulationCheckin> {
    const second = Math.floor(now / 1000);
    const reply = tuple(
      await SCRIPTS.recordCheckin.run(
        this.redis,
        [this.keys.global.populationRate(population), this.keys.global.population(population)],
        [second, CHECKIN_WINDOW_S],
      ),
    );
    const [count, oldest] = reply.slice(0, 2).map(Number);
    const plans = reply.slice(2).map(String);
    return {
      plans,
      rate: plans.length > 0 ? checkinRate(count ?? 0, oldest ?? second, now, CHECKIN_WINDOW_S) : 0,
    };
  }

  async tryAssign(
    plan: string,
    task: string,
    now: number,
    deviceId: string,
    servedRound?: number,
  ): Promise<AssignResult> {
    // The attempt and its round key as this process last saw them (one round trip per check-in, not three):
    // the script re-checks that the attempt is current and answers 'moved' when it is not, or when it has
    // left reporting. A device's hint of a served round is checked against a fresh read, not the memory,
    // which may be a round behind.
    let current = servedRound === undefined ? this.currentAttempts.get(plan) : undefined;
    let remembered = current !== undefined;
    for (;;) {
      if (!current) {
        const read = await this.readCurrentAttempt(plan);
        if (!read.ok) return read;
        current = read.current;
      }
      const { ref, roundKey } = current;
      if (servedRound !== undefined && ref.round <= servedRound) return { ok: false, reason: 'served' };
      const k = this.keys.round(ref);
      const device = deviceHmac(roundKey, deviceId);
      const reply = tuple(
        await SCRIPTS.tryAssign.run(
          this.redis,
          [this.keys.plan(plan).meta, k.round, k.tasks, k.devices],
          [ref.round, ref.attempt, task, now, device],
        ),
      );
      const [answer] = reply;
      if (answer === 'moved') {
        this.currentAttempts.delete(plan);
        // Read just now and moved on already: the attempt takes no tasks (the next check-in reads again).
        if (!remembered) return { ok: false, reason: 'not_selecting' };
        current = undefined;
        remembered = false;
        continue;
      }
      if (answer === 'ok' || answer === 'again') {
        // 'again': the device's own task, whose first answer it did not get.
        const [held, openedAt, reportingDeadline] =
          answer === 'again' ? reply.slice(1) : [task, ...reply.slice(1)];
        const deadline = reportingDeadline ? { reportingDeadline: Number(reportingDeadline) } : {};
        return { ok: true, ref, task: held!, device, openedAt: Number(openedAt), ...deadline };
      }
      if (
        answer === 'not_active' ||
        answer === 'not_selecting' ||
        answer === 'full' ||
        answer === 'device_assigned'
      ) {
        return { ok: false, reason: answer };
      }
      throw new Error(`tryAssign: task ${task} is already assigned in plan ${plan} (${String(answer)})`);
    }
  }

  /**
   * Reads a plan's current attempt and its round key (two round trips) and remembers them for
   * {@link tryAssign}; a plan that is not active, or whose attempt takes no tasks, is answered why.
   */
  private async readCurrentAttempt(
    plan: string,
  ): Promise<{ ok: true; current: CurrentAttempt } | { ok: false; reason: 'not_active' | 'not_selecting' }> {
    const [status, round, attempt] = await this.redis.hmget(
      this.keys.plan(plan).meta,
      'status',
      'round',
      'attempt',
    );
    if (status !== 'active') return { ok: false, reason: 'not_active' };
    if (!round || round === '0' || !attempt) return { ok: false, reason: 'not_selecting' };
    const ref: RoundRef = { plan, round: Number(round), attempt: Number(attempt) };
    // Deleted when the attempt leaves reporting: then it takes no tasks.
    const roundKey = await this.redis.hget(this.keys.round(ref).round, 'round_key');
    if (!roundKey) return { ok: false, reason: 'not_selecting' };
    const current = { ref, roundKey };
    this.currentAttempts.set(plan, current);
    return { ok: true, current };
  }

  async roundKey(ref: RoundRef): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.round(ref).round, 'round_key')) ?? undefined;
  }

  uploadDeadline(ref: RoundRef, now: number): Promise<number | undefined> {
    return uploadDeadline(this.redis, this.keys, ref, now);
  }

  async acceptUpload(
    ref: RoundRef,
    task: string,
    bytes: Uint8Array,
    now: number,
    maxPending: number,
    options: AcceptOptions = {},
  ): Promise<AcceptResult> {
    const k = this.keys.round(ref);
    // The key is read before the script (unless the caller read it already); if the attempt closes in
    // between, the script finds it past reporting and answers late, so a digest made with a just-deleted
    // key is never stored.
    const roundKey = 'roundKey' in options ? options.roundKey : await this.roundKey(ref);
    const digest = roundKey ? uploadHmac(roundKey, bytes) : '';
    // The bytes go in by a plain SET in the script's MULTI: as a script argument Redis would copy them at
    // about 0.65 ms per 391 KiB on its one thread, as a SET at a few µs (docs/scaling.md).
    const incoming = k.incoming(task);
    const [status, closed] = tuple(
      await SCRIPTS.acceptUpload.runAfter(
        this.redis,
        (tx) => tx.set(incoming, toBuffer(options.stored ?? bytes), 'PX', INCOMING_TTL_MS),
        [
          k.round,
          k.tasks,
          k.upload(task),
          k.devices,
          k.secagg.index,
          k.secagg.shared,
          k.secagg.uploaded,
          incoming,
        ],
        [task, digest, '', now, maxPending],
      ),
    );
    if (status === 'ok') {
      // Until a replica has it, a failover may lose it: the client is told to retry, and a retry of an
      // upload that survived is UPLOAD_DUPLICATE, which the client takes for success.
      await this.replicated(k.round, 'the upload is stored but no replica has confirmed it yet; retry');
      return { ok: true, closed: closed === '1' };
    }
    if (isAcceptCode(status)) return { ok: false, code: status };
    throw new Error(`acceptUpload: unexpected script answer ${String(status)}`);
  }

  async pendingUploads(ref: RoundRef): Promise<number> {
    const [reported, accumulated, held] = await this.redis.hmget(
      this.keys.round(ref).round,
      'reported',
      'accumulated',
      'held_total',
    );
    // The same count as accept-upload's BUSY check.
    return (Number(reported) || 0) - (Number(accumulated) || 0) - (Number(held) || 0);
  }

  /** The uploads of an attempt that workers hold folded but uncommitted (set-held keeps the total). */
  async heldUploads(ref: RoundRef): Promise<number> {
    return Number(await this.redis.hget(this.keys.round(ref).round, 'held_total')) || 0;
  }

  async setHeld(ref: RoundRef, worker: string, count: number): Promise<void> {
    await SCRIPTS.setHeld.run(this.redis, [this.keys.round(ref).round], [worker, count]);
  }

  async countRejected(ref: RoundRef): Promise<void> {
    await SCRIPTS.countRejected.run(this.redis, [this.keys.round(ref).round], []);
  }

  async getUpload(ref: RoundRef, task: string): Promise<Uint8Array | undefined> {
    return toBytes(await this.redis.getBuffer(this.keys.round(ref).upload(task)));
  }

  async pendingTasks(ref: RoundRef): Promise<string[]> {
    const k = this.keys.round(ref);
    // One MULTI (same slot) so that a commit between the two reads cannot make a task look pending.
    const [tasks, covered] = (await exec(this.redis.multi().hgetall(k.tasks).smembers(k.covered))) as [
      Record<string, string>,
      string[],
    ];
    const done = new Set(covered);
    return Object.entries(tasks)
      .filter(([task, mark]) => mark.startsWith('u:') && !done.has(task))
      .map(([task]) => task);
  }

  // aggregation

  async queuedUploads(ref: RoundRef, tasks: readonly string[]): Promise<QueuedUpload[]> {
    if (tasks.length === 0) return [];
    const k = this.keys.round(ref);
    // One MULTI (same slot) for the batch: one round trip instead of two per upload, and a commit between
    // the reads cannot make a covered task look queued with its bytes already deleted.
    const batch = this.redis.multi();
    for (const task of tasks) batch.sismember(k.covered, task).getBuffer(k.upload(task));
    const replies = await exec(batch);
    return tasks.map((task, i) =>
      replies[2 * i] === 1
        ? { task, covered: true }
        : { task, covered: false, bytes: toBytes(replies[2 * i + 1] as Buffer | null) },
    );
  }

  async getPartial(ref: RoundRef, worker: string): Promise<Uint8Array | undefined> {
    return toBytes(await this.redis.getBuffer(this.keys.round(ref).partial(worker)));
  }

  async getPartials(ref: RoundRef): Promise<Uint8Array[]> {
    const k = this.keys.round(ref);
    // Sorted so that the finalizer merges in the same order every run (float sums depend on the order).
    const workers = (await this.redis.smembers(k.partials)).sort();
    if (workers.length === 0) return [];
    const values = await this.redis.mgetBuffer(workers.map((w) => k.partial(w)));
    return values.map(toBytes).filter((v): v is Uint8Array => v !== undefined);
  }

  /**
   * Waits until `durability.replicas` replicas, or as many as the node has if fewer, hold every write made
   * so far on the connection to the node that serves `key` (WAIT counts per connection; a pipeline goes to
   * its key's node); throws a retryable 503 NOT_READY with `why` when fewer do within the timeout. A primary
   * without replicas (a promoted one whose old primary is gone) has nothing to fail over to, so a write
   * there is as safe as it will get: waiting for a replica that does not exist would refuse every upload.
   */
  private async replicated(key: string, why: string): Promise<void> {
    const { replicas, timeoutMs } = this.durability;
    if (replicas <= 0) return;
    const [, role] = await answers(this.redis.pipeline().exists(key).role());
    const present = Array.isArray(role) && Array.isArray(role[2]) ? role[2].length : 0;
    const need = Math.min(replicas, present);
    if (need === 0) return;
    const [, acked] = await answers(this.redis.pipeline().exists(key).wait(need, timeoutMs));
    if (Number(acked) < need) {
      throw new AppError('NOT_READY', `${why} (${Number(acked)} of ${need} replicas in ${timeoutMs} ms)`);
    }
  }

  async commitPartial(
    ref: RoundRef,
    worker: string,
    partial: Uint8Array,
    tasks: readonly string[],
    rejected = 0,
    extras: CommitExtras = {},
  ): Promise<CommitResult> {
    if (new Set(tasks).size !== tasks.length) {
      // The partial would hold an upload twice while `covered` counts it once: refuse before touching Redis.
      throw new Error(`commitPartial: the batch of worker ${worker} names a task twice`);
    }
    const k = this.keys.round(ref);
    const res = tuple(
      await SCRIPTS.commitPartial.run(
        this.redis,
        [k.round, k.tasks, k.covered, k.partials, k.partial(worker), ...tasks.map((t) => k.upload(t))],
        [worker, toBuffer(partial), rejected, extras.gone ?? 0, extras.epoch ?? 0, ...tasks],
      ),
    );
    const [status, ...rest] = res;
    if (status === 'ok') {
      // The worker acknowledges the batch's jobs after this: a commit lost in a failover after that would
      // lose them. Failing here leaves the jobs to be redelivered and skipped if the commit survived.
      await this.replicated(k.round, `worker ${worker}'s commit is not confirmed by a replica yet`);
      return { ok: true, ready: rest[0] === '1' };
    }
    if (status === 'conflict') return { ok: false, conflicts: rest };
    if (status === 'stale') return { ok: false, conflicts: [...tasks], stale: true };
    if (status === 'fenced') return { ok: false, conflicts: [...tasks], fenced: true };
    throw new Error(`commitPartial: unexpected script answer ${String(status)}`);
  }

  async aggregationCounts(ref: RoundRef): Promise<AggregationCounts | undefined> {
    const [phase, accumulated, dropped] = await this.redis.hmget(
      this.keys.round(ref).round,
      'phase',
      'accumulated',
      'dropped',
    );
    if (phase === null) return undefined;
    return { accumulated: Number(accumulated ?? 0), dropped: Number(dropped ?? 0) };
  }

  async raiseFence(ref: RoundRef, worker: string, epoch: number): Promise<number> {
    const res = await SCRIPTS.raiseFence.run(this.redis, [this.keys.round(ref).round], [worker, epoch]);
    return Number(res);
  }

  async countFault(ref: RoundRef): Promise<number> {
    const keys = [this.keys.round(ref).round, this.keys.plan(ref.plan).meta];
    return Number(await SCRIPTS.countFault.run(this.redis, keys, [roundTag(ref)]));
  }

  // transitions

  async toReporting(ref: RoundRef, now: number): Promise<TransitionResult> {
    return transition(ref, await SCRIPTS.toReporting.run(this.redis, [this.keys.round(ref).round], [now]));
  }

  async deadline(ref: RoundRef, kind: DeadlineKind, now: number): Promise<DeadlineResult> {
    // A deadline may fail the attempt and move its data to the sweep: listed first, as in fail.
    await this.redis.sadd(this.keys.global.sweeping, ref.plan);
    const result = await runDeadline(this.redis, this.keys, ref, kind, now, this.retention.failedAttempts);
    await this.sweepPlan(ref.plan);
    return result;
  }

  async close(ref: RoundRef, now: number): Promise<TransitionResult> {
    const k = this.keys.round(ref);
    return transition(ref, await SCRIPTS.closeRound.run(this.redis, [k.round, k.devices], [now]));
  }

  async beginFinalize(ref: RoundRef, now = Date.now()): Promise<TransitionResult> {
    return transition(ref, await SCRIPTS.beginFinalize.run(this.redis, [this.keys.round(ref).round], [now]));
  }

  async complete(
    ref: RoundRef,
    state: Uint8Array,
    output: unknown,
    aggregatedClients: number,
    now: number,
    privacy?: RoundPrivacy,
  ): Promise<TransitionResult> {
    const p = this.keys.plan(ref.plan);
    const k = this.keys.round(ref);
    // Listed before the script moves anything aside, so that store.sweep() finds what a process that dies
    // right after the script leaves (the set is global: the script may not touch it).
    await this.redis.sadd(this.keys.global.sweeping, ref.plan);
    const res = tuple(
      await runDropping(this.redis, this.keys, ref, this.retention.failedAttempts, (extras) =>
        SCRIPTS.completeRound.run(
          this.redis,
          [
            p.meta,
            p.state,
            k.round,
            k.tasks,
            k.covered,
            k.partials,
            k.devices,
            p.broadcasts,
            p.sweep,
            k.garbage.tasks,
            k.garbage.partials,
            ...extras,
          ],
          [
            roundTag(ref),
            k.partialPrefix,
            ref.round,
            toBuffer(state),
            output === undefined ? '' : JSON.stringify(output),
            aggregatedClients,
            now,
            '',
            privacy?.epsilon ?? '',
            privacy?.nextClip ?? '',
            privacy?.unclippedFraction ?? '',
          ],
        ),
      ),
    );
    const result = transition(ref, res);
    const [, , planCompleted, population] = res;
    if (result.changed) await this.trimBroadcasts(ref.plan);
    // A completed plan leaves its population; the set is global, so it cannot change inside the script.
    if (planCompleted === '1') await this.redis.srem(this.keys.global.population(population ?? ''), ref.plan);
    await faultPoint('before-sweep');
    await this.sweepPlan(ref.plan);
    return result;
  }

  async fail(ref: RoundRef, error: string, now: number): Promise<TransitionResult> {
    // Listed first, as in complete.
    await this.redis.sadd(this.keys.global.sweeping, ref.plan);
    const res = await runDropping(this.redis, this.keys, ref, this.retention.failedAttempts, (extras) =>
      SCRIPTS.failRound.run(
        this.redis,
        [...failKeys(this.keys, ref), ...extras],
        [
          roundTag(ref),
          error,
          now,
          this.keys.round(ref).partialPrefix,
          ref.round,
          ref.attempt,
          this.retention.failedAttempts,
        ],
      ),
    );
    const result = transition(ref, res);
    await faultPoint('before-sweep');
    await this.sweepPlan(ref.plan);
    return result;
  }

  // retention

  /**
   * Deletes the uploads and partials of finished attempts that complete or fail moved aside, in bounded
   * steps (src/store/sweep.ts); true when nothing is left. Complete and fail sweep their own plan before they
   * return, so this only finishes what a process that died in between left: the reconciler calls it.
   */
  sweep(options?: SweepOptions): Promise<boolean> {
    return sweepAll(this.redis, this.keys, options);
  }

  /** Sweeps one plan's finished attempts to the end (listed in the global set first, see complete and fail). */
  private async sweepPlan(plan: string): Promise<void> {
    if (await sweepPlan(this.redis, this.keys, plan)) await unlist(this.redis, this.keys, plan);
  }

  async attemptsOf(plan: string): Promise<RoundRef[]> {
    return attemptsOf(this.redis, this.keys, plan);
  }

  async deletePlan(id: string): Promise<DeleteResult> {
    return deletePlanKeys(this.redis, this.keys, id);
  }

  async clear(): Promise<void> {
    await scanKeys(this.redis, this.keys.pattern, async (found) => {
      await unlinkKeys(this.redis, found);
    });
  }
}

/** The answers of a pipeline, in order; the first error it met is thrown. */
async function answers(pipeline: ChainableCommander): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
