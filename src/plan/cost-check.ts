import { CostBudgetError, CostModel, CostShapeError, type Cost, type NodeCost } from '../compute/cost';
import type { Limits } from '../compute/limits';
import { structType, type TffType } from '../compute/types';
import type { ErrorDetail } from '../errors';
import type { Computation } from '../generated/computation';
import type { Plan } from '../generated/plan';
// Type only, so no cycle at run time: validate.ts calls costErrors once it has derived the form's types.
import type { FormTypes } from './form-types';

/** The estimate of one computation of a plan, for tools that show costs (and for the limits below). */
export interface ComputationCost {
  /** `initialize`, a form slot (`accumulate`) or `evaluate`. */
  readonly label: string;
  /** The computation's JSON pointer in the plan. */
  readonly pointer: string;
  /** Whether it runs on clients (`work`, `evaluate`) rather than on the server or a worker. */
  readonly client: boolean;
  readonly cost: Cost;
}

/** Computations that run over client data; every other one runs on the server or a worker. */
const CLIENT_COMPUTATIONS = new Set(['work', 'evaluate']);

/** How many node visits an estimate may take, per node of the plan (functions are costed per call type). */
const VISITS_PER_PLAN_NODE = 4;

/** A computation whose cost cannot be estimated, located at its failing top-level node. */
export class PlanCostError extends Error {
  constructor(readonly detail: ErrorDetail) {
    super(`${detail.path}: ${detail.message}`);
    this.name = 'PlanCostError';
  }
}

/**
 * The type each computation is given when a round (or a tool) runs it, from the form's types: a declared
 * `float32[?]` costs what the tensor really passed costs. Client data's unknown (batch) dimensions stay
 * unknown here; the model takes them as `client_data.batch_size`.
 */
function parameterTypes(t: FormTypes): Readonly<Record<string, TffType | undefined>> {
  const pair = (a: TffType, b: TffType) =>
    structType([
      [undefined, a],
      [undefined, b],
    ]);
  const aggregates = structType([
    [undefined, t.R],
    [undefined, t.V[0]],
    [undefined, t.V[1]],
    [undefined, t.V[2]],
  ]);
  return {
    prepare: t.S,
    work: pair(t.D, t.C),
    accumulate: pair(t.A, t.U),
    merge: pair(t.A, t.A),
    report: t.A,
    update: pair(t.S, aggregates),
    evaluate: pair(t.S, t.D),
  };
}

/**
 * Estimates every computation of a plan that has passed the type checker: `initialize`, each form slot and
 * `evaluate`, each given its parameter's real type from `types` (`initialize`, `zero` and the secure-sum
 * parameters take none), with the functions they reach costed as called. Throws CostBudgetError when the
 * call graph is too large to estimate, PlanCostError when a computation fails at the shapes it is given.
 */
export function planCosts(plan: Plan, types: FormTypes, limits: Limits): ComputationCost[] {
  const model = new CostModel({
    functions: plan.functions ?? {},
    batchSize: plan.client_data.batch_size,
    sequenceLength: limits.costClientBatches,
    maxTensorElements: limits.maxTensorElements,
    maxVisits: VISITS_PER_PLAN_NODE * limits.maxNodesPerPlan,
  });
  const params = parameterTypes(types);
  const entries: [string, string, Computation | undefined][] = [
    ['initialize', '/initialize', plan.initialize],
    ...Object.entries(plan.computations).map(
      ([slot, comp]) => [slot, `/computations/${slot}`, comp] as [string, string, Computation],
    ),
    ['evaluate', '/evaluate', plan.evaluate],
  ];
  return entries
    .filter((e): e is [string, string, Computation] => e[2] !== undefined)
    .map(([label, pointer, comp]) => ({
      label,
      pointer,
      client: CLIENT_COMPUTATIONS.has(label),
      cost: estimateAt(model, comp, params[label], label, pointer),
    }));
}

