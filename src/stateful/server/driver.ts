/**
 * The server's driver of stateful programs (docs/stateful.md, "Running a program"): it moves each program
 * through its steps with every bit of progress in Redis, so that any worker process can take a program over
 * (a lock with a TTL names the one driving it now) and a restarted server resumes where it was.
 *
 * - Recruiting ends at the cohort's target, or at the join deadline with at least `min_clients` devices.
 * - Server steps run in the plan isolates (`callProgram`); their values are stored as bundles.
 * - Client steps become requests appended to the program's request list, with the move to the next step
 *   in one atomic step; every live session reads them from there (the requests are the same for every
 *   device, handle `h<step>`).
 * - An aggregate opens a one-round plan (`aggregationPlan`) for the live sessions, issues the `contribute`
 *   request, and waits for the plan: a completed round's state is the aggregate, a failed one fails the
 *   program. Once every live session has answered its contribution, the round closes without waiting for
 *   its deadline.
 * - A session silent for `step_timeout_s` while it owes answers fails; whenever sessions fail, the program
 *   fails if an aggregation still to come needs more devices than are live.
 */
import { randomUUID } from 'node:crypto';
import { decodeBundle } from '../../codec';
import { programCallArgument } from '../../isolate/program-argument';
import { disposeValue } from '../../compute/value';
import { valueToJson } from '../../compute/value-json';
import type { Limits } from '../../compute/limits';
import { isPlanFault } from '../../isolate/contract';
import type { Logger } from '../../log/logger';
import type { Engine, Jobs } from '../../rounds/contracts';
import type { RoundStore } from '../../store/types';
import { aggregationPlan } from '../aggregation-plan';
import { checkProgram, type CheckedProgram } from '../check';
import { secureSumSpec, type AggregationStep, type Step } from '../program';
import type { ProgramStore, ProgramSummary, StoredRequest } from './program-store';

/** Runs a program's server computation in an isolate: the bundle of `fn`'s result. */
export interface ProgramCaller {
  callProgram(
    program: { readonly id: string; readonly document: unknown },
    task: { readonly fn: string; readonly arg?: Uint8Array; readonly round: number },
  ): Promise<Uint8Array>;
}

export interface DriverDeps {
  readonly programs: ProgramStore;
  readonly store: RoundStore;
  readonly engine: Pick<Engine, 'submitPlan'>;
  readonly jobs: Pick<Jobs, 'finalize'>;
  readonly caller: ProgramCaller;
  readonly limits: Limits;
  readonly log: Logger;
}

/** The population an aggregation plan is published to: not a name a device can check in to. */
export function aggregationPopulation(program: string): string {
  return `~p.${program}`;
}

/** Steps one `advance` runs at most before it lets other programs have the driver. */
const STEPS_PER_ADVANCE = 64;

/** Stops a program's run with a reason (the program fails with it). */
class ProgramFailure extends Error {}

export class ProgramDriver {
  private readonly checked = new Map<string, CheckedProgram>();

  constructor(private readonly deps: DriverDeps) {}

  /**
   * Moves program `id` on as far as it can go now; answers whether it is still active. Callers hold the
   * program's lock (`DriverLoop`), but every move is conditional in Redis, so a second driver does no harm.
   */
  async advance(id: string, now = Date.now()): Promise<boolean> {
    const { programs } = this.deps;
    let p = await programs.get(id);
    if (!p) return false;
    if (p.status === 'recruiting') {
      if (!(await this.recruit(p, now))) return true;
      p = (await programs.get(id))!;
    }
    if (p.status !== 'running') return false;
    const checked = await this.checkedProgram(id);
    try {
      for (let n = 0; n < STEPS_PER_ADVANCE; n++) {
        p = (await programs.get(id))!;
        if (p.status !== 'running') return false;
        await this.timeOutSessions(p, checked, now);
        p = (await programs.get(id))!;
        this.checkMinimums(p, checked);
        if (p.step >= checked.program.steps.length) {
          await this.complete(p, checked, now);
          return false;
        }
        if (!(await this.runStep(p, checked, now))) return true;
      }
      return true;
    } catch (e) {
      if (!(e instanceof ProgramFailure)) throw e;
      await this.fail(p, e.message, now);
      return false;
    }
  }

