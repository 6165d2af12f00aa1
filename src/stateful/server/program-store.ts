/**
 * Stateful programs in Redis (docs/stateful.md, "Running a program"): the document, the driver's progress,
 * the cohort's sessions, the requests issued to them and the server values. Every key of a program shares
 * its hash tag, so the scripts here run on Redis Cluster; the global indexes (the program list, the active
 * list, a population's recruiting programs) are written apart, as plans' are.
 */
import { LuaScript } from '../../store/lua-script';
import type { Keys, ProgramKeys } from '../../store/keys';
import { programChannel } from './program-events';
import type { RedisClient } from '../../store/redis-client';
import type { ErrorCode } from '../../errors';
import type { TffType } from '../../compute/types';
import type {
  CreateCallRequest,
  CreateDataRequest,
  CreateSelectionRequest,
  CreateStructRequest,
  DisposeRequest,
  SecureSumSpec,
} from '../requests';

/** A program's status: recruiting its cohort, running its steps, or ended. */
export type ProgramStatus = 'recruiting' | 'running' | 'completed' | 'failed' | 'cancelled';

/** A session's status. */
export type SessionStatus = 'live' | 'failed' | 'left' | 'done';

/**
 * A request as stored, before it is served: a broadcast names the server value (the route makes its
 * `bundle_url`), a contribution names the aggregation's plan (the route assigns the device a task of it and
 * makes its `upload_url` and token).
 */
export type StoredRequest =
  | { readonly kind: 'create_value'; readonly handle: string; readonly type: TffType; readonly value: string }
  | CreateDataRequest
  | CreateCallRequest
  | CreateStructRequest
  | CreateSelectionRequest
  | {
      readonly kind: 'contribute';
      readonly aggregation: string;
      readonly handle: string;
      readonly plan: string;
      readonly secure_sum?: SecureSumSpec;
    }
  | DisposeRequest;

/** What the operator API shows of a program. */
export interface ProgramSummary {
  readonly id: string;
  readonly name: string;
  readonly population: string;
  readonly status: ProgramStatus;
  readonly created_at: number;
  /** The next step the driver runs (all steps done: the number of steps). */
  readonly step: number;
  readonly steps: number;
  /** Devices that joined the cohort, and those whose session is still live. */
  readonly cohort: number;
  readonly live: number;
  readonly target_clients: number;
  readonly min_clients: number;
  /** When recruiting ends (unix ms). */
  readonly join_deadline: number;
  readonly ended_at?: number;
  /** When requests last went out (unix ms). */
  readonly issued_at?: number;
  /** Why the program failed, and at which step. */
  readonly error?: string;
  readonly error_step?: number;
  /** The outputs as JSON, once completed. */
  readonly outputs?: unknown;
}

/** One session as the driver and the routes see it. */
export interface SessionRecord {
  readonly id: string;
  readonly device: string;
  readonly status: SessionStatus;
  /** The highest seq the device answered. */
  readonly answered: number;
  /** When the device last polled or answered (unix ms). */
  readonly seen: number;
  readonly code?: ErrorCode;
  readonly reason?: string;
}

/** What joining a cohort did. */
export type JoinResult =
  | { readonly outcome: 'joined' | 'existing'; readonly session: string }
  | { readonly outcome: 'closed' | 'full' | 'ended' };

// KEYS: meta, sessions, devices. ARGV: device, new session id, now.
const JOIN = new LuaScript(
  'program-join',
  `
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then
  if redis.call('HGET', KEYS[2], existing .. ':status') == 'live' then return {'existing', existing} end
  return {'ended'}
end
if redis.call('HGET', KEYS[1], 'status') ~= 'recruiting' then return {'closed'} end
-- Live sessions, not joins: a device that left while recruiting frees its place.
local n = tonumber(redis.call('HGET', KEYS[1], 'live') or '0')
if n >= tonumber(redis.call('HGET', KEYS[1], 'target_clients')) then return {'full'} end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2] .. ':device', ARGV[1], ARGV[2] .. ':status', 'live',
  ARGV[2] .. ':answered', '0', ARGV[2] .. ':seen', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'cohort', 1)
redis.call('HINCRBY', KEYS[1], 'live', 1)
return {'joined', ARGV[2]}
`,
);

