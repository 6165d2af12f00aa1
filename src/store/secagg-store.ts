/**
 * The Redis side of an attempt's SecAgg+ exchange (docs/server.md, "Secure aggregation"): the cohort's public
 * keys, the routed share ciphertexts, the survivor sets and the unmasking shares, all under the plan's hash
 * tag, deleted with the attempt (complete and fail). Every step that decides is one script
 * (scripts/secagg.ts); reads are plain.
 */
import type { RedisClient } from './redis-client';
import type { SecAggSetup } from '../secagg/setup';
import type { Keys } from './keys';
import { isPhase } from './parse';
import { exec, tuple } from './replies';
import { secAggDeadline } from './round-clock';
import { SCRIPTS } from './scripts';
import type { Phase, PublicKeys, RoundRef, SecAggRefusal, SecAggStore, SecAggView, StepResult } from './types';

/** The SecAgg exchange of a Redis round store. */
export class RedisSecAggStore implements SecAggStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** The attempt's setup and counts, with the task's index; undefined when the attempt runs no SecAgg. */
  async view(ref: RoundRef, task: string): Promise<SecAggView | undefined> {
    const k = this.keys.round(ref);
    const [[phase, secagg, advertised], index] = (await exec(
      this.redis.multi().hmget(k.round, 'phase', 'secagg', 'advertised').hget(k.secagg.index, task),
    )) as [(string | null)[], string | null];
    if (!secagg || !isPhase(phase)) return undefined;
    return {
      phase,
      setup: JSON.parse(secagg) as SecAggSetup,
      n: Number(advertised ?? 0),
      ...(index === null ? {} : { index: Number(index) }),
    };
  }

  async phase(ref: RoundRef): Promise<Phase | undefined> {
    const phase = await this.redis.hget(this.keys.round(ref).round, 'phase');
    return isPhase(phase) ? phase : undefined;
  }

  /**
   * Until when the attempt's task tokens authorize SecAgg steps (unix ms): the reporting deadline until the
   * attempt closes, then the unmasking deadline (later by a pause); undefined after, or without SecAgg.
   */
  deadline(ref: RoundRef, now: number): Promise<number | undefined> {
    return secAggDeadline(this.redis, this.keys, ref, now);
  }

  /** Which of `indexes` are in U2 (`shared`), U3 (`uploaded`) or U4 (`answered`), in order. */
  async members(
    ref: RoundRef,
    set: 'shared' | 'uploaded' | 'answered',
    indexes: readonly number[],
  ): Promise<boolean[]> {
    if (indexes.length === 0) return [];
    const flags = await this.redis.smismember(this.keys.round(ref).secagg[set], ...indexes.map(String));
    return flags.map((f) => f === 1);
  }

  /** The attempt's setup (for the finalizer); undefined when it runs no SecAgg. */
  async setup(ref: RoundRef): Promise<SecAggSetup | undefined> {
    const secagg = await this.redis.hget(this.keys.round(ref).round, 'secagg');
    return secagg ? (JSON.parse(secagg) as SecAggSetup) : undefined;
  }

  /** R0: records a task's public keys; `ended` when its advertisement closed selection. */
  async advertise(
    ref: RoundRef,
    task: string,
    keys: PublicKeys,
    now: number,
  ): Promise<StepResult<{ index: number; ended: boolean }>> {
    const k = this.keys.round(ref);
    const [answer, a, b] = tuple(
      await SCRIPTS.secAggAdvertise.run(
        this.redis,
        [k.round, k.tasks, k.secagg.index, k.secagg.keys],
        [task, `${keys.c}.${keys.s}`, now],
      ),
    );
    if (answer === 'ok') return { ok: true, index: Number(a), ended: b === '1' };
    return refusal(answer, a);
  }

  /** The public keys of cohort members, by index (members without keys are left out). */
  async publicKeys(ref: RoundRef, indexes: readonly number[]): Promise<Map<number, PublicKeys>> {
    const list = this.keys.round(ref).secagg.keys;
    const pipeline = this.redis.pipeline();
    for (const i of indexes) pipeline.lindex(list, i);
    const replies = (await exec(pipeline)) as (string | null)[];
    const out = new Map<number, PublicKeys>();
    replies.forEach((v, at) => {
      const [c, s] = (v ?? '').split('.');
      if (c && s) out.set(indexes[at]!, { c, s });
    });
    return out;
  }

  /** Every cohort member's public keys, index order (for the finalizer). */
  async allPublicKeys(ref: RoundRef): Promise<PublicKeys[]> {
    const list = await this.redis.lrange(this.keys.round(ref).secagg.keys, 0, -1);
    return list.map((v) => {
      const [c, s] = v.split('.');
      return { c: c!, s: s! };
    });
  }

  /** R1: stores a member's encrypted shares; `ended` when the last member's shares moved on to reporting. */
  async share(
    ref: RoundRef,
    task: string,
    shares: readonly { readonly to: number; readonly ct: string }[],
    now: number,
  ): Promise<StepResult<{ ended: boolean }>> {
    const k = this.keys.round(ref);
    const [answer, a] = tuple(
      await SCRIPTS.secAggShare.run(
        this.redis,
        [k.round, k.secagg.index, k.secagg.shared, k.secagg.inbox],
        [task, now, ...shares.flatMap((s) => [s.to, s.ct])],
      ),
    );
    if (answer === 'ok') return { ok: true, ended: a === '1' };
    return refusal(answer, a);
  }

  /** The ciphertexts addressed to `index` from each of `from` that sent its shares (sender order). */
  async inbox(
    ref: RoundRef,
    index: number,
    from: readonly number[],
  ): Promise<{ readonly from: number; readonly ct: string }[]> {
    if (from.length === 0) return [];
    const cts = await this.redis.hmget(
      this.keys.round(ref).secagg.inbox,
      ...from.map((j) => `${index}:${j}`),
    );
    return from.flatMap((j, at) => (cts[at] ? [{ from: j, ct: cts[at] }] : []));
  }

  /** U2 and U3 as sets of cohort indexes. */
  async survivors(ref: RoundRef): Promise<{ shared: Set<number>; uploaded: Set<number> }> {
    const k = this.keys.round(ref).secagg;
    const [shared, uploaded] = (await exec(this.redis.multi().smembers(k.shared).smembers(k.uploaded))) as [
      string[],
      string[],
    ];
    return { shared: new Set(shared.map(Number)), uploaded: new Set(uploaded.map(Number)) };
  }

  /** R3: stores a survivor's unmasking shares (the script checks each share's kind against U2 and U3). */
  async unmask(
    ref: RoundRef,
    task: string,
    shares: readonly { readonly of: number; readonly kind: 'b' | 's'; readonly share: string }[],
  ): Promise<StepResult<{ answered: number; reported: number }>> {
    const k = this.keys.round(ref);
    const [answer, a, b] = tuple(
      await SCRIPTS.secAggUnmask.run(
        this.redis,
        [k.round, k.secagg.index, k.secagg.shared, k.secagg.uploaded, k.secagg.answered, k.secagg.unmask],
        [task, ...shares.flatMap((s) => [s.of, s.kind, s.share])],
      ),
    );
    if (answer === 'ok') return { ok: true, answered: Number(a), reported: Number(b) };
    return refusal(answer, a);
  }

  /** Every unmasking share, by the index it is of: the kind and each giver's share (for the finalizer). */
  async unmaskShares(ref: RoundRef): Promise<Map<number, { kind: 'b' | 's'; shares: string[] }>> {
    const all = await this.redis.hgetall(this.keys.round(ref).secagg.unmask);
    const out = new Map<number, { kind: 'b' | 's'; shares: string[] }>();
    for (const [field, value] of Object.entries(all)) {
      const of = Number(field.slice(0, field.indexOf(':')));
      const kind = value.slice(0, 1) as 'b' | 's';
      const entry = out.get(of) ?? { kind, shares: [] };
      if (entry.kind !== kind) throw new Error(`the unmasking shares of ${of} mix kinds`);
      entry.shares.push(value.slice(2));
      out.set(of, entry);
    }
    return out;
  }
}

const REFUSALS: ReadonlySet<string> = new Set<SecAggRefusal>([
  'TASK_UNKNOWN',
  'SECAGG_OFF',
  'SECAGG_KEYS_CHANGED',
  'SECAGG_PHASE',
  'SECAGG_NOT_IN_COHORT',
  'SECAGG_ALREADY_SENT',
  'SECAGG_NOT_SURVIVOR',
  'SECAGG_WRONG_SHARE',
]);

function refusal(
  answer: string | undefined,
  detail: string | undefined,
): { ok: false; code: SecAggRefusal; detail?: string } {
  if (answer === undefined || !REFUSALS.has(answer))
    throw new Error(`a SecAgg script answered ${String(answer)}`);
  return { ok: false, code: answer as SecAggRefusal, ...(detail === undefined ? {} : { detail }) };
}