  /** Ends recruiting when it should; answers whether the program now runs. */
  private async recruit(p: ProgramSummary, now: number): Promise<boolean> {
    const { programs, log } = this.deps;
    // Live sessions count, not joins: a device that left while recruiting is not in the cohort.
    if (p.live >= p.target_clients || (now >= p.join_deadline && p.live >= p.min_clients)) {
      const moved = await programs.move(p.id, 'recruiting', 'running', { started_at: now });
      if (moved) log.info({ program: p.id, cohort: p.live }, 'program cohort formed; running');
      return moved;
    }
    if (now >= p.join_deadline) {
      await this.fail(
        p,
        `recruiting: ${p.live} devices joined within join_timeout_s and stayed, fewer than the cohort's min_clients (${p.min_clients})`,
        now,
        'recruiting',
      );
    }
    return false;
  }

  /** Runs step `p.step`; answers false when the program must wait (an aggregation in progress). */
  private async runStep(p: ProgramSummary, checked: CheckedProgram, now: number): Promise<boolean> {
    const { programs } = this.deps;
    const index = p.step;
    const step = checked.program.steps[index]!;
    const handle = `h${index}`;
    const handles = this.handlesOf(checked);
    const issue = async (request?: StoredRequest): Promise<boolean> => {
      await programs.issue(p.id, index, index + 1, request ? [request] : [], now);
      return true;
    };
    switch (step.op) {
      case 'server_call':
        await this.serverCall(p.id, checked, step, index);
        return issue();
      case 'broadcast':
        return issue({
          kind: 'create_value',
          handle,
          type: checked.types.get(step.value)!,
          value: step.value,
        });
      case 'client_data':
        return issue({ kind: 'create_data', handle, collection: step.collection });
      case 'client_call':
        return issue({
          kind: 'create_call',
          handle,
          fn: step.fn,
          args: (step.args ?? []).map((a) => handles.get(a)!),
        });
      case 'client_struct':
        return issue({
          kind: 'create_struct',
          handle,
          fields: step.fields.map((f) => ({
            ...(f.name !== undefined ? { name: f.name } : {}),
            handle: handles.get(f.value)!,
          })),
        });
      case 'client_select':
        return issue({
          kind: 'create_selection',
          handle,
          source: handles.get(step.value)!,
          field: step.field,
        });
      case 'dispose':
        return issue({ kind: 'dispose', handles: step.values.map((v) => handles.get(v)!) });
      case 'aggregate':
      case 'secure_sum':
        return this.aggregate(p, checked, index, handles.get(step.value)!, now);
    }
  }

  private async serverCall(
    id: string,
    checked: CheckedProgram,
    step: Extract<Step, { op: 'server_call' }>,
    index: number,
  ): Promise<void> {
    const { programs, caller } = this.deps;
    const args = [];
    for (const name of step.args ?? []) {
      const bytes = await programs.value(id, name);
      if (!bytes) throw new Error(`program ${id}: server value ${name} is missing`);
      args.push({ bytes, type: checked.types.get(name)! });
    }
    const arg = programCallArgument(checked.signatures[step.fn]!.parameter, args);
    let result: Uint8Array;
    try {
      result = await caller.callProgram(
        { id, document: checked.program },
        { fn: step.fn, ...(arg ? { arg } : {}), round: index },
      );
    } catch (e) {
      // A fault of the computation fails the program; an infrastructure fault is retried by the loop.
      if (isPlanFault(e)) throw new ProgramFailure(`step ${index} (server_call ${step.fn}): ${e.message}`);
      throw e;
    }
    await programs.setValue(id, step.result, result);
  }