// KEYS: meta, sessions. ARGV: session, answered seq, now. Answers only move a live session forward.
const ANSWER = new LuaScript(
  'program-answer',
  `
if redis.call('HGET', KEYS[2], ARGV[1] .. ':status') ~= 'live' then return -1 end
local answered = tonumber(redis.call('HGET', KEYS[2], ARGV[1] .. ':answered'))
local upTo = tonumber(ARGV[2])
if upTo > answered then
  redis.call('HSET', KEYS[2], ARGV[1] .. ':answered', ARGV[2])
  answered = upTo
end
redis.call('HSET', KEYS[2], ARGV[1] .. ':seen', ARGV[3])
return answered
`,
);

// KEYS: meta, sessions. ARGV: session, new status, code, reason. Ends a live session once.
const END_SESSION = new LuaScript(
  'program-end-session',
  `
if redis.call('HGET', KEYS[2], ARGV[1] .. ':status') ~= 'live' then return 0 end
redis.call('HSET', KEYS[2], ARGV[1] .. ':status', ARGV[2], ARGV[1] .. ':code', ARGV[3], ARGV[1] .. ':reason', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'live', -1)
return 1
`,
);

// KEYS: meta. ARGV: from status, to status, then field/value pairs set with the move.
const MOVE = new LuaScript(
  'program-move',
  `
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`,
);

// KEYS: meta, requests. ARGV: the step the driver read, the step after, the time (unix ms), then requests
// (JSON). Appends the requests and moves the step on in one step, so a driver that dies between the two
// never issues twice; `issued` marks the step whose requests are out, so that an aggregate (which stays on
// its step until its result is in) issues its contribution once. `issued_at`: when requests last went out,
// from which a session owing them counts its silence.
const ISSUE = new LuaScript(
  'program-issue',
  `
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return -1 end
if redis.call('HGET', KEYS[1], 'step') ~= ARGV[1] then return -2 end
if redis.call('HGET', KEYS[1], 'issued') == ARGV[1] and #ARGV > 3 then return -3 end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('HSET', KEYS[1], 'step', ARGV[2], 'issued', ARGV[1])
if #ARGV > 3 then redis.call('HSET', KEYS[1], 'issued_at', ARGV[3]) end
return redis.call('LLEN', KEYS[2])
`,
);

// KEYS: lock. ARGV: token. Releases the lock only if this holder still has it.
const UNLOCK = new LuaScript(
  'program-unlock',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
);

