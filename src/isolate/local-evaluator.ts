import { foldUploads } from '../aggregation/fold';
import { checkSecureSumParams } from '../aggregation/secure-sum';
import { base64ToBytes, decodeBundle, encodeBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import type { Limits } from '../compute/limits';
import { disposeValue, type Value } from '../compute/value';
import { AppError } from '../errors';
import { checkPlan, type CheckedPlan } from '../plan/validate';
import { allSecureParams, runSlot, SECURE_KINDS } from '../rounds/form-steps';
import { finalizeRound, nonFinitePath } from '../rounds/finalize-step';
import { checkProgram, type CheckedProgram } from '../stateful/check';
import { programComputation, runServerComputation } from '../stateful/server-call';
import type {
  FinalizeResult,
  FinalizeTask,
  FoldResult,
  FoldTask,
  PlanEvaluator,
  PlanRef,
  ProgramCallTask,
  ProgramEvaluator,
  ProgramRef,
  RoundMaterials,
} from './contract';
import { documentKey, type DocumentKind } from './protocol';

/**
 * Checked documents (plans and programs together) kept per evaluator; one checked again after eviction
 * costs one `checkPlan` or `checkProgram`. One bound for both, so that an isolate's memory does not grow
 * with the kinds of documents, and the host's record of what it sent (Isolate's SEEN_KEPT) mirrors it.
 */
const DOCUMENTS_KEPT = 32;

/**
 * {@link PlanEvaluator} and {@link ProgramEvaluator} in the calling thread, on the TensorFlow.js backend the
 * caller initialised. The isolates run their tasks with it, and so may the local runner, the simulator and
 * tests; it gives no protection against a plan that aborts the backend (that is what `IsolatePool` is for).
 */
export class LocalEvaluator implements PlanEvaluator, ProgramEvaluator {
  /** Checked documents by `documentKey`, least recently used first. */
  private readonly kept = new Map<string, CheckedPlan | CheckedProgram>();

  constructor(private readonly limits: Limits) {}

  /** The checked plan of `ref`: from the cache by id, else checked now (throws PLAN_* errors). */
  planOf(ref: PlanRef): CheckedPlan {
    return this.keep(documentKey('plan', ref.id), () => ref.checked ?? checkPlan(ref.document, this.limits));
  }

  /** The checked program of `ref`: from the cache by id, else checked now (throws PLAN_*, PROGRAM_*). */
  programOf(ref: ProgramRef): CheckedProgram {
    return this.keep(
      documentKey('program', ref.id),
      () => ref.checked ?? checkProgram(ref.document, this.limits),
    );
  }

  /** Whether the document is checked and kept here already (isolates ask before the host sends one). */
  has(kind: DocumentKind, id: string): boolean {
    return this.kept.has(documentKey(kind, id));
  }

  initialize(ref: PlanRef): Promise<Uint8Array> {
    return attempt(() => {
      const checked = this.planOf(ref);
      const { plan, types } = checked;
      const S = plan.initialize
        ? this.interpreter(checked).run(plan.initialize, undefined, { round: 0, label: 'initialize' })
        : decodeBundle(base64ToBytes(plan.initial_state!.data), types.S);
      try {
        const bytes = encodeBundle(S, types.S);
        const bad = nonFinitePath(bytes, types.S);
        if (bad !== undefined)
          throw new AppError('EVAL_ERROR', `initialize gave a non-finite value at ${bad}`);
        return bytes;
      } finally {
        disposeValue(S);
      }
    });
  }

  materials(ref: PlanRef, state: Uint8Array, round: number): Promise<RoundMaterials> {
    return attempt(() => {
      const checked = this.planOf(ref);
      const interpreter = this.interpreter(checked);
      const owned: Value[] = [];
      try {
        const S = decodeBundle(state, checked.types.S, { requireFinite: false });
        owned.push(S);
        const C = runSlot(interpreter, checked.plan, 'prepare', round, S);
        owned.push(C);
        const broadcast = encodeBundle(C, checked.types.C);
        const secureParams = allSecureParams(interpreter, checked, round);
        for (const kind of SECURE_KINDS) checkSecureSumParams(kind, secureParams[kind]);
        return { broadcast, secureParams };
      } finally {
        for (const v of owned) disposeValue(v);
      }
    });
  }

  fold(ref: PlanRef, task: FoldTask): Promise<FoldResult> {
    return attempt(() => foldUploads(this.planOf(ref), task, this.limits));
  }

  finalize(ref: PlanRef, task: FinalizeTask): Promise<FinalizeResult> {
    // Async (SecAgg's share combination), so a throw is a rejection already.
    return finalizeRound(this.planOf(ref), task, this.limits);
  }

  callProgram(ref: ProgramRef, task: ProgramCallTask): Promise<Uint8Array> {
    return attempt(() => {
      const checked = this.programOf(ref);
      const { fn } = task;
      programComputation(checked.program, fn); // REQUEST_INVALID for a name the program does not define
      // The static signature (as the reference runner types server values), not the shapes computed.
      const { parameter, result } = checked.signatures[fn]!;
      if (parameter && task.arg === undefined) {
        throw new AppError('REQUEST_INVALID', `computation "${fn}" takes a parameter; the call gives none`);
      }
      if (!parameter && task.arg !== undefined) {
        throw new AppError('REQUEST_INVALID', `computation "${fn}" takes no parameter; the call gives one`);
      }
      // Non-finite floats pass: the reference runner hands server values over as they are.
      const arg = parameter && decodeBundle(task.arg!, parameter, { requireFinite: false });
      const interpreter = new Interpreter(checked.program.functions ?? {}, this.limits);
      let value: Value;
      try {
        value = runServerComputation(interpreter, checked.program, fn, arg, task.round);
      } finally {
        // The interpreter clones what it passes through, so the argument is ours to free.
        if (arg) disposeValue(arg);
      }
      try {
        const bytes = encodeBundle(value, result);
        const bad = nonFinitePath(bytes, result);
        if (bad !== undefined) {
          throw new AppError('EVAL_ERROR', `${fn} gave a non-finite value at ${bad.replace(/^S/, 'result')}`);
        }
        return bytes;
      } finally {
        disposeValue(value);
      }
    });
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.kept.clear();
    return Promise.resolve();
  }

  private interpreter(checked: CheckedPlan): Interpreter {
    return new Interpreter(checked.plan.functions ?? {}, this.limits);
  }

  /** The kept document under `key`, made most recently used; `make` checks it when it is not kept. */
  private keep<T extends CheckedPlan | CheckedProgram>(key: string, make: () => T): T {
    // The key names the kind (documentKey), so what is kept under it is a T.
    let kept = this.kept.get(key) as T | undefined;
    if (kept) {
      // Map order is insertion order: re-inserting keeps the most recently used last.
      this.kept.delete(key);
    } else {
      kept = make();
    }
    this.kept.set(key, kept);
    if (this.kept.size > DOCUMENTS_KEPT) this.kept.delete(this.kept.keys().next().value!);
    return kept;
  }
}

/** Runs a synchronous task as a promise, so that a throw becomes a rejection. */
function attempt<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}
