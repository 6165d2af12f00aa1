import type { ComputationBuilder, Handle, PlanBuilder } from '../compute/builder';
import {
  EMPTY_STRUCT,
  sequenceType,
  structType,
  tensorType,
  type Shape,
  type StructType,
  type TffType,
} from '../compute/types';
import type { BoundMode } from '../generated/plan';
import { choiceOption, intOption, nameOption, type OptionSpec, type ScheduleOptions } from './options';

/** A float32 tensor type. */
export function f32(shape: Shape = []): TffType {
  return tensorType('float32', shape);
}

/** An int32 tensor type. */
export function i32(shape: Shape = []): TffType {
  return tensorType('int32', shape);
}

/** A named struct type from an object, in key order. */
export function named(fields: Readonly<Record<string, TffType>>): StructType {
  return structType(Object.entries(fields));
}

/** The empty struct `<>`, the type of an unused secure-sum update. */
export const EMPTY: StructType = EMPTY_STRUCT;

/** The parameter type of `work`: `<data=D, broadcast=C>`. */
export function workParam(element: TffType, broadcast: TffType): StructType {
  return named({ data: sequenceType(element), broadcast });
}

/** The parameter type of `update`: `<state=S, aggregates=<report=R, bitwidth_sum=V1, max_input_sum=V2, modular_sum=V3>>`. */
export function updateParam(
  S: TffType,
  R: TffType,
  V: readonly [TffType, TffType, TffType] = [EMPTY, EMPTY, EMPTY],
): StructType {
  return named({
    state: S,
    aggregates: named({ report: R, bitwidth_sum: V[0], max_input_sum: V[1], modular_sum: V[2] }),
  });
}

/**
 * One secure-sum parameter: an int32 for every tensor of that V, or a tree shaped like V (named fields) with
 * one per tensor, so that, e.g., a count that is always 0 or 1 can take bitwidth 1 beside wider values.
 */
export type SecureParam = number | { readonly [field: string]: SecureParam };

/** The parameters of the three secure sums, or none when that V is empty. */
export interface SecureParams {
  readonly bitwidth?: SecureParam;
  readonly maxInput?: SecureParam;
  readonly modulus?: SecureParam;
}

/**
 * Defines `secure_sum_bitwidth`, `secure_sum_max_input` and `secure_modular_sum_modulus`: int32 constants
 * (one scalar for every tensor of that V, or a struct of them shaped like V) when given, else the empty
 * struct that an empty V takes.
 */
export function defineSecureParams(pb: PlanBuilder, params: SecureParams = {}): void {
  const value = (b: ComputationBuilder, v: SecureParam, name: string): Handle =>
    typeof v === 'number'
      ? b.scalar(v, 'int32', name)
      : b.struct(Object.fromEntries(Object.entries(v).map(([k, x]) => [k, value(b, x, k)])));
  const slot = (
    name: 'secure_sum_bitwidth' | 'secure_sum_max_input' | 'secure_modular_sum_modulus',
    v: SecureParam | undefined,
  ) => pb.computation(name, undefined, (b) => (v === undefined ? b.struct([]) : value(b, v, name)));
  slot('secure_sum_bitwidth', params.bitwidth);
  slot('secure_sum_max_input', params.maxInput);
  slot('secure_modular_sum_modulus', params.modulus);
}

/** The work result `<U, V1, V2, V3>`, with `<>` for every V not given. */
export function workResult(
  b: ComputationBuilder,
  U: Handle,
  V: { v1?: Handle; v2?: Handle; v3?: Handle } = {},
): Handle {
  const empty = V.v1 && V.v2 && V.v3 ? undefined : b.struct([], 'empty');
  return b.struct([U, V.v1 ?? empty!, V.v2 ?? empty!, V.v3 ?? empty!], 'work_result');
}

/** The data options every plan takes: the client data collection and the batch size. */
export function dataOptions(
  collection: string,
  batchSize: number,
): { collection: OptionSpec<string>; batchSize: OptionSpec<number> } {
  return {
    collection: nameOption('client data collection (also the default population)', collection),
    batchSize: intOption('examples per batch', batchSize, { min: 1, max: 65536 }),
  };
}

/** The `--bound-mode` option: what a declared update bound does to an upload that breaks it. */
export function boundModeOption(what: string): OptionSpec<BoundMode> {
  return choiceOption(`what ${what} does to an update outside it: clip it, or reject the upload`, 'clip', [
    'clip',
    'reject',
  ]);
}

/** The most uploads a round can aggregate: the clients it selects (target times over-selection). */
export function maxClientsPerRound(o: ScheduleOptions): number {
  return Math.max(o.targetClients, Math.ceil(o.targetClients * o.overSelection - 1e-9));
}