/** Stateful programs on one Redis (or Cluster) under the store's key prefix. */
export class ProgramStore {
  private readonly channel: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    this.channel = programChannel(keys.prefix);
  }

  /** Wakes the long polls of program `id` in every API process (`ProgramEvents`). */
  async notify(id: string): Promise<void> {
    await this.redis.publish(this.channel, id);
  }

  private k(id: string): ProgramKeys {
    return this.keys.program(id);
  }

  async create(p: {
    readonly id: string;
    readonly json: string;
    readonly name: string;
    readonly population: string;
    readonly steps: number;
    readonly targetClients: number;
    readonly minClients: number;
    readonly joinDeadline: number;
    readonly now: number;
  }): Promise<void> {
    const k = this.k(p.id);
    // The index first (a listed id without keys reads as absent), the population's list last, so a program
    // offered to devices is complete.
    await this.redis.zadd(this.keys.global.programs, p.now, p.id);
    await this.redis
      .multi()
      .set(k.doc, p.json)
      .hset(k.meta, {
        name: p.name,
        population: p.population,
        status: 'recruiting',
        created_at: p.now,
        step: 0,
        steps: p.steps,
        cohort: 0,
        live: 0,
        target_clients: p.targetClients,
        min_clients: p.minClients,
        join_deadline: p.joinDeadline,
      })
      .exec();
    await this.redis.sadd(this.keys.global.activePrograms, p.id);
    await this.redis.sadd(this.keys.global.populationPrograms(p.population), p.id);
  }

  /** Whether program `id` exists (was submitted and not deleted): one EXISTS, not the document. */
  async exists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.k(id).doc)) === 1;
  }

  async document(id: string): Promise<string | undefined> {
    return (await this.redis.get(this.k(id).doc)) ?? undefined;
  }

  async get(id: string): Promise<ProgramSummary | undefined> {
    const m = await this.redis.hgetall(this.k(id).meta);
    if (!m.status) return undefined;
    return {
      id,
      name: m.name!,
      population: m.population!,
      status: m.status as ProgramStatus,
      created_at: Number(m.created_at),
      step: Number(m.step),
      steps: Number(m.steps),
      cohort: Number(m.cohort),
      live: Number(m.live),
      target_clients: Number(m.target_clients),
      min_clients: Number(m.min_clients),
      join_deadline: Number(m.join_deadline),
      ...(m.ended_at ? { ended_at: Number(m.ended_at) } : {}),
      ...(m.issued_at ? { issued_at: Number(m.issued_at) } : {}),
      ...(m.error ? { error: m.error } : {}),
      ...(m.error_step ? { error_step: Number(m.error_step) } : {}),
      ...(m.outputs ? { outputs: JSON.parse(m.outputs) as unknown } : {}),
    };
  }

  async list(): Promise<ProgramSummary[]> {
    const ids = await this.redis.zrange(this.keys.global.programs, 0, -1);
    const all = await Promise.all(ids.map((id) => this.get(id)));
    return all.filter((p): p is ProgramSummary => p !== undefined);
  }

  /** Programs a driver should look at: recruiting or running. */
  async active(): Promise<string[]> {
    return this.redis.smembers(this.keys.global.activePrograms);
  }

  /** Programs recruiting in a population (the check-in route offers them). */
  async recruitingIn(population: string): Promise<string[]> {
    return this.redis.smembers(this.keys.global.populationPrograms(population));
  }

  /** Joins `device` to the program's cohort (or finds its live session: its first answer may be lost). */
  async join(id: string, device: string, session: string, now: number): Promise<JoinResult> {
    const k = this.k(id);
    const r = (await JOIN.run(
      this.redis,
      [k.meta, k.sessions, k.devices],
      [device, session, now],
    )) as string[];
    const outcome = r[0] as JoinResult['outcome'];
    return outcome === 'joined' || outcome === 'existing' ? { outcome, session: r[1]! } : { outcome };
  }

  async session(id: string, session: string): Promise<SessionRecord | undefined> {
    const fields = ['device', 'status', 'answered', 'seen', 'code', 'reason'].map((f) => `${session}:${f}`);
    const [device, status, answered, seen, code, reason] = await this.redis.hmget(
      this.k(id).sessions,
      ...fields,
    );
    if (!device || !status) return undefined;
    return sessionRecord(session, { device, status, answered, seen, code, reason });
  }

  /**
   * The status and last answer of each of `sessions` (absent: no such session), in one command whatever
   * their number: what a cohort's woken polls need, without the fields and the parsing of `sessions`.
   */
  async sessionStates(
    id: string,
    sessions: readonly string[],
  ): Promise<Map<string, { readonly status: SessionStatus; readonly answered: number }>> {
    const out = new Map<string, { status: SessionStatus; answered: number }>();
    if (sessions.length === 0) return out;
    const fields = sessions.flatMap((sid) => [`${sid}:status`, `${sid}:answered`]);
    const values = await this.redis.hmget(this.k(id).sessions, ...fields);
    sessions.forEach((sid, i) => {
      const status = values[2 * i];
      if (status) out.set(sid, { status: status as SessionStatus, answered: Number(values[2 * i + 1] ?? 0) });
    });
    return out;
  }

  async sessions(id: string): Promise<SessionRecord[]> {
    const all = await this.redis.hgetall(this.k(id).sessions);
    const by = new Map<string, Record<string, string>>();
    for (const [key, value] of Object.entries(all)) {
      const at = key.lastIndexOf(':');
      const sid = key.slice(0, at);
      const fields = by.get(sid) ?? {};
      fields[key.slice(at + 1)] = value;
      by.set(sid, fields);
    }
    return [...by].map(([sid, f]) => sessionRecord(sid, f));
  }

  /** Records that a session answered up to `seq`; the session's answered seq, or -1 if it is not live. */
  async answer(id: string, session: string, seq: number, now: number): Promise<number> {
    const k = this.k(id);
    return Number(await ANSWER.run(this.redis, [k.meta, k.sessions], [session, seq, now]));
  }

  /** Records a poll: the answered seq stays, the last contact moves. */
  async touch(id: string, session: string, now: number): Promise<number> {
    return this.answer(id, session, 0, now);
  }

  /** Ends a live session (failed, left or done); false when it had ended already. */
  async endSession(
    id: string,
    session: string,
    status: Exclude<SessionStatus, 'live'>,
    code: string,
    reason: string,
  ): Promise<boolean> {
    const k = this.k(id);
    const ended =
      (await END_SESSION.run(this.redis, [k.meta, k.sessions], [session, status, code, reason])) === 1;
    if (ended) await this.notify(id);
    return ended;
  }

  /** The requests after `after` (seq > after), in order. */
  async requests(id: string, after: number): Promise<{ seq: number; request: StoredRequest }[]> {
    const raw = await this.redis.lrange(this.k(id).requests, after, -1);
    return raw.map((r, i) => ({ seq: after + i + 1, request: JSON.parse(r) as StoredRequest }));
  }

  async requestCount(id: string): Promise<number> {
    return this.redis.llen(this.k(id).requests);
  }

  /**
   * Issues requests and moves the driver from step `from` to `to`, atomically. Answers the seq of the last
   * request now issued, or undefined when another driver moved first, the program stopped running, or this
   * step's requests were issued already.
   */
  async issue(
    id: string,
    from: number,
    to: number,
    requests: readonly StoredRequest[],
    now: number = Date.now(),
  ): Promise<number | undefined> {
    const k = this.k(id);
    const r = Number(
      await ISSUE.run(
        this.redis,
        [k.meta, k.requests],
        [from, to, now, ...requests.map((q) => JSON.stringify(q))],
      ),
    );
    if (r >= 0 && requests.length > 0) await this.notify(id);
    return r >= 0 ? r : undefined;
  }

  /** Moves the program from one status to another with fields set; false when its status was not `from`. */
  async move(
    id: string,
    from: ProgramStatus,
    to: ProgramStatus,
    fields: Readonly<Record<string, string | number>> = {},
  ): Promise<boolean> {
    const args = Object.entries(fields).flat();
    const moved = (await MOVE.run(this.redis, [this.k(id).meta], [from, to, ...args])) === 1;
    if (moved && to !== 'recruiting') {
      const population = await this.redis.hget(this.k(id).meta, 'population');
      if (population) await this.redis.srem(this.keys.global.populationPrograms(population), id);
      if (to !== 'running') await this.redis.srem(this.keys.global.activePrograms, id);
      await this.notify(id);
    }
    return moved;
  }

  async setValue(id: string, name: string, bundle: Uint8Array): Promise<void> {
    await this.redis.hset(this.k(id).values, name, Buffer.from(bundle));
  }

  async value(id: string, name: string): Promise<Uint8Array | undefined> {
    const b = await this.redis.hgetBuffer(this.k(id).values, name);
    return b ? new Uint8Array(b) : undefined;
  }

  /** Records the plan running step `step`'s aggregation; the id already recorded wins. */
  async setAggregation(id: string, step: number, plan: string): Promise<string> {
    const k = this.k(id);
    await this.redis.hsetnx(k.aggregations, String(step), plan);
    return (await this.redis.hget(k.aggregations, String(step)))!;
  }

  /** The plan of step `step`'s aggregation, and the seq of its contribute request once issued. */
  async aggregation(id: string, step: number): Promise<{ plan: string; seq?: number } | undefined> {
    const [plan, seq] = await this.redis.hmget(this.k(id).aggregations, String(step), `${step}:seq`);
    return plan ? { plan, ...(seq ? { seq: Number(seq) } : {}) } : undefined;
  }

  async setAggregationSeq(id: string, step: number, seq: number): Promise<void> {
    await this.redis.hset(this.k(id).aggregations, `${step}:seq`, seq);
  }

  /** The plans of every aggregation opened so far. */
  async aggregations(id: string): Promise<string[]> {
    const all = await this.redis.hgetall(this.k(id).aggregations);
    // In step order: a hash keeps no order of its own.
    return Object.entries(all)
      .filter(([f]) => !f.includes(':'))
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([, v]) => v);
  }

  /**
   * Deletes an ended program's keys and its index entries; answers how many keys went. Its meta hash goes
   * last, so a delete interrupted half way is finished by the next one (the program still reads as ended).
   */
  async delete(id: string, population: string): Promise<number> {
    const k = this.k(id);
    const deleted = await this.redis.del(
      k.doc,
      k.requests,
      k.sessions,
      k.devices,
      k.values,
      k.aggregations,
      k.lock,
    );
    await this.redis.srem(this.keys.global.activePrograms, id);
    await this.redis.srem(this.keys.global.populationPrograms(population), id);
    await this.redis.zrem(this.keys.global.programs, id);
    return deleted + (await this.redis.del(k.meta));
  }

  /** Takes the driver's lock for `ttlMs`; false when another driver holds it. */
  async lock(id: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.k(id).lock, token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async unlock(id: string, token: string): Promise<void> {
    await UNLOCK.run(this.redis, [this.k(id).lock], [token]);
  }
}

function sessionRecord(id: string, f: Record<string, string | null | undefined>): SessionRecord {
  return {
    id,
    device: f.device!,
    status: f.status as SessionStatus,
    answered: Number(f.answered ?? 0),
    seen: Number(f.seen ?? 0),
    ...(f.code ? { code: f.code as ErrorCode } : {}),
    ...(f.reason ? { reason: f.reason } : {}),
  };
}