/** One computation's estimate at its parameter type; PlanCostError names the node the model fails at. */
export function estimateAt(
  model: CostModel,
  comp: Computation,
  parameter: TffType | undefined,
  label: string,
  pointer: string,
): Cost {
  try {
    return model.estimate(comp, parameter);
  } catch (e) {
    if (!(e instanceof CostShapeError)) throw e;
    throw new PlanCostError({
      path: `${pointer}/nodes/${e.index}`,
      message: `${label}: the cost cannot be estimated, since ${e.message}`,
    });
  }
}

/**
 * The problems of a type-checked plan whose estimated cost exceeds the configured limits: one per
 * computation and resource, located at the node that costs the most (docs/ir.md, "Cost model").
 */
export function costErrors(plan: Plan, types: FormTypes, limits: Limits): ErrorDetail[] {
  let costs: ComputationCost[];
  try {
    costs = planCosts(plan, types, limits);
  } catch (e) {
    if (e instanceof PlanCostError) return [e.detail];
    // A plan the model cannot estimate is refused rather than run unbounded.
    const why = e instanceof CostBudgetError ? e.message : `the cost model failed: ${String(e)}`;
    return [{ path: '', message: `the plan's cost cannot be estimated within the limit: ${why}` }];
  }
  return costLimitErrors(costs, limits);
}

/**
 * The problems of estimated costs over the configured limits (client limits for computations that run on
 * devices): one per computation and resource, located at the node that costs the most.
 */
export function costLimitErrors(costs: readonly ComputationCost[], limits: Limits): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  for (const { label, pointer, client, cost } of costs) {
    const [memLimit, memVar] = client
      ? [limits.maxClientPeakBytes, 'LIMIT_MAX_CLIENT_PEAK_BYTES']
      : [limits.maxPeakBytes, 'LIMIT_MAX_PEAK_BYTES'];
    const [flopLimit, flopVar] = client
      ? [limits.maxClientFlops, 'LIMIT_MAX_CLIENT_FLOPS']
      : [limits.maxFlops, 'LIMIT_MAX_FLOPS'];
    const per = client ? `per evaluation over ${limits.costClientBatches} batches` : 'per evaluation';
    if (cost.peakBytes > memLimit) {
      const node = largestAtPeak(cost);
      out.push({
        path: `${pointer}/nodes/${node.index}`,
        message:
          `${label}: estimated peak memory of ${bytesText(cost.peakBytes)} ${per} is more than the limit of ` +
          `${bytesText(memLimit)} (${memVar}); the largest part is ${nodeText(node)} with ` +
          `${bytesText(node.index === cost.peakAt ? node.peakBytes : node.retainedBytes)}`,
      });
    }
    if (cost.flops > flopLimit) {
      const node = cost.nodes.reduce((a, b) => (b.flops > a.flops ? b : a));
      out.push({
        path: `${pointer}/nodes/${node.index}`,
        message:
          `${label}: estimated ${flopsText(cost.flops)} FLOPs ${per} is more than the limit of ` +
          `${flopsText(flopLimit)} (${flopVar}); the costliest node is ${nodeText(node)} with ` +
          `${flopsText(node.flops)}`,
      });
    }
  }
  return out;
}

/** The node holding the most memory at the peak: an earlier node's retained bytes, or the peak node's own. */
function largestAtPeak(cost: Cost): NodeCost {
  let best = cost.nodes[0]!;
  let bestBytes = -1;
  for (const n of cost.nodes.slice(0, cost.peakAt + 1)) {
    const bytes = n.index === cost.peakAt ? n.peakBytes : n.retainedBytes;
    if (bytes > bestBytes) [best, bestBytes] = [n, bytes];
  }
  return best;
}

function nodeText(n: NodeCost): string {
  return `node "${n.name}" (${n.op}${n.via ? `, ${n.via}` : ''})`;
}

/** Bytes in SI units with the exact count, e.g. `6.78 GB (6777995264 bytes)`. */
export function bytesText(n: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) [v, u] = [v / 1000, u + 1];
  return u === 0 ? `${n} bytes` : `${v.toPrecision(3)} ${units[u]} (${n} bytes)`;
}

/** A FLOP count with three significant digits, e.g. `6.87e+11`. */
export function flopsText(n: number): string {
  return n < 1e4 ? String(n) : n.toExponential(2);
}