  /** Opens, watches and closes step `index`'s aggregation; answers true once its result is stored. */
  private async aggregate(
    p: ProgramSummary,
    checked: CheckedProgram,
    index: number,
    handle: string,
    now: number,
  ): Promise<boolean> {
    const { programs, store, engine, jobs, log } = this.deps;
    const step = checked.program.steps[index] as AggregationStep;
    let agg = await programs.aggregation(p.id, index);
    if (!agg) {
      const deadlineS = step.deadline_s ?? checked.program.cohort.step_timeout_s;
      const plan = aggregationPlan(checked, index, { clients: p.live, deadlineS });
      const summary = await engine.submitPlan(plan, now, aggregationPopulation(p.id));
      const planId = await programs.setAggregation(p.id, index, summary.id);
      agg = { plan: planId };
      log.info({ program: p.id, step: index, plan: planId, clients: p.live }, 'program aggregation opened');
    }
    if (agg.seq === undefined) {
      const seq = await programs.issue(
        p.id,
        index,
        index,
        [
          {
            kind: 'contribute',
            aggregation: step.result,
            handle,
            plan: agg.plan,
            ...(step.op === 'secure_sum' ? { secure_sum: secureSumSpec(step) } : {}),
          },
        ],
        now,
      );
      if (seq !== undefined) await programs.setAggregationSeq(p.id, index, seq);
      return false;
    }
    // Attempt 1 is the aggregation: a failed one (below its minimum, a plan fault) fails the program; the
    // attempts the engine would open after it are cancelled with the program.
    const ref = { plan: agg.plan, round: 1, attempt: 1 };
    const round = await store.getRound(ref);
    if (!round) throw new ProgramFailure(`step ${index} (${step.op} ${step.result}): its plan is gone`);
    if (round.phase === 'completed') {
      const state = await store.getState(agg.plan);
      if (!state) throw new Error(`aggregation plan ${agg.plan} completed without a state`);
      await programs.setValue(p.id, step.result, state);
      await programs.issue(p.id, index, index + 1, []);
      log.info(
        { program: p.id, step: index, plan: agg.plan, clients: round.aggregated_clients },
        'program aggregation released',
      );
      return true;
    }
    if (round.phase === 'failed') {
      throw new ProgramFailure(
        `step ${index} (${step.op} ${step.result}): ${round.error ?? 'its round failed'}`,
      );
    }
    // Every live session answered its contribution: close the round now rather than at its deadline.
    if (round.phase === 'reporting' || round.phase === 'selecting') {
      const sessions = await programs.sessions(p.id);
      const live = sessions.filter((s) => s.status === 'live');
      if (live.length > 0 && live.every((s) => s.answered >= agg.seq!)) {
        const closed = await store.close(ref, now);
        if (closed.changed) await jobs.finalize(ref);
      }
    } else if (round.phase === 'closed') {
      await jobs.finalize(ref);
    }
    return false;
  }

  /**
   * Fails every live session that owes answers and has been silent for `step_timeout_s`: since its last
   * contact or since requests last went out, whichever is later (a device holding a poll when they went
   * out got them then; its poll's start is its last contact).
   */
  private async timeOutSessions(p: ProgramSummary, checked: CheckedProgram, now: number): Promise<void> {
    const { programs, log } = this.deps;
    const timeoutMs = checked.program.cohort.step_timeout_s * 1000;
    const issued = await programs.requestCount(p.id);
    for (const s of await programs.sessions(p.id)) {
      if (s.status !== 'live' || s.answered >= issued) continue;
      if (now - Math.max(s.seen, p.issued_at ?? 0) < timeoutMs) continue;
      const reason = `no answer for ${checked.program.cohort.step_timeout_s} s (step_timeout_s) at request ${s.answered + 1}`;
      if (await programs.endSession(p.id, s.id, 'failed', 'SESSION_TIMEOUT', reason)) {
        log.info({ program: p.id, session: s.id, reason }, 'session timed out');
      }
    }
  }

