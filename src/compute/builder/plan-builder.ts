import type { Computation } from '../../generated/computation';
import type {
  ClientDataSpec,
  DifferentialPrivacy,
  MapReduceForm,
  Plan,
  Schedule,
  UpdateBounds,
} from '../../generated/plan';
import { checkPlan, FORM_SLOTS } from '../../plan/validate';
import { FunctionSet, type Body, type Built, type BuiltSignature, type NullaryBody } from './function-set';
import { BuildError } from './handle';
import type { TffType } from '../types';

export type { Body, BuiltSignature, NullaryBody } from './function-set';

/** A computation slot of a plan: the form's ten, plus `initialize` and the optional `evaluate`. */
export type Slot = 'initialize' | (typeof FORM_SLOTS)[number] | 'evaluate';

/** What a plan says besides its computations. */
export interface PlanMeta {
  readonly name: string;
  readonly description?: string;
  readonly population?: string;
  readonly client_data: ClientDataSpec;
  readonly schedule: Schedule;
  /** Bounds the server enforces on uploaded updates (docs/update-bounds.md). */
  readonly update_bounds?: UpdateBounds;
  /** Differential privacy the server applies (docs/server.md, "Differential privacy"). */
  readonly dp?: DifferentialPrivacy;
}

// Computations that clients or aggregation workers run: the server-only random_normal may not reach them.
const CLIENT_OR_WORKER: readonly Slot[] = ['work', 'zero', 'accumulate', 'merge'];

/**
 * Builds a plan in code: named functions first (`fn`), then the form's computations (`computation`), then
 * `build`, which assembles the plan JSON and, by default, runs the same `checkPlan` the server runs, so a
 * plan that builds is a plan the server accepts.
 */
export class PlanBuilder extends FunctionSet {
  private readonly slots = new Map<Slot, Built>();

  /** Builds one of the plan's computations; returns its signature (e.g. zero's result is A). */
  computation(slot: Slot, parameterType: TffType, body: Body): BuiltSignature;
  computation(slot: Slot, parameterType: undefined, body: NullaryBody): BuiltSignature;
  computation(slot: Slot, parameterType: TffType | undefined, body: Body | NullaryBody): BuiltSignature {
    if (this.slots.has(slot)) throw new BuildError(`computation ${slot} is defined twice`);
    const built = this.buildComputation(slot, parameterType, body);
    if (built.serverOnly && CLIENT_OR_WORKER.includes(slot)) {
      throw new BuildError(
        `${slot}: runs on clients or aggregation workers, so it may not use random_normal (directly or through a function)`,
      );
    }
    this.slots.set(slot, built);
    return built.signature;
  }

  /** A computation built so far. */
  computationOf(slot: Slot): Computation | undefined {
    return this.slots.get(slot)?.computation;
  }

  /** The signature of a computation built so far. */
  signature(slot: Slot): BuiltSignature | undefined {
    return this.slots.get(slot)?.signature;
  }

  /** Assembles the plan; with `check` (the default) it must pass `checkPlan`, which throws otherwise. */
  build(meta: PlanMeta, options: { check?: boolean } = {}): Plan {
    const missing = ['initialize', ...FORM_SLOTS].filter((s) => !this.slots.has(s as Slot));
    if (missing.length)
      throw new BuildError(`plan ${meta.name}: computations not defined: ${missing.join(', ')}`);
    const form = Object.fromEntries(
      FORM_SLOTS.map((s) => [s, this.slots.get(s)!.computation]),
    ) as unknown as MapReduceForm;
    const evaluate = this.slots.get('evaluate')?.computation;
    const plan: Plan = {
      format: 'roundhouse.plan/v1',
      name: meta.name,
      ...(meta.description !== undefined ? { description: meta.description } : {}),
      ...(meta.population !== undefined ? { population: meta.population } : {}),
      client_data: meta.client_data,
      schedule: meta.schedule,
      initialize: this.slots.get('initialize')!.computation,
      computations: form,
      ...(Object.keys(this.functionTable).length ? { functions: { ...this.functionTable } } : {}),
      ...(evaluate ? { evaluate } : {}),
      ...(meta.update_bounds !== undefined ? { update_bounds: meta.update_bounds } : {}),
      ...(meta.dp !== undefined ? { dp: meta.dp } : {}),
    };
    // The builder reuses type objects across computations (a handle's type becomes a parameter's type);
    // a copy gives the plan objects of its own, so that editing one computation never changes another
    // (through JSON, which is what a plan is: structuredClone would keep the sharing).
    const own = JSON.parse(JSON.stringify(plan)) as Plan;
    if (options.check ?? true) checkPlan(own);
    return own;
  }
}
