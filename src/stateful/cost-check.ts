/**
 * The cost model applied to a program's computations (docs/ir.md, "Cost model"), as to a plan's: each
 * computation estimated at the types its steps call it with, against the client limits when devices run it
 * (`client_call`) and the server limits otherwise (server calls, and an aggregation's computations, which
 * the aggregation workers and the finalizer run). A program over a limit is refused before it is stored.
 */
import { CostBudgetError, CostModel } from '../compute/cost';
import type { Limits } from '../compute/limits';
import { structType, type Signature, type TffType } from '../compute/types';
import type { ErrorDetail } from '../errors';
import { costLimitErrors, estimateAt, PlanCostError, type ComputationCost } from '../plan/cost-check';
import type { Program } from './program';

/** How many node visits an estimate may take, per node of the program (as for plans). */
const VISITS_PER_NODE = 4;

/**
 * The computations of a type-checked program with the parameter type of each call: a computation called
 * with several types (a generic `float32[?]` parameter) is costed at each.
 */
function calls(
  program: Program,
  types: ReadonlyMap<string, TffType>,
  signatures: Readonly<Record<string, Signature>>,
): { fn: string; parameter: TffType | undefined }[] {
  const out = new Map<string, { fn: string; parameter: TffType | undefined }>();
  const add = (fn: string, parameter: TffType | undefined): void => {
    out.set(`${fn}\n${JSON.stringify(parameter ?? null)}`, { fn, parameter });
  };
  const argument = (args: readonly string[]): TffType | undefined =>
    args.length === 0
      ? undefined
      : args.length === 1
        ? types.get(args[0]!)
        : structType(args.map((a) => [undefined, types.get(a)!] as const));
  const pair = (a: TffType, b: TffType): TffType =>
    structType([
      [undefined, a],
      [undefined, b],
    ]);
  for (const step of program.steps) {
    if (step.op === 'server_call' || step.op === 'client_call') add(step.fn, argument(step.args ?? []));
    if (step.op === 'aggregate') {
      const A = signatures[step.zero]!.result;
      add(step.zero, undefined);
      add(step.accumulate, pair(A, types.get(step.value)!));
      add(step.merge, pair(A, A));
      add(step.report, A);
    }
  }
  return [...out.values()];
}

/** The problems of a valid program whose estimated costs exceed the configured limits. */
export function programCostErrors(
  program: Program,
  types: ReadonlyMap<string, TffType>,
  signatures: Readonly<Record<string, Signature>>,
  clientComputations: ReadonlySet<string>,
  limits: Limits,
): ErrorDetail[] {
  const nodes =
    Object.values(program.computations).reduce((n, c) => n + c.nodes.length, 0) +
    Object.values(program.functions ?? {}).reduce((n, c) => n + c.nodes.length, 0);
  const model = new CostModel({
    functions: program.functions ?? {},
    // The largest batch of any collection: a client computation is costed at the worst it can be given.
    batchSize: Math.max(...Object.values(program.client_data).map((d) => d.batch_size)),
    sequenceLength: limits.costClientBatches,
    maxTensorElements: limits.maxTensorElements,
    maxVisits: VISITS_PER_NODE * Math.max(nodes, limits.maxNodesPerPlan),
  });
  let costs: ComputationCost[];
  try {
    costs = calls(program, types, signatures).map(({ fn, parameter }) => {
      const pointer = `/computations/${fn}`;
      return {
        label: fn,
        pointer,
        client: clientComputations.has(fn),
        cost: estimateAt(model, program.computations[fn]!, parameter, fn, pointer),
      };
    });
  } catch (e) {
    if (e instanceof PlanCostError) return [e.detail];
    const why = e instanceof CostBudgetError ? e.message : `the cost model failed: ${String(e)}`;
    return [{ path: '', message: `the program's cost cannot be estimated within the limit: ${why}` }];
  }
  return costLimitErrors(costs, limits);
}