  /** Fails the program when an aggregation from its current step on needs more devices than are live. */
  private checkMinimums(p: ProgramSummary, checked: CheckedProgram): void {
    const steps = checked.program.steps;
    for (let j = p.step; j < steps.length; j++) {
      const s = steps[j]!;
      if ((s.op === 'aggregate' || s.op === 'secure_sum') && s.min_clients > p.live) {
        throw new ProgramFailure(
          `${p.live} devices are live, fewer than the min_clients (${s.min_clients}) of step ${j} (${s.op} ${s.result})`,
        );
      }
    }
  }

  private async complete(p: ProgramSummary, checked: CheckedProgram, now: number): Promise<void> {
    const { programs, log } = this.deps;
    const outputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(checked.program.outputs)) {
      const bytes = await programs.value(p.id, value);
      if (!bytes) throw new Error(`program ${p.id}: output value ${value} is missing`);
      const v = decodeBundle(bytes, checked.types.get(value)!);
      try {
        outputs[name] = valueToJson(v);
      } finally {
        disposeValue(v);
      }
    }
    if (
      await programs.move(p.id, 'running', 'completed', { outputs: JSON.stringify(outputs), ended_at: now })
    ) {
      log.info({ program: p.id }, 'program completed');
    }
  }

  private async fail(
    p: ProgramSummary,
    error: string,
    now: number,
    from: 'recruiting' | 'running' = 'running',
  ): Promise<void> {
    const { programs, store, log } = this.deps;
    if (!(await programs.move(p.id, from, 'failed', { error, error_step: p.step, ended_at: now }))) return;
    log.warn({ program: p.id, step: p.step, error }, 'program failed');
    // An aggregation still open takes no more contributions: nothing more is released.
    for (const plan of await programs.aggregations(p.id)) {
      const s = await store.getPlan(plan);
      if (s && (s.status === 'active' || s.status === 'paused'))
        await store.setStatus(plan, 'cancelled', now);
    }
  }

  /** The handle of every client value: `h<index of the step that defines it>`. */
  private handlesOf(checked: CheckedProgram): Map<string, string> {
    const handles = new Map<string, string>();
    checked.program.steps.forEach((s, i) => {
      if ('result' in s && checked.placements.get(s.result) === 'clients') handles.set(s.result, `h${i}`);
    });
    return handles;
  }

  private async checkedProgram(id: string): Promise<CheckedProgram> {
    let c = this.checked.get(id);
    if (!c) {
      const doc = await this.deps.programs.document(id);
      if (!doc) throw new Error(`program ${id} has no document`);
      c = checkProgram(JSON.parse(doc), this.deps.limits);
      this.checked.set(id, c);
    }
    return c;
  }
}

/** How often the loop looks at the active programs. */
const LOOP_MS = 200;
/**
 * How long a driver holds a program's lock; a driver that dies frees the program after this. A pass that
 * outlives it may meet a second driver, which does no harm: every move is conditional in Redis, and a
 * server call run twice stores the same value.
 */
const LOCK_MS = 10_000;

/**
 * Drives every active program from one process: each pass takes each program's lock, advances it and lets
 * it go. Several processes may run loops; a program is driven by one at a time.
 */
export class DriverLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly token = randomUUID();

  constructor(
    private readonly driver: ProgramDriver,
    private readonly programs: ProgramStore,
    private readonly log: Logger,
    private readonly intervalMs = LOOP_MS,
  ) {}

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.running = this.pass()
        .catch((err: unknown) => this.log.warn({ err }, 'program driver pass failed; will retry'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One pass over the active programs. */
  async pass(now?: number): Promise<void> {
    for (const id of await this.programs.active()) {
      if (!(await this.programs.lock(id, this.token, LOCK_MS))) continue;
      try {
        await this.driver.advance(id, now ?? Date.now());
      } catch (err) {
        this.log.warn({ err, program: id }, 'program step failed; will retry');
      } finally {
        await this.programs.unlock(id, this.token);
      }
    }
  }
}
