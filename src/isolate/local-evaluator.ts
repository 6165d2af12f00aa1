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
import type {
  FinalizeResult,
  FinalizeTask,
  FoldResult,
  FoldTask,
  PlanEvaluator,
  PlanRef,
  RoundMaterials,
} from './contract';

/** Checked plans kept per evaluator; a plan checked again after eviction costs one `checkPlan`. */
const PLANS_KEPT = 32;

/**
 * {@link PlanEvaluator} in the calling thread, on the TensorFlow.js backend the caller initialised. The
 * isolates run their tasks with it, and so may the local runner, the simulator and tests; it gives no
 * protection against a plan that aborts the backend (that is what `IsolatePool` is for).
 */
export class LocalEvaluator implements PlanEvaluator {
  private readonly plans = new Map<string, CheckedPlan>();

  constructor(private readonly limits: Limits) {}

  /** The checked plan of `ref`: from the cache by id, else checked now (throws PLAN_* errors). */
  planOf(ref: PlanRef): CheckedPlan {
    let checked = this.plans.get(ref.id);
    if (checked) {
      // Map order is insertion order: re-inserting keeps the most recently used last.
      this.plans.delete(ref.id);
    } else {
      checked = ref.checked ?? checkPlan(ref.document, this.limits);
    }
    this.plans.set(ref.id, checked);
    if (this.plans.size > PLANS_KEPT) this.plans.delete(this.plans.keys().next().value!);
    return checked;
  }

  /** Whether the plan is checked and kept here already (isolates ask before the host sends a document). */
  has(id: string): boolean {
    return this.plans.has(id);
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

  ready(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.plans.clear();
    return Promise.resolve();
  }

  private interpreter(checked: CheckedPlan): Interpreter {
    return new Interpreter(checked.plan.functions ?? {}, this.limits);
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
