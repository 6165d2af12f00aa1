/**
 * Held-out evaluation of a plan's server state, as the local runner does it: the state bundle decoded with
 * the plan's S type and the plan's `evaluate` computation run on the held-out examples.
 */
import { decodeBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import { disposeValue, structValue, type SequenceValue } from '../compute/value';
import { valueToJson, type JsonValue } from '../compute/value-json';
import { toBatches, type ClientExamples } from '../data';
import { checkPlan, type CheckedPlan } from '../plan/validate';

/** Runs a plan's `evaluate` on fixed held-out examples; create it only for plans that have one. */
export class HeldOutEvaluator {
  private readonly checked: CheckedPlan;
  private readonly interpreter: Interpreter;
  private batches: SequenceValue | undefined;

  constructor(plan: unknown, heldOut: ClientExamples) {
    this.checked = checkPlan(plan);
    const { plan: p } = this.checked;
    if (!p.evaluate) throw new Error(`plan ${p.name} has no evaluate computation`);
    this.interpreter = new Interpreter(p.functions ?? {});
    // Built once: the same batches serve every round, and the fold does not consume them.
    this.batches = toBatches(heldOut, p.client_data.element, p.client_data.batch_size);
  }

  /** Whether a plan (JSON) has an `evaluate` computation. */
  static supports(plan: unknown): boolean {
    return typeof (plan as { evaluate?: unknown } | null)?.evaluate === 'object';
  }

  /** The metrics of a server state bundle, e.g. `{loss, accuracy, examples}`. */
  evaluate(state: Uint8Array, round: number): JsonValue {
    if (!this.batches) throw new Error('the evaluator is disposed');
    const S = decodeBundle(state, this.checked.types.S);
    try {
      const metrics = this.interpreter.run(
        this.checked.plan.evaluate!,
        structValue([
          [undefined, S],
          [undefined, this.batches],
        ]),
        { round, label: 'evaluate' },
      );
      try {
        return valueToJson(metrics);
      } finally {
        disposeValue(metrics);
      }
    } finally {
      disposeValue(S);
    }
  }

  /** Releases the held-out tensors. */
  dispose(): void {
    if (this.batches) disposeValue(this.batches);
    this.batches = undefined;
  }
}

/** The `accuracy` of an evaluation, when it reports one. */
export function accuracyOf(metrics: JsonValue | undefined): number | undefined {
  if (metrics === undefined || typeof metrics !== 'object' || Array.isArray(metrics)) return undefined;
  const a = metrics.accuracy;
  return typeof a === 'number' ? a : undefined;
}
